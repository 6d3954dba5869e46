/* main.c - loopspec-conform: runs the loopspec conformance suite on an
 * implementation of the ABI v1 and reports a result per clause.
 *
 *   loopspec-conform [--impl PATH.so] [--profile 3.N] [--follow doc|cpython]
 *                    [--filter GLOB] [-j N]
 *                    [--report text|json:PATH|junit:PATH|tap:PATH]...
 *                    [--expect FILE] [--strict]
 *   loopspec-conform --list [--filter GLOB] [--profile 3.N]
 *
 * The order of things: read the options; load and check the implementation
 * (a broken one is one line and exit 2, before anything runs); choose the
 * profile; hand the choices to the workers through the environment, the only
 * thing that reaches them (registry.h); decide what runs (plan.c); read the
 * expectations file, if any (expect.c), so that a bad one costs no run; run
 * the tests through Criterion (execute.c); roll the results up per clause,
 * expectations applied; write the reports, the text one last so that its
 * closing line ends stdout.
 */
#include "runner.h"

#include "impl_load.h"

#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Prints `--list`: every clause the filter (and an explicit profile) keeps,
 * one per line. */
static int list_clauses(const struct lr_options *o) {
  size_t i, width = 0, shown = 0;

  for (i = 0; i < lh_nclauses; i++)
    if (strlen(lh_clauses[i].id) > width)
      width = strlen(lh_clauses[i].id);
  for (i = 0; i < lh_nclauses; i++) {
    const struct lh_clause *c = &lh_clauses[i];
    if (o->filter != NULL && fnmatch(o->filter, c->id, 0) != 0)
      continue;
    if (o->profile != 0 &&
        (o->profile < c->profile_min || o->profile > c->profile_max))
      continue;
    printf("%-*s  %-6s  %-7s  ", (int)width, c->id, c->level, c->source);
    if (c->status != NULL && strcmp(c->status, "active") != 0)
      printf("(%s) ", c->status);
    lr_put_folded(stdout, c->statement);
    putchar('\n');
    shown++;
  }
  if (shown == 0 && o->filter != NULL) {
    fprintf(stderr, LR_PROGRAM ": filter '%s' matched no clause\n", o->filter);
    return LR_EXIT_USAGE;
  }
  return LR_EXIT_OK;
}

/* Chooses the profile: the one asked for, which the implementation must
 * declare, or the newest it declares.  Returns 0 or -1 after one line. */
static int choose_profile(struct lr_run *run) {
  char want[16], have[64];
  size_t used = 0;
  int minor;

  if (run->opt.profile != 0) {
    if (run->impl->profiles & LSPEC_PROFILE_BIT(run->opt.profile)) {
      run->profile = run->opt.profile;
      return 0;
    }
    have[0] = '\0';
    for (minor = 8; minor <= 12; minor++)
      if (run->impl->profiles & LSPEC_PROFILE_BIT(LSPEC_PROFILE(3, minor)))
        used += (size_t)snprintf(have + used, sizeof have - used, "%s3.%d",
                                 used ? ", " : "", minor);
    fprintf(stderr,
            LR_PROGRAM ": %s does not emulate profile %s; it declares %s\n",
            run->impl->name,
            lr_profile_text(run->opt.profile, want, sizeof want), have);
    return -1;
  }
  for (minor = 12; minor >= 8; minor--)
    if (run->impl->profiles & LSPEC_PROFILE_BIT(LSPEC_PROFILE(3, minor))) {
      run->profile = LSPEC_PROFILE(3, minor);
      return 0;
    }
  return -1; /* lh_load_impl() refuses a table with no profile. */
}

/* Hands the run's choices to the Criterion workers (registry.h). */
static int export_choices(const struct lr_run *run) {
  char profile[16];
  int rc = 0;

  lr_profile_text(run->profile, profile, sizeof profile);
  rc |= setenv("LSPEC_CONFORM_PROFILE", profile, 1);
  rc |= setenv("LSPEC_CONFORM_FOLLOW", run->follow, 1);
  if (run->impl_file != NULL)
    rc |= setenv("LSPEC_CONFORM_IMPL", run->impl_file, 1);
  else
    rc |= unsetenv("LSPEC_CONFORM_IMPL");
  if (rc != 0)
    fprintf(stderr, LR_PROGRAM ": cannot set the workers' environment\n");
  return rc != 0 ? -1 : 0;
}

