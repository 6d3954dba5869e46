/* bench.h - what loopspec-bench's files share: the options, one measured
 * configuration, what one worker process reports back, and the functions
 * each file provides.
 *
 * Files: main.c (entry, worker dispatch), options.c (command line), plan.c
 * (the configurations and the repetitions, one worker process each),
 * worker.c (one configuration in one process: the paired limit, then the
 * measured run), limit.c (spawn + waitpid with no loop), churn.c (the ABI
 * runs: churn, idle children, memory), stamps.c (the exit-time slots and
 * the child's arguments), stats.c (percentiles, min/median/max), sysinfo.c
 * (machine, load, /proc), report_text.c and report_json.c.
 *
 * Only loopspec/abi.h is used to reach an implementation.
 */
#ifndef LSPEC_BENCH_H
#define LSPEC_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <loopspec/abi.h>

/* --- what is measured -------------------------------------------------------- */

enum lb_scenario {
  LB_LIMITS = 1,  /* spawn + waitpid with no loop, and the latency floor */
  LB_CHURN = 2,   /* N short children, K in flight: children/s */
  LB_LATENCY = 3, /* child's exit -> callback, K = 1 */
  LB_IDLE = 4,    /* M idle registered children while others churn */
  LB_MEMORY = 5,  /* what M in-flight children cost the parent */
  LB_NSCENARIOS = 6
};

enum lb_mode {
  LB_EXEC = 1, /* loop_subprocess_exec: what a user's loop does */
  LB_WATCH = 2 /* the bench spawns (posix_spawn), watcher_add_child_handler */
};

enum lb_limit {
  LB_LIM_POSIX_SPAWN = 1, /* posix_spawn, then waitpid */
  LB_LIM_VFORK = 2,       /* vfork + execve, then waitpid */
  LB_LIM_FLOOR = 3        /* posix_spawn, K = 1, a blocking waitpid: the
                             exit-notification latency floor */
};

/* One configuration; each repetition runs it in a fresh worker process. */
struct lb_config {
  int scenario; /* enum lb_scenario */
  int impl;     /* index into lb_options.impls */
  int kind;     /* enum lspec_watcher_kind; 0 for limits */
  int mode;     /* enum lb_mode; 0 for limits */
  int limit;    /* enum lb_limit for LB_LIMITS rows, else 0 */
  int k;        /* children in flight */
  int m;        /* idle children registered (idle, memory) */
  int n;        /* short children spawned in the timed phase */
  int stamp;    /* the children stamp their exit time */
};

/* Percentiles of one distribution, microseconds. */
struct lb_dist {
  double p50, p90, p99, max;
};

#define LB_CDF_POINTS 101 /* quantiles 0 %, 1 %, ... 100 % */

enum lb_status {
  LB_OK = 0,
  LB_FAILED = 1,      /* an entry failed, a child was lost, ... */
  LB_UNSUPPORTED = 2, /* the implementation does not offer this */
  LB_TIMEOUT = 3      /* the worker ran out of time (killed) */
};

/* What one worker measured.  Written whole through a pipe by the worker
 * (the same executable reads it).  NaN where a figure does not apply. */
struct lb_result {
  int status;   /* enum lb_status */
  char why[240]; /* the reason when status != LB_OK */

  /* The paired limit, run right before in the same process. */
  double limit_rate;      /* posix_spawn + waitpid, same K, N, child */
  struct lb_dist floor;   /* its latency when K = 1 with stamps */

