/* options.c - loopspec-bench's command line, the names it uses for
 * scenarios, modes, watcher kinds and limits, and the text form of a
 * configuration that the orchestrator hands to a worker. */
#define _GNU_SOURCE 1
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LSPEC_BENCH_CHILD_PATH
#define LSPEC_BENCH_CHILD_PATH ""
#endif

static const char *const scenario_names[LB_NSCENARIOS] = {
    NULL, "limits", "churn", "latency", "idle", "memory"};
static const char *const kind_names[] = {
    NULL, "threaded", "multiloop", "safe", "fast", "pidfd", "native"};

const char *lb_scenario_name(int s) {
  return s > 0 && s < LB_NSCENARIOS ? scenario_names[s] : "?";
}
const char *lb_mode_name(int m) {
  return m == LB_EXEC ? "exec" : m == LB_WATCH ? "watch" : "-";
}
const char *lb_kind_name(int k) {
  return k > 0 && k <= LSPEC_WATCHER_NATIVE ? kind_names[k] : "-";
}
const char *lb_limit_name(int l) {
  return l == LB_LIM_POSIX_SPAWN ? "posix_spawn"
         : l == LB_LIM_VFORK     ? "vfork"
         : l == LB_LIM_FLOOR     ? "floor"
                                 : "-";
}

void lb_config_format(const struct lb_config *c, char *buf, size_t len) {
  snprintf(buf, len, "%d,%d,%d,%d,%d,%d,%d,%d,%d", c->scenario, c->impl,
           c->kind, c->mode, c->limit, c->k, c->m, c->n, c->stamp);
}

int lb_config_parse(const char *s, struct lb_config *c) {
  memset(c, 0, sizeof *c);
  return sscanf(s, "%d,%d,%d,%d,%d,%d,%d,%d,%d", &c->scenario, &c->impl,
                &c->kind, &c->mode, &c->limit, &c->k, &c->m, &c->n,
                &c->stamp) == 9
             ? 0
             : -1;
}

static const char usage[] =
    "usage: loopspec-bench [options]\n"
    "\n"
    "Measures child-watching through the loopspec ABI against the kernel's\n"
    "spawn + waitpid limit, each configuration in its own worker process.\n"
    "\n"
    "  --impl [LABEL=]PATH[,VAR=VALUE...]  an implementation (repeatable; the\n"
    "                      first is the subject, the others are compared);\n"
    "                      PATH 'reference' or '' is the linked-in reference\n"
    "                      (the default); VAR=VALUE is set in its workers\n"
    "  --scenario LIST     limits,churn,latency,idle,memory (default: all)\n"
    "  --compare LIST      scenarios also run for the other implementations\n"
    "                      (default: churn,latency)\n"
    "  --mode LIST         exec (loop_subprocess_exec), watch (spawned here,\n"
    "                      watcher_add_child_handler); default: both\n"
    "  --kinds LIST        threaded,multiloop,safe,fast,pidfd,native\n"
    "                      (default: what each implementation offers; only\n"
    "                      native where custom watchers are prohibited)\n"
    "  -k LIST             children in flight for churn (default 1,8,64,512)\n"
    "  -m LIST             idle children for idle (default 0,100,1000,4000)\n"
    "  -n N                children per churn run (default 2000)\n"
    "  --latency-n N       children per latency run (default 2000)\n"
    "  --idle-n N          children per idle run (default 1000)\n"
    "  --idle-k K          children in flight in idle runs (default 1)\n"
    "  --memory-m M        children in flight for memory (default 1000)\n"
    "  -r R                repetitions, the outer loop (default 3)\n"
    "  --profile X.Y       Python profile (default 3.11 where offered)\n"
    "  --timeout S         limit for one worker, seconds (default 300)\n"
    "  --json PATH         write the JSON report\n"
    "  --text PATH         write the text report there, not to stdout\n"
    "  --child PATH        the short-lived child (default: lspec-bench-child\n"
    "                      beside this program)\n"
    "  --inprocess         run in this process, no workers (for profilers)\n"
    "  --no-limit          do not run the paired limit\n"
    "  -q                  no progress lines\n"
    "  -h, --help          this text\n";

/* "1,8,64" into v; the count, or -1. */
static int int_list(const char *s, int *v, int max) {
  char *end;
  long x;
  int n = 0;

  while (*s) {
    errno = 0;
    x = strtol(s, &end, 10);
    if (end == s || errno || x < 0 || x > 1000000 || n >= max)
      return -1;
    v[n++] = (int)x;
    s = end;
    if (*s == ',')
      s++;
    else if (*s)
      return -1;
  }
  return n > 0 ? n : -1;
}

