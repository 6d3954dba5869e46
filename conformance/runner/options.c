/* options.c - loopspec-conform's command line.
 *
 * Every mistake is reported as one line on stderr and exit status 2, so that a
 * CI log shows the mistake and nothing else.
 */
#include "runner.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void lr_print_usage(FILE *f) {
  fputs(
      "usage: " LR_PROGRAM " [options]\n"
      "Runs the loopspec conformance suite on an implementation of the\n"
      "loopspec ABI v1 and reports a result per clause.\n"
      "\n"
      "  --impl PATH        the implementation: a shared object exporting\n"
      "                     lspec_impl_v1 (default: the linked-in reference)\n"
      "  --profile 3.N      the Python version to emulate, 3.8 to 3.12\n"
      "                     (default: the newest the implementation declares)\n"
      "  --follow doc|cpython\n"
      "                     which side of a doc/CPython conflict counts\n"
      "                     (default: doc); the other is reported as info\n"
      "  --filter GLOB      only the tests of clauses whose id matches GLOB\n"
      "  --list             print every clause: id, level, source, statement\n"
      "  -j, --jobs N       tests run in parallel (default: one per CPU)\n"
      "  --report text      the text report on stdout (always written);\n"
      "                     the reports below go to files, several in one\n"
      "                     run if --report is repeated (each to its own\n"
      "                     PATH), all with the same tests and results\n"
      "  --report json:PATH also write the JSON report to PATH\n"
      "  --report junit:PATH\n"
      "                     also write a JUnit XML report to PATH: a\n"
      "                     testsuite per clause area, a testcase per test\n"
      "                     with a property per clause it cites; FAIL and\n"
      "                     XPASS are failures, CRASH and TIMEOUT errors,\n"
      "                     UNSUPPORTED, UNRESOLVED and XFAIL skipped (XFAIL\n"
      "                     as \"expected failure: REASON\")\n"
      "  --report tap:PATH  also write a TAP version 13 report to PATH: a\n"
      "                     line per test, YAML diagnostics under each\n"
      "                     \"not ok\", \"# SKIP\" for UNSUPPORTED and\n"
      "                     UNRESOLVED, \"# TODO\" for XFAIL\n"
      "  --run-timeout S    stop the whole run after S seconds (default: the\n"
      "                     sum of the tests' own timeouts, plus margins)\n"
      "  --expect FILE      the implementation's known deviations (TOML: one\n"
      "                     [[expect]] per test, with test = \"suite::name\",\n"
      "                     reason = \"...\", optional clause = \"ID\" and\n"
      "                     intermittent = true); a listed test that fails is\n"
      "                     XFAIL, one that passes is XPASS (\"remove this\n"
      "                     entry\"), which fails the run unless the entry is\n"
      "                     intermittent.  A bad file is exit 2, FILE:LINE\n"
      "  --strict           intermittent entries excuse no pass: every listed\n"
      "                     test that passes is XPASS and fails the run\n"
      "  -h, --help         this text\n"
      "\n"
      "Exit status: 0 when nothing is FAIL, XPASS, CRASH or TIMEOUT; 1\n"
      "otherwise; 2 for a usage error, a bad expectations file, an\n"
      "implementation that cannot be used, a report file that cannot be\n"
      "written, or a run in which no test ran.\n"
      "The last line of output reads \"conformance: N passed, N failed, N\n"
      "skipped\": XFAIL counts as skipped (known, not conformant), XPASS as\n"
      "failed; UNSUPPORTED and UNRESOLVED are skipped too.\n"
      "\n"
      "Environment: LSPEC_CPYTHON_POLICY is read by the CPython adapter\n"
      "(libloopspec_cpython.so): unset for asyncio's own policy, \"uvloop\"\n"
      "for uvloop.EventLoopPolicy, or \"module:Class\" for any policy\n"
      "class (conformance/adapters/cpython/README.md).\n",
      f);
}

/* Prints one usage error line and returns -1. */
static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...) {
  va_list ap;
  fputs(LR_PROGRAM ": ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (try --help)\n", stderr);
  return -1;
}

/* Parses a positive decimal count no larger than `max`; returns 0 on
 * failure. */