  /* The measured run. */
  double rate;            /* children/s of the timed phase */
  double seconds;         /* length of the timed phase */
  struct lb_dist lat;     /* exit stamp -> callback, us */
  struct lb_dist notif;   /* callback - max(exit, end of our previous
                             callback), us */
  double cdf[LB_CDF_POINTS]; /* latency quantiles, us */
  double wakeups;         /* wake-ups that delivered exits (top-ups) */
  double per_wakeup;      /* children delivered per wake-up */
  double loop_cpu_us;     /* process CPU per wake-up outside our
                             callbacks: the reap pass and delivery */
  double spawn_cpu_us;    /* CPU per child inside our spawning callback:
                             spawn and registration */
  double cpu_us_per_child; /* process CPU per child, everything */
  int wrong;              /* exit statuses other than expected */
  int leftover;           /* children still there at the end (reaped by
                             the worker before it exits) */
  double setup_seconds;   /* idle children: spawning and registering */

  /* Memory (LB_MEMORY): deltas per in-flight child, and totals after. */
  double rss_kib, vsz_kib, threads, fds;
  double threads_after, fds_after;

  /* Load when the worker started (1-minute loadavg). */
  double load1;
  int warnings;           /* warnings the implementation delivered */
};

/* What a probe worker reports about an implementation. */
struct lb_probe {
  int ok;
  char why[240];
  char name[64];
  char version[64];
  uint32_t watcher_kinds;
  uint32_t profiles;
  uint64_t capabilities;
  uint32_t custom_child_watchers;
};

/* --- options -------------------------------------------------------------------- */

#define LB_MAX_IMPLS 8
#define LB_MAX_LIST 16

struct lb_impl {
  char label[32];     /* how reports name it */
  char path[512];     /* "" for the linked-in reference */
  char env[4][128];   /* VAR=VALUE set in its workers before loading */
  int nenv;
  struct lb_probe probe; /* filled by the orchestrator's probe */
};

struct lb_options {
  struct lb_impl impls[LB_MAX_IMPLS];
  int nimpls;
  int scenarios[LB_NSCENARIOS];   /* scenarios[s] != 0: run it */
  int compare_scenarios[LB_NSCENARIOS]; /* for impls after the first */
  int modes;                      /* bit (1 << mode) */
  uint32_t kinds;                 /* LSPEC_WATCHER_KIND_BIT()s; 0: all */
  int ks[LB_MAX_LIST], nks;       /* churn K values */
  int ms[LB_MAX_LIST], nms;       /* idle M values */
  int idle_k;
  int memory_m;
  int n, idle_n, latency_n;
  int reps;
  int profile;                    /* 0: 3.11 if declared, else newest */
  double timeout;                 /* seconds per worker */
  const char *json_path;
  const char *text_path;
  char child[512];                /* lspec-bench-child */
  int inprocess;                  /* one configuration, in this process */
  int no_limit;                   /* skip the paired limit */
  int quiet;
  /* Worker side. */
  int worker;                     /* running as a worker */
  int worker_fd;
  int probe;                      /* worker: probe impls[worker_impl] */
  struct lb_config worker_cfg;
};

/* --- the results of a whole run ------------------------------------------------- */

/* One configuration and its repetitions' results. */
struct lb_row {
  struct lb_config cfg;
  struct lb_result *res; /* reps entries */
  int nres;              /* repetitions run so far */
};

struct lb_run {
  const struct lb_options *o;
  struct lb_row *rows;
  int nrows;
  double load_start[3], load_end[3];
  char started[32];      /* UTC, ISO 8601 */
  double wall_seconds;
  int orphans;           /* children the orchestrator had to reap */
};

/* min / median / max over the repetitions that produced a number. */
struct lb_mmm {
  double min, median, max;
  int n;
};

/* --- functions -------------------------------------------------------------------- */

/* options.c */
int lb_parse_options(int argc, char **argv, struct lb_options *o); /* 0, 1
                                          (--help printed), 2 (usage error) */
const char *lb_scenario_name(int scenario);
const char *lb_mode_name(int mode);
const char *lb_kind_name(int kind);
const char *lb_limit_name(int limit);
void lb_config_format(const struct lb_config *c, char *buf, size_t len);
int lb_config_parse(const char *s, struct lb_config *c);