/* Makes sure every report file can be written before anything runs, so a
 * mistyped directory does not cost a whole run. */
static int check_report_paths(const struct lr_options *o) {
  size_t i;
  for (i = 0; i < o->nreports; i++) {
    FILE *f = lr_report_open(o->reports[i].format, o->reports[i].path);
    if (f == NULL)
      return -1;
    fclose(f);
  }
  return 0;
}

/* Writes every report; the text one last.  Returns 0, or -1 when a report
 * file could not be written. */
static int write_reports(struct lr_run *run) {
  size_t i;
  int rc = 0, one;
  for (i = 0; i < run->opt.nreports; i++) {
    const struct lr_report_file *r = &run->opt.reports[i];
    switch (r->format) {
    case LR_REPORT_JUNIT:
      one = lr_report_junit(run, r->path);
      break;
    case LR_REPORT_TAP:
      one = lr_report_tap(run, r->path);
      break;
    case LR_REPORT_JSON:
    default:
      one = lr_report_json(run, r->path);
      break;
    }
    if (one != 0)
      rc = -1;
  }
  lr_report_text(run, stdout);
  fflush(stdout);
  return rc;
}

/* The watchdog's last word (execute.c): the reports, with what finished. */
static void emergency_reports(struct lr_run *run) {
  lr_conclude(run);
  write_reports(run);
}

/* Does the run once the options are read; returns the exit status. */
static int conform(struct lr_run *run) {
  const char *path = run->opt.impl_path;
  char why[512];
  char resolved[PATH_MAX];
  int status;

  if (lh_load_impl(path, &run->impl, why, sizeof why) != 0) {
    fprintf(stderr, LR_PROGRAM ": cannot use %s: %s\n",
            path != NULL && path[0] ? path : "the linked-in reference", why);
    return LR_EXIT_USAGE;
  }
  if (path != NULL && path[0] != '\0') {
    /* The workers may not share our idea of the current directory. */
    run->impl_file = strdup(realpath(path, resolved) != NULL ? resolved : path);
    if (run->impl_file == NULL) {
      fprintf(stderr, LR_PROGRAM ": out of memory\n");
      return LR_EXIT_USAGE;
    }
  }
  if (choose_profile(run) != 0 || export_choices(run) != 0 ||
      check_report_paths(&run->opt) != 0 || lr_plan(run) != 0 ||
      lr_expect_load(run) != 0)
    return LR_EXIT_USAGE;

  if (run->opt.filter != NULL && run->nmatched == 0) {
    fprintf(stderr, LR_PROGRAM ": filter '%s' matched no clause\n",
            run->opt.filter);
    return LR_EXIT_USAGE;
  }
  if (run->nselected == 0) {
    char profile[16];
    fprintf(stderr, LR_PROGRAM ": no test applies to %s under profile %s%s%s\n",
            run->impl->name,
            lr_profile_text(run->profile, profile, sizeof profile),
            run->opt.filter ? " among the clauses matching " : "",
            run->opt.filter ? run->opt.filter : "");
    return LR_EXIT_USAGE;
  }

  if (run->nto_run > 0 && lr_execute(run, emergency_reports) != 0)
    return LR_EXIT_USAGE;
  lr_conclude(run);

  status = lr_exit_status(run);
  if (write_reports(run) != 0)
    return LR_EXIT_USAGE;
  if (run->nto_run == 0 && status == LR_EXIT_OK) {
    fprintf(stderr,
            LR_PROGRAM ": no test ran: every selected test needs a "
                       "capability %s does not declare\n",
            run->impl->name);
    return LR_EXIT_USAGE;
  }
  return status;
}

int main(int argc, char **argv) {
  struct lr_run run;
  int status;

  memset(&run, 0, sizeof run);
  pthread_mutex_init(&run.lock, NULL);

  /* Workers never run main() (see execute.c), so reading the command line
   * before Criterion is initialised is safe. */
  if (lr_parse_options(argc, argv, &run.opt) != 0) {
    status = LR_EXIT_USAGE;
  } else if (run.opt.help) {
    lr_print_usage(stdout);
    status = LR_EXIT_OK;
  } else if (run.opt.list) {
    status = list_clauses(&run.opt);
  } else {
    run.follow = run.opt.follow;
    status = conform(&run);
  }

  lr_expect_free(&run.expect);
  lr_plan_free(&run);
  free(run.impl_file);
  lr_options_free(&run.opt);
  pthread_mutex_destroy(&run.lock);
  return status;
}