static size_t parse_count(const char *text, size_t max) {
  char *end;
  unsigned long v;
  if (text[0] < '0' || text[0] > '9')
    return 0;
  errno = 0;
  v = strtoul(text, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return 0;
  return (size_t)v;
}

/* The formats of --report FORMAT:PATH, by prefix. */
static const struct {
  const char *prefix; /* with its colon */
  enum lr_report_format format;
} report_formats[] = {
    {"json:", LR_REPORT_JSON},
    {"junit:", LR_REPORT_JUNIT},
    {"tap:", LR_REPORT_TAP},
};

static int add_report(struct lr_options *o, const char *spec) {
  struct lr_report_file *grown;
  const char *path = NULL;
  enum lr_report_format format = LR_REPORT_JSON;
  size_t i, plen;

  if (strcmp(spec, "text") == 0)
    return 0; /* The text report is always written. */
  for (i = 0; i < sizeof report_formats / sizeof report_formats[0]; i++) {
    plen = strlen(report_formats[i].prefix);
    /* "junit" alone is the format without its file name. */
    if (strncmp(spec, report_formats[i].prefix, plen - 1) == 0 &&
        (spec[plen - 1] == ':' || spec[plen - 1] == '\0')) {
      format = report_formats[i].format;
      path = spec[plen - 1] == ':' ? spec + plen : "";
      break;
    }
  }
  if (path == NULL)
    return usage_error("unknown report format '%s': use text, json:PATH, "
                       "junit:PATH or tap:PATH",
                       spec);
  if (path[0] == '\0')
    return usage_error("--report %s needs a file name, as %sPATH", spec,
                       report_formats[i].prefix);
  for (i = 0; i < o->nreports; i++)
    if (strcmp(o->reports[i].path, path) == 0)
      return usage_error("two reports would be written to %s", path);
  grown = realloc(o->reports, (o->nreports + 1) * sizeof *grown);
  if (grown == NULL)
    return usage_error("out of memory while reading '%s'", spec);
  o->reports = grown;
  o->reports[o->nreports].format = format;
  o->reports[o->nreports].path = path;
  o->nreports++;
  return 0;
}

enum {
  OPT_IMPL = 256,
  OPT_PROFILE,
  OPT_FOLLOW,
  OPT_FILTER,
  OPT_LIST,
  OPT_REPORT,
  OPT_RUN_TIMEOUT,
  OPT_EXPECT,
  OPT_STRICT
};

int lr_parse_options(int argc, char **argv, struct lr_options *o) {
  static const struct option longopts[] = {
      {"impl", required_argument, NULL, OPT_IMPL},
      {"profile", required_argument, NULL, OPT_PROFILE},
      {"follow", required_argument, NULL, OPT_FOLLOW},
      {"filter", required_argument, NULL, OPT_FILTER},
      {"list", no_argument, NULL, OPT_LIST},
      {"jobs", required_argument, NULL, 'j'},
      {"report", required_argument, NULL, OPT_REPORT},
      {"run-timeout", required_argument, NULL, OPT_RUN_TIMEOUT},
      {"expect", required_argument, NULL, OPT_EXPECT},
      {"strict", no_argument, NULL, OPT_STRICT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  char *end;
  int c;

  memset(o, 0, sizeof *o);
  o->follow = "doc";
  opterr = 0; /* Our own one-line messages, not getopt's. */
  optind = 1;

  while ((c = getopt_long(argc, argv, ":hj:", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_IMPL:
      o->impl_path = optarg;
      break;
    case OPT_PROFILE:
      o->profile = lr_profile_parse(optarg);
      if (o->profile == 0)
        return usage_error("unknown profile '%s': use 3.8, 3.9, 3.10, 3.11 "
                           "or 3.12",
                           optarg);
      break;
    case OPT_FOLLOW:
      if (strcmp(optarg, "doc") != 0 && strcmp(optarg, "cpython") != 0)
        return usage_error("--follow takes doc or cpython, not '%s'", optarg);
      o->follow = strcmp(optarg, "doc") == 0 ? "doc" : "cpython";
      break;
    case OPT_FILTER:
      if (optarg[0] == '\0')
        return usage_error("--filter needs a glob");
      o->filter = optarg;
      break;
    case OPT_LIST:
      o->list = true;
      break;
    case 'j':
      o->jobs = parse_count(optarg, 1024);
      if (o->jobs == 0)
        return usage_error("-j takes a number of jobs from 1 to 1024, not "
                           "'%s'",
                           optarg);
      break;
    case OPT_REPORT:
      if (add_report(o, optarg) != 0)
        return -1;
      break;
    case OPT_RUN_TIMEOUT:
      errno = 0;
      o->run_timeout = strtod(optarg, &end);
      if (errno != 0 || end == optarg || *end != '\0' ||
          !(o->run_timeout > 0) || !isfinite(o->run_timeout))
        return usage_error("--run-timeout takes a number of seconds, not "
                           "'%s'",
                           optarg);
      break;
    case OPT_EXPECT:
      if (o->expect_path != NULL)
        return usage_error("--expect given twice: one expectations file per "
                           "run");
      if (optarg[0] == '\0')
        return usage_error("--expect needs a file name");
      o->expect_path = optarg;
      break;
    case OPT_STRICT:
      o->strict = true;
      break;
    case 'h':
      o->help = true;
      break;
    case ':':
      if (optopt > 0 && optopt < 256)
        return usage_error("option -%c needs a value", optopt);
      return usage_error("option %s needs a value", argv[optind - 1]);
    default:
      if (optopt > 0 && optopt < 256)
        return usage_error("unknown option '-%c'", optopt);
      return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return usage_error("unexpected argument '%s'", argv[optind]);
  return 0;
}

void lr_options_free(struct lr_options *o) {
  free(o->reports);
  o->reports = NULL;
  o->nreports = 0;
}
