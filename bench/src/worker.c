/* worker.c - one configuration in one process: the paired limit first
 * (posix_spawn + waitpid, same K, same N, same child, no implementation
 * loaded yet), then the implementation is loaded and the configuration
 * measured through the ABI.  Also the probe that reads an implementation's
 * table for the orchestrator.  The result goes back whole through a pipe.
 */
#define _GNU_SOURCE 1
#include "bench.h"
#include "impl_load.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void lb_result_init(struct lb_result *r) {
  double nan = lb_nan();
  int i;

  memset(r, 0, sizeof *r);
  r->limit_rate = r->rate = r->seconds = nan;
  r->floor.p50 = r->floor.p90 = r->floor.p99 = r->floor.max = nan;
  r->lat = r->notif = r->floor;
  for (i = 0; i < LB_CDF_POINTS; i++)
    r->cdf[i] = nan;
  r->wakeups = r->per_wakeup = r->loop_cpu_us = r->spawn_cpu_us = nan;
  r->cpu_us_per_child = r->setup_seconds = nan;
  r->rss_kib = r->vsz_kib = r->threads = r->fds = nan;
  r->threads_after = r->fds_after = r->load1 = nan;
}

void lb_fail(struct lb_result *r, int status, const char *fmt, ...) {
  va_list ap;

  if (r->status != LB_OK)
    return; /* the first failure is the one reported */
  r->status = status;
  va_start(ap, fmt);
  vsnprintf(r->why, sizeof r->why, fmt, ap);
  va_end(ap);
}

static atomic_int warnings;

static void count_warning(void *user, int category, const char *text) {
  (void)user;
  (void)category;
  (void)text;
  atomic_fetch_add(&warnings, 1);
}

/* Loads implementation `idx` with its environment and profile. */
static const struct lspec_impl *load_impl(const struct lb_options *o, int idx,
                                          char *why, size_t whylen) {
  const struct lb_impl *spec = &o->impls[idx];
  const struct lspec_impl *impl = NULL;
  char var[128], *eq;
  int i, profile, rc;

  for (i = 0; i < spec->nenv; i++) {
    snprintf(var, sizeof var, "%s", spec->env[i]);
    if ((eq = strchr(var, '=')) == NULL)
      continue;
    *eq = '\0';
    setenv(var, eq + 1, 1);
  }
  if (lh_load_impl(spec->path[0] ? spec->path : NULL, &impl, why, whylen) !=
      0)
    return NULL;
  profile = o->profile;
  if (profile == 0) {
    profile = LSPEC_PROFILE_3_11;
    if (!(impl->profiles & LSPEC_PROFILE_BIT(profile)))
      for (profile = LSPEC_PROFILE_3_12; profile > LSPEC_PROFILE_3_8 &&
                                         !(impl->profiles & LSPEC_PROFILE_BIT(profile));
           profile--)
        ;
  }
  /* In one process (--inprocess) the profile is set once, first. */
  if ((rc = impl->set_profile(profile)) != LSPEC_OK &&
      impl->get_profile() != profile) {
    snprintf(why, whylen, "set_profile(3.%d): status %d: %s", profile & 0xff,
             rc, impl->last_error());
    return NULL;
  }
  impl->set_warning_hook(count_warning, NULL);
  return impl;
}

/* Children in flight need descriptors (Pidfd: one each). */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

void lb_run_config(const struct lb_options *o, const struct lb_config *c,
                   struct lb_result *r) {
  const struct lspec_impl *impl;
  struct lb_stamps st;
  char why[sizeof r->why];
  double load[3];

  lb_result_init(r);
  lb_loadavg(load);
  r->load1 = load[0];
  raise_nofile();
  if (lb_stamps_open(&st, o->child, (size_t)(c->n + c->m), c->stamp, why,
                     sizeof why) != 0) {
    lb_fail(r, LB_FAILED, "%s", why);
    return;
  }
  /* Warm-up, untimed: the child's pages, the spawn paths. */
  if (c->scenario != LB_MEMORY && !o->no_limit) {
    double rate;
    struct lb_dist lat;
    lb_limit_run(LB_LIM_POSIX_SPAWN, 1, c->n < 50 ? c->n : 50, &st, &rate,
                 &lat, NULL, r);
  }
  if (c->scenario == LB_LIMITS) {
    /* The pair: posix_spawn right before, then the limit itself. */
    if (lb_limit_run(LB_LIM_POSIX_SPAWN, c->k, c->n, &st, &r->limit_rate,
                     &r->floor, NULL, r) == 0)
      lb_limit_run(c->limit == LB_LIM_VFORK ? LB_LIM_VFORK : LB_LIM_POSIX_SPAWN,
                   c->k, c->n, &st, &r->rate, &r->lat, r->cdf, r);
    lb_stamps_close(&st);
    return;
  }
  if (!o->no_limit && c->scenario != LB_MEMORY &&
      lb_limit_run(LB_LIM_POSIX_SPAWN, c->k, c->n, &st, &r->limit_rate,
                   &r->floor, NULL, r) != 0) {
    lb_stamps_close(&st);
    return;
  }
  if ((impl = load_impl(o, c->impl, why, sizeof why)) == NULL) {
    lb_fail(r, LB_FAILED, "%s", why);
  } else if (c->kind != 0 &&
             !(impl->watcher_kinds & LSPEC_WATCHER_KIND_BIT(c->kind))) {
    lb_fail(r, LB_UNSUPPORTED, "the table does not offer this watcher kind");
  } else {
    lb_abi_run(o, impl, c, &st, r);
  }
  r->warnings = atomic_load(&warnings);
  lb_stamps_close(&st);
}

void lb_probe_impl(const struct lb_options *o, int idx, struct lb_probe *p) {
  const struct lspec_impl *impl;

  memset(p, 0, sizeof *p);
  if ((impl = load_impl(o, idx, p->why, sizeof p->why)) == NULL)
    return;
  p->ok = 1;
  snprintf(p->name, sizeof p->name, "%s", impl->name);
  snprintf(p->version, sizeof p->version, "%s", impl->version);
  p->watcher_kinds = impl->watcher_kinds;
  p->profiles = impl->profiles;
  p->capabilities = impl->capabilities;
  p->custom_child_watchers = impl->custom_child_watchers;
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  ssize_t w;

  while (len > 0) {
    w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int lb_worker_main(const struct lb_options *o) {
  struct lb_result r;
  struct lb_probe p;
  int rc;

  if (o->probe) {
    lb_probe_impl(o, o->worker_cfg.impl, &p);
    rc = write_all(o->worker_fd, &p, sizeof p);
  } else {
    lb_run_config(o, &o->worker_cfg, &r);
    rc = write_all(o->worker_fd, &r, sizeof r);
  }
  close(o->worker_fd);
  return rc == 0 ? 0 : 1;
}
