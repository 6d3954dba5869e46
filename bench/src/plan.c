/* plan.c - the orchestrator: probes each implementation, lists the
 * configurations the options ask for, and runs every one of them in a
 * fresh worker process (this program again, with --worker), repetitions
 * as the outer loop and configurations as the inner one, so that each
 * figure is sampled at R different moments.  It is a child subreaper: a
 * child a worker left behind comes back here, is reaped and counted.  A
 * worker that outlives --timeout is killed with its process group.
 */
#define _GNU_SOURCE 1
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Reaps every child that has ended (orphans handed to us, as a
 * subreaper, by a worker that left them); returns how many. */
static int reap_orphans(void) {
  int status, n = 0;
  pid_t p;

  while ((p = waitpid(-1, &status, WNOHANG)) > 0)
    n++;
  return n;
}

/* Runs this program as a worker for `cfg` (a probe when `probe`), reading
 * `len` bytes of answer into `out`.  0, or -1 with the reason in why. */
static int run_worker(const struct lb_options *o, int argc, char **argv,
                      const struct lb_config *cfg, int probe, void *out,
                      size_t len, char *why, size_t whylen, int *orphans) {
  char cfgtext[128], fdtext[16];
  char **args = calloc((size_t)argc + 6, sizeof *args);
  int fds[2], status, i, rc = -1, killed = 0;
  size_t got = 0;
  int64_t deadline;
  struct pollfd pfd;
  ssize_t r;
  pid_t pid;

  if (args == NULL || pipe2(fds, O_CLOEXEC) != 0) {
    snprintf(why, whylen, "worker: %s", strerror(errno));
    free(args);
    return -1;
  }
  lb_config_format(cfg, cfgtext, sizeof cfgtext);
  snprintf(fdtext, sizeof fdtext, "%d", fds[1]);
  args[0] = argv[0];
  for (i = 1; i < argc; i++)
    args[i] = argv[i];
  args[i++] = probe ? "--probe" : "--worker";
  args[i++] = cfgtext;
  args[i++] = "--worker-fd";
  args[i++] = fdtext;
  args[i] = NULL;
  fflush(NULL);
  pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    fcntl(fds[1], F_SETFD, 0); /* the answer's pipe survives the exec */
    execv("/proc/self/exe", args);
    _exit(127);
  }
  close(fds[1]);
  free(args);
  if (pid < 0) {
    snprintf(why, whylen, "fork: %s", strerror(errno));
    close(fds[0]);
    return -1;
  }
  deadline = lb_now_ns() + (int64_t)(o->timeout * 1e9);
  pfd.fd = fds[0];
  pfd.events = POLLIN;
  while (got < len) {
    int64_t left = (deadline - lb_now_ns()) / 1000000;
    if (left <= 0) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      killed = 1;
      break;
    }
    if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) <= 0)
      continue;
    r = read(fds[0], (char *)out + got, len - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (killed)
    kill(-pid, SIGKILL); /* anything of its group still there */
  *orphans += reap_orphans();
  if (killed)
    snprintf(why, whylen, "timeout: the worker ran for more than %.0f s",
             o->timeout);
  else if (got < len && WIFSIGNALED(status))
    snprintf(why, whylen, "the worker died of signal %d (%s)",
             WTERMSIG(status), strsignal(WTERMSIG(status)));
  else if (got < len)
    snprintf(why, whylen, "the worker exited (status %d) without an answer",
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  else
    rc = 0;
  return rc;
}

/* The watcher kinds to run for implementation `i`. */
static uint32_t kinds_for(const struct lb_options *o, const struct lb_impl *im) {
  uint32_t offered = im->probe.watcher_kinds, native = LSPEC_WATCHER_KIND_BIT(
                                                  LSPEC_WATCHER_NATIVE);

  if (o->kinds != 0)
    return o->kinds & offered;
  if (im->probe.custom_child_watchers == LSPEC_CUSTOM_WATCHERS_PROHIBITED &&
      (offered & native))
    return native;
  return offered;
}

static int add_row(struct lb_run *run, int *cap, const struct lb_config *c) {
  struct lb_row *rows;

  if (run->nrows == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    rows = realloc(run->rows, (size_t)*cap * sizeof *rows);
    if (rows == NULL)
      return -1;
    run->rows = rows;
  }
  memset(&run->rows[run->nrows], 0, sizeof run->rows[0]);
  run->rows[run->nrows].cfg = *c;
  run->rows[run->nrows].res = calloc((size_t)run->o->reps,
                                     sizeof(struct lb_result));
  if (run->rows[run->nrows].res == NULL)
    return -1;
  run->nrows++;
  return 0;
}

static int build(struct lb_run *run) {
  const struct lb_options *o = run->o;
  struct lb_config c;
  int cap = 0, i, s, kind, mode, j, lim;
  uint32_t kinds;

#define ADD()                                                                  \
  if (add_row(run, &cap, &c) != 0)                                             \
    return -1;
  if (o->scenarios[LB_LIMITS]) {
    for (j = 0; j < o->nks; j++)
      for (lim = LB_LIM_POSIX_SPAWN; lim <= LB_LIM_VFORK; lim++) {
        memset(&c, 0, sizeof c);
        c.scenario = LB_LIMITS;
        c.limit = lim;
        c.k = o->ks[j];
        c.n = o->n;
        ADD()
      }
    memset(&c, 0, sizeof c);
    c.scenario = LB_LIMITS;
    c.limit = LB_LIM_FLOOR;
    c.k = 1;
    c.n = o->latency_n;
    c.stamp = 1;
    ADD()
  }
  for (s = LB_CHURN; s < LB_NSCENARIOS; s++)
    for (i = 0; i < o->nimpls; i++) {
      if (!o->scenarios[s] || (i > 0 && !o->compare_scenarios[s]) ||
          !o->impls[i].probe.ok)
        continue;
      kinds = kinds_for(o, &o->impls[i]);
      for (kind = 1; kind <= LSPEC_WATCHER_NATIVE; kind++) {
        if (!(kinds & LSPEC_WATCHER_KIND_BIT(kind)))
          continue;
        for (mode = LB_EXEC; mode <= LB_WATCH; mode++) {
          if (!(o->modes & (1 << mode)) ||
              (kind == LSPEC_WATCHER_NATIVE && mode == LB_WATCH))
            continue;
          memset(&c, 0, sizeof c);
          c.scenario = s;
          c.impl = i;
          c.kind = kind;
          c.mode = mode;
          switch (s) {
          case LB_CHURN:
            for (j = 0; j < o->nks; j++) {
              c.k = o->ks[j];
              c.n = o->n;
              ADD()
            }
            break;
          case LB_LATENCY:
            c.k = 1;
            c.n = o->latency_n;
            c.stamp = 1;
            ADD()
            break;
          case LB_IDLE:
            for (j = 0; j < o->nms; j++) {
              c.k = o->idle_k;
              c.m = o->ms[j];
              c.n = o->idle_n;
              c.stamp = 1;
              ADD()
            }
            break;
          case LB_MEMORY:
            c.k = 1;
            c.m = o->memory_m;
            ADD()
            break;
          }
        }
      }
    }
#undef ADD
  return 0;
}

static void progress(const struct lb_run *run, int rep,
                     const struct lb_row *row, const struct lb_result *r) {
  const struct lb_config *c = &row->cfg;
  const struct lb_options *o = run->o;

  if (o->quiet)
    return;
  fprintf(stderr, "[%d/%d] %-7s ", rep + 1, o->reps, lb_scenario_name(c->scenario));
  if (c->scenario == LB_LIMITS)
    fprintf(stderr, "%-11s k=%-3d", lb_limit_name(c->limit), c->k);
  else
    fprintf(stderr, "%s %s %s k=%d m=%d", o->impls[c->impl].label,
            lb_kind_name(c->kind), lb_mode_name(c->mode), c->k, c->m);
  if (r->status != LB_OK)
    fprintf(stderr, ": %s\n", r->why);
  else if (c->scenario == LB_MEMORY)
    fprintf(stderr, ": %.2f KiB RSS, %.1f KiB virtual per child\n",
            r->rss_kib, r->vsz_kib);
  else if (c->stamp)
    fprintf(stderr, ": %.0f/s (%.2fx limit), lat p50 %.1f us\n", r->rate,
            r->rate / r->limit_rate, r->lat.p50);
  else
    fprintf(stderr, ": %.0f/s (%.2fx limit)\n", r->rate,
            r->rate / r->limit_rate);
}

int lb_plan_main(const struct lb_options *o, int argc, char **argv) {
  struct lb_options *mo = (struct lb_options *)o; /* probes fill impls */
  struct lb_run run;
  struct lb_config probe_cfg;
  char why[240];
  int i, rep, status = 0, row;
  int64_t t0 = lb_now_ns();
  FILE *text = stdout;

  memset(&run, 0, sizeof run);
  run.o = o;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);

  for (i = 0; i < o->nimpls; i++) {
    memset(&probe_cfg, 0, sizeof probe_cfg);
    probe_cfg.impl = i;
    if (o->inprocess) {
      lb_probe_impl(o, i, &mo->impls[i].probe);
    } else if (run_worker(o, argc, argv, &probe_cfg, 1, &mo->impls[i].probe,
                          sizeof mo->impls[i].probe, why, sizeof why,
                          &run.orphans) != 0) {
      mo->impls[i].probe.ok = 0;
      snprintf(mo->impls[i].probe.why, sizeof mo->impls[i].probe.why, "%s", why);
    }
    if (!o->impls[i].probe.ok) {
      fprintf(stderr, "loopspec-bench: %s (%s): %s\n", o->impls[i].label,
              o->impls[i].path[0] ? o->impls[i].path : "linked in",
              o->impls[i].probe.why);
      if (i == 0)
        return 2;
    }
  }
  if (build(&run) != 0) {
    fprintf(stderr, "loopspec-bench: out of memory\n");
    return 2;
  }
  lb_loadavg(run.load_start);
  lb_utc_now(run.started, sizeof run.started);
  for (rep = 0; rep < o->reps; rep++)
    for (row = 0; row < run.nrows; row++) {
      struct lb_row *rw = &run.rows[row];
      struct lb_result *r = &rw->res[rep];
      if (o->inprocess) {
        lb_run_config(o, &rw->cfg, r);
      } else if (run_worker(o, argc, argv, &rw->cfg, 0, r, sizeof *r, why,
                            sizeof why, &run.orphans) != 0) {
        lb_result_init(r);
        lb_fail(r, strncmp(why, "timeout", 7) ? LB_FAILED : LB_TIMEOUT, "%s",
                why);
      }
      rw->nres = rep + 1;
      progress(&run, rep, rw, r);
      if ((r->status == LB_FAILED || r->status == LB_TIMEOUT) &&
          rw->cfg.impl == 0)
        status = 1;
    }
  lb_loadavg(run.load_end);
  run.wall_seconds = (double)(lb_now_ns() - t0) / 1e9;
  if (run.orphans != 0)
    status = 1;

  if (o->text_path != NULL && (text = fopen(o->text_path, "w")) == NULL) {
    fprintf(stderr, "loopspec-bench: %s: %s\n", o->text_path, strerror(errno));
    text = stdout;
  }
  lb_report_text(text, &run);
  if (text != stdout)
    fclose(text);
  if (o->json_path != NULL && lb_report_json(o->json_path, &run) != 0) {
    fprintf(stderr, "loopspec-bench: cannot write %s: %s\n", o->json_path,
            strerror(errno));
    status = 2;
  }
  for (row = 0; row < run.nrows; row++)
    free(run.rows[row].res);
  free(run.rows);
  return status;
}
