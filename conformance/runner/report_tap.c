/* report_tap.c - the TAP version 13 report (--report tap:PATH), for CI
 * systems and harnesses that read the Test Anything Protocol.
 *
 * It holds the tests the JSON report counts (lr_test_listed()), each once,
 * with the same result, in suite::name order:
 *
 *   TAP version 13
 *   1..N
 *   # loopspec-conform: NAME VERSION (ABI v1), profile 3.12, following doc
 *   ok 1 - CW watcher::a_test                         PASS
 *   not ok 2 - CW watcher::b_test                     FAIL, XPASS, CRASH,
 *     ---                                             TIMEOUT: a YAML block
 *     result: FAIL
 *     clauses: ["CW-REMOVE-002"]
 *     message: "what went wrong"
 *     expectation: {file: "...", line: 3, reason: "...", intermittent: false}
 *     ...
 *   ok 3 - LOOP loop::c_test # SKIP the implementation does not offer ...
 *                                                     UNSUPPORTED
 *   ok 4 - SUB sub::d_test # SKIP unresolved: fork failed   UNRESOLVED
 *   not ok 5 - CW watcher::e_test # TODO expected failure: REASON
 *     --- (the failure seen) ...                      XFAIL
 *
 * A description is the test's clause area and its suite::name; '#' and '\'
 * in it are escaped with '\', as TAP asks.  A directive's reason is one
 * line.  YAML strings are double-quoted with escapes, and bytes that are not
 * valid UTF-8 become U+FFFD, so every block is valid YAML.
 */
#include "runner.h"

#include <string.h>

/* The code point of the valid UTF-8 sequence of `n` bytes at `p`. */
static unsigned long code_point(const unsigned char *p, size_t n) {
  static const unsigned char lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
  unsigned long cp = p[0] & lead_mask[n];
  size_t i;
  for (i = 1; i < n; i++)
    cp = (cp << 6) | (p[i] & 0x3f);
  return cp;
}

/* Writes `s` as a YAML double-quoted string; "null" for NULL.  Characters
 * YAML does not allow raw (controls, C1 controls, U+FFFE, U+FFFF) are
 * escaped. */
static void yaml_string(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned long cp;
  size_t n;

  if (s == NULL) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  while (*p) {
    n = lr_utf8_sequence(p);
    if (n == 0) {
      fputs("\\uFFFD", f);
      p++;
      continue;
    }
    cp = code_point(p, n);
    if (cp == '"' || cp == '\\')
      fprintf(f, "\\%c", (int)cp);
    else if (cp == '\n')
      fputs("\\n", f);
    else if (cp == '\t')
      fputs("\\t", f);
    else if (cp < 0x20 || cp == 0x7f)
      fprintf(f, "\\x%02lx", cp);
    else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0xfffe || cp == 0xffff)
      fprintf(f, "\\u%04lX", cp);
    else
      fwrite(p, 1, n, f);
    p += n;
  }
  fputc('"', f);
}

/* Writes the first line of `s` for a test line or a comment: controls as
 * spaces, bytes that are not valid UTF-8 as U+FFFD, and, with `escape`, '#'
 * and '\' escaped with '\' (a description's escapes). */
static void tap_line_text(FILE *f, const char *s, bool escape) {
  const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
  size_t n;
  for (; *p && *p != '\n'; p += n) {
    n = lr_utf8_sequence(p);
    if (n == 0) {
      fputs("\xef\xbf\xbd", f); /* U+FFFD */
      n = 1;
    } else if (*p < 0x20 || *p == 0x7f) {
      fputc(' ', f);
    } else {
      if (escape && (*p == '#' || *p == '\\'))
        fputc('\\', f);
      fwrite(p, 1, n, f);
    }
  }
}

/* The YAML diagnostics block under a "not ok" line. */
static void tap_yaml(const struct lr_run *run, const struct lr_test *t,
                     FILE *f) {
  size_t i;

  fputs("  ---\n  result: ", f);
  yaml_string(f, lr_result_name(t->result));
  fputs("\n  area: ", f);
  yaml_string(f, lr_test_area(run, t));
  fputs("\n  clauses: [", f);
  for (i = 0; i < t->reg->nclauses; i++) {
    fputs(i ? ", " : "", f);
    yaml_string(f, t->reg->clauses[i]);
  }
  fputs("]\n  message: ", f);
  yaml_string(f, t->message);
  if (t->expect != NULL) {
    fputs("\n  expectation: {file: ", f);
    yaml_string(f, run->expect.path);
    fprintf(f, ", line: %u, reason: ", t->expect->line);
    yaml_string(f, t->expect->reason);
    fprintf(f, ", intermittent: %s}",
            t->expect->intermittent ? "true" : "false");
  }
  fputs("\n  ...\n", f);
}

int lr_report_tap(const struct lr_run *run, const char *path) {
  char profile[16];
  size_t i, n = 0, k;
  FILE *f;

  f = lr_report_open(LR_REPORT_TAP, path);
  if (f == NULL)
    return -1;
  for (i = 0; i < run->ntests; i++)
    if (lr_test_listed(&run->tests[i]))
      n++;
  fprintf(f, "TAP version 13\n1..%zu\n# " LR_PROGRAM ": ", n);
  tap_line_text(f, run->impl->name, false);
  fputc(' ', f);
  tap_line_text(f, run->impl->version, false);
  fprintf(f, " (ABI v%u), profile %s, following %s%s\n",
          (unsigned)run->impl->abi_version,
          lr_profile_text(run->profile, profile, sizeof profile), run->follow,
          run->opt.strict ? ", strict" : "");

  for (i = 0, k = 0; i < run->ntests; i++) {
    const struct lr_test *t = &run->tests[run->by_name[i]];
    const char *msg = t->message != NULL ? t->message : "";
    bool ok = t->result == LR_PASS || t->result == LR_UNSUPPORTED ||
              t->result == LR_UNRESOLVED;

    if (!lr_test_listed(t))
      continue;
    fprintf(f, "%s %zu - ", ok ? "ok" : "not ok", ++k);
    tap_line_text(f, lr_test_area(run, t), true);
    fputc(' ', f);
    tap_line_text(f, t->reg->suite, true);
    fputs("::", f);
    tap_line_text(f, t->reg->name, true);
    switch (t->result) {
    case LR_UNSUPPORTED:
      fputs(" # SKIP ", f);
      tap_line_text(f, msg, false);
      break;
    case LR_UNRESOLVED:
      fputs(" # SKIP unresolved: ", f);
      tap_line_text(f, msg, false);
      break;
    case LR_XFAIL:
      fputs(" # TODO expected failure: ", f);
      tap_line_text(f, t->expect != NULL ? t->expect->reason : "", false);
      break;
    default:
      break;
    }
    fputc('\n', f);
    if (!ok)
      tap_yaml(run, t, f);
  }
  return lr_report_close(f, LR_REPORT_TAP, path);
}