/* plan.c: runs everything the options ask for; the exit status. */
int lb_plan_main(const struct lb_options *o, int argc, char **argv);

/* worker.c */
int lb_worker_main(const struct lb_options *o);
void lb_probe_impl(const struct lb_options *o, int idx, struct lb_probe *p);
void lb_run_config(const struct lb_options *o, const struct lb_config *c,
                   struct lb_result *r);
void lb_result_init(struct lb_result *r);
void lb_fail(struct lb_result *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* stamps.c: the exit-time slots (a memfd the children inherit) and the
 * child's argument vectors. */
struct lb_stamps {
  int fd;                /* the memfd, or -1 */
  int64_t *slot;         /* its mapping: one CLOCK_MONOTONIC ns per slot */
  size_t nslots;
  int stamp;             /* the short children stamp */
  char fdtext[16], slottext[24], path[64];
  const char *argv[6];   /* short child; argv[3] is slottext */
  const char *idle_argv[3];
};
int lb_stamps_open(struct lb_stamps *s, const char *child, size_t nslots,
                   int stamp, char *why, size_t whylen);
const char *const *lb_stamps_argv(struct lb_stamps *s, size_t slot);
void lb_stamps_clear(struct lb_stamps *s);
void lb_stamps_close(struct lb_stamps *s);

/* limit.c: no loop; children spawned K at a time and reaped.  rate in
 * children/s; lat (K = 1 with stamps: the blocking-waitpid floor) in us.
 * 0, or -1 with the reason in r. */
int lb_limit_run(int method, int k, int n, struct lb_stamps *st,
                 double *rate, struct lb_dist *lat, double *cdf,
                 struct lb_result *r);

/* churn.c: a configuration through the ABI (churn, latency, idle,
 * memory). */
void lb_abi_run(const struct lb_options *o, const struct lspec_impl *impl,
                const struct lb_config *c, struct lb_stamps *st,
                struct lb_result *r);

/* stats.c */
void lb_dist_of(double *v, size_t n, struct lb_dist *d, double *cdf);
void lb_mmm_of(const double *v, int n, struct lb_mmm *m);
double lb_nan(void);

/* sysinfo.c */
int64_t lb_now_ns(void);          /* CLOCK_MONOTONIC */
int64_t lb_process_cpu_ns(void);  /* CLOCK_PROCESS_CPUTIME_ID */
int64_t lb_thread_cpu_ns(void);   /* CLOCK_THREAD_CPUTIME_ID */
void lb_loadavg(double load[3]);
struct lb_procmem {
  double rss_kib, vsz_kib;
  long threads, fds;
};
int lb_procmem_read(struct lb_procmem *m);
void lb_utc_now(char *buf, size_t len);
/* Writes the machine's description as JSON members (no braces). */
void lb_machine_json(FILE *f, const char *indent);
void lb_machine_text(FILE *f);
void lb_json_str(FILE *f, const char *s); /* a JSON string, quoted */

/* figures.c: one figure of a row over its successful repetitions.  With
 * LB_RATIO or LB_DIFF each repetition's value is paired with `base_off` of
 * the same repetition of `base` (NULL: of the same result). */
enum lb_op { LB_VALUE = 0, LB_RATIO = 1, LB_DIFF = 2 };
void lb_row_stat(const struct lb_row *row, const struct lb_row *base,
                 size_t off, size_t base_off, int op, struct lb_mmm *m);
#define LB_OFF(field) offsetof(struct lb_result, field)
/* The row of `run` whose configuration equals `like`, or NULL. */
const struct lb_row *lb_find_row(const struct lb_run *run,
                                 const struct lb_config *like);
/* Repetitions of the row that succeeded. */
int lb_row_ok(const struct lb_row *row);

/* report_text.c, report_json.c */
void lb_report_text(FILE *f, const struct lb_run *run);
int lb_report_json(const char *path, const struct lb_run *run);

#endif /* LSPEC_BENCH_H */