static int one_int(const char *s, int *v, int min) {
  int n = int_list(s, v, 1);
  return n == 1 && *v >= min ? 0 : -1;
}

/* A list of names into flags[index] = 1; -1 on an unknown name. */
static int name_list(const char *s, const char *const *names, int nnames,
                     int *flags) {
  char buf[256], *tok, *save = NULL;
  int i;

  snprintf(buf, sizeof buf, "%s", s);
  for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    for (i = 1; i < nnames && (names[i] == NULL || strcmp(tok, names[i])); i++)
      ;
    if (i == nnames)
      return -1;
    flags[i] = 1;
  }
  return 0;
}

/* [LABEL=]PATH[,VAR=VALUE...] */
static int impl_spec(const char *s, struct lb_impl *impl) {
  char buf[1024], *tok, *save = NULL, *eq, *slash;
  const char *path;
  int first = 1;

  memset(impl, 0, sizeof *impl);
  snprintf(buf, sizeof buf, "%s", s);
  for (tok = strtok_r(buf, ",", &save); tok || first;
       tok = strtok_r(NULL, ",", &save)) {
    if (first) {
      first = 0;
      path = tok ? tok : "";
      eq = strchr(path, '=');
      slash = strchr(path, '/');
      if (eq != NULL && (slash == NULL || eq < slash)) {
        *eq = '\0';
        snprintf(impl->label, sizeof impl->label, "%s", path);
        path = eq + 1;
      }
      if (strcmp(path, "reference") == 0)
        path = "";
      snprintf(impl->path, sizeof impl->path, "%s", path);
      if (impl->label[0] == '\0')
        snprintf(impl->label, sizeof impl->label, "%s",
                 path[0] ? (strrchr(path, '/') ? strrchr(path, '/') + 1 : path)
                         : "reference");
      if (tok == NULL)
        break;
      continue;
    }
    if (strchr(tok, '=') == NULL || impl->nenv >= 4)
      return -1;
    snprintf(impl->env[impl->nenv++], sizeof impl->env[0], "%s", tok);
  }
  return 0;
}

/* lspec-bench-child beside /proc/self/exe, else the build's path. */
static void default_child(char *buf, size_t len) {
  char self[400], *slash;
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

  if (n > 0) {
    self[n] = '\0';
    if ((slash = strrchr(self, '/')) != NULL) {
      *slash = '\0';
      snprintf(buf, len, "%s/lspec-bench-child", self);
      if (access(buf, X_OK) == 0)
        return;
    }
  }
  snprintf(buf, len, "%s", LSPEC_BENCH_CHILD_PATH);
}

int lb_parse_options(int argc, char **argv, struct lb_options *o) {
  int i, kinds[8] = {0}, modes[3] = {0}, j, bad = 0;
  const char *a, *v;

  memset(o, 0, sizeof *o);
  for (i = 1; i < LB_NSCENARIOS; i++)
    o->scenarios[i] = 1;
  o->compare_scenarios[LB_CHURN] = o->compare_scenarios[LB_LATENCY] = 1;
  o->modes = (1 << LB_EXEC) | (1 << LB_WATCH);
  o->nks = int_list("1,8,64,512", o->ks, LB_MAX_LIST);
  o->nms = int_list("0,100,1000,4000", o->ms, LB_MAX_LIST);
  o->idle_k = 1;
  o->memory_m = 1000;
  o->n = 2000;
  o->latency_n = 2000;
  o->idle_n = 1000;
  o->reps = 3;
  o->timeout = 300;
  o->worker_fd = -1;

  for (i = 1; i < argc && !bad; i++) {
    a = argv[i];
    v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE                                                            \
  if (v == NULL) {                                                             \
    fprintf(stderr, "loopspec-bench: %s needs a value\n", a);                  \
    return 2;                                                                  \
  }                                                                            \
  i++;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage, stdout);
      return 1;
    } else if (!strcmp(a, "--impl")) {
      NEEDS_VALUE
      if (o->nimpls >= LB_MAX_IMPLS || impl_spec(v, &o->impls[o->nimpls]))
        bad = 1;
      else
        o->nimpls++;
    } else if (!strcmp(a, "--scenario") || !strcmp(a, "--compare")) {
      int flags[LB_NSCENARIOS] = {0};
      NEEDS_VALUE
      if (name_list(v, scenario_names, LB_NSCENARIOS, flags))
        bad = 1;
      memcpy(!strcmp(a, "--scenario") ? o->scenarios : o->compare_scenarios,
             flags, sizeof flags);
    } else if (!strcmp(a, "--mode")) {
      static const char *const mode_names[] = {NULL, "exec", "watch"};
      NEEDS_VALUE
      memset(modes, 0, sizeof modes);
      if (name_list(v, mode_names, 3, modes))
        bad = 1;
      o->modes = (modes[1] << LB_EXEC) | (modes[2] << LB_WATCH);
    } else if (!strcmp(a, "--kinds")) {
      NEEDS_VALUE
      memset(kinds, 0, sizeof kinds);
      if (name_list(v, kind_names, 7, kinds))
        bad = 1;
      for (j = 1; j <= LSPEC_WATCHER_NATIVE; j++)
        if (kinds[j])
          o->kinds |= LSPEC_WATCHER_KIND_BIT(j);
    } else if (!strcmp(a, "-k")) {
      NEEDS_VALUE
      bad = (o->nks = int_list(v, o->ks, LB_MAX_LIST)) < 0;
      for (j = 0; j < o->nks && !bad; j++)
        bad = o->ks[j] < 1;
    } else if (!strcmp(a, "-m")) {
      NEEDS_VALUE
      bad = (o->nms = int_list(v, o->ms, LB_MAX_LIST)) < 0;
    } else if (!strcmp(a, "-n")) {
      NEEDS_VALUE
      bad = one_int(v, &o->n, 1);
    } else if (!strcmp(a, "--latency-n")) {
      NEEDS_VALUE
      bad = one_int(v, &o->latency_n, 1);
    } else if (!strcmp(a, "--idle-n")) {
      NEEDS_VALUE
      bad = one_int(v, &o->idle_n, 1);
    } else if (!strcmp(a, "--idle-k")) {
      NEEDS_VALUE
      bad = one_int(v, &o->idle_k, 1);
    } else if (!strcmp(a, "--memory-m")) {
      NEEDS_VALUE
      bad = one_int(v, &o->memory_m, 1);
    } else if (!strcmp(a, "-r")) {
      NEEDS_VALUE
      bad = one_int(v, &o->reps, 1) || o->reps > 64;
    } else if (!strcmp(a, "--profile")) {
      int major, minor;
      NEEDS_VALUE
      if (sscanf(v, "%d.%d", &major, &minor) != 2 || major != 3 || minor < 8 ||
          minor > 12)
        bad = 1;
      else
        o->profile = LSPEC_PROFILE(major, minor);
    } else if (!strcmp(a, "--timeout")) {
      NEEDS_VALUE
      o->timeout = atof(v);
      bad = !(o->timeout > 0);
    } else if (!strcmp(a, "--json")) {
      NEEDS_VALUE
      o->json_path = v;
    } else if (!strcmp(a, "--text")) {
      NEEDS_VALUE
      o->text_path = v;
    } else if (!strcmp(a, "--child")) {
      NEEDS_VALUE
      snprintf(o->child, sizeof o->child, "%s", v);
    } else if (!strcmp(a, "--inprocess")) {
      o->inprocess = 1;
    } else if (!strcmp(a, "--no-limit")) {
      o->no_limit = 1;
    } else if (!strcmp(a, "-q")) {
      o->quiet = 1;
    } else if (!strcmp(a, "--worker") || !strcmp(a, "--probe")) {
      NEEDS_VALUE
      o->worker = 1;
      o->probe = !strcmp(a, "--probe");
      bad = lb_config_parse(v, &o->worker_cfg);
    } else if (!strcmp(a, "--worker-fd")) {
      NEEDS_VALUE
      bad = one_int(v, &o->worker_fd, 0);
    } else {
      fprintf(stderr, "loopspec-bench: unknown option %s (see --help)\n", a);
      return 2;
    }
#undef NEEDS_VALUE
    if (bad) {
      fprintf(stderr, "loopspec-bench: bad value for %s: %s\n", a,
              v ? v : "");
      return 2;
    }
  }
  if (o->nimpls == 0) {
    o->nimpls = 1;
    impl_spec("reference", &o->impls[0]);
  }
  if (o->child[0] == '\0')
    default_child(o->child, sizeof o->child);
  if (access(o->child, X_OK) != 0) {
    fprintf(stderr, "loopspec-bench: the child program %s: %s\n", o->child,
            strerror(errno));
    return 2;
  }
  if (o->modes == 0) {
    fprintf(stderr, "loopspec-bench: --mode names no mode\n");
    return 2;
  }
  if (o->worker && (o->worker_fd < 0 || o->worker_cfg.impl < 0 ||
                    o->worker_cfg.impl >= o->nimpls)) {
    fprintf(stderr, "loopspec-bench: a worker needs --worker-fd and a "
                    "configuration naming a known implementation\n");
    return 2;
  }
  return 0;
}
