/* report_junit.c - the JUnit XML report (--report junit:PATH), for CI
 * systems that read test results in that format.
 *
 * It holds the tests the JSON report counts (lr_test_listed()), each once,
 * with the same result:
 *
 *   <testsuites name="loopspec-conform" tests failures errors skipped>
 *     <testsuite name="CW" tests failures errors skipped>     one per area
 *       <properties> implementation, implementation_version, abi_version,
 *                    profile, follow, strict </properties>
 *       <testcase classname="CW" name="watcher::remove_...">
 *         <properties>
 *           <property name="result" value="XFAIL"/>   the loopspec result
 *           <property name="clause" value="CW-REMOVE-004"/>   one per clause
 *           <property name="expectation" value="FILE:LINE: reason"/>  if any
 *         </properties>
 *         <failure type="FAIL" message="first line">whole message</failure>
 *       </testcase> ...
 *
 * A testcase's classname is the clause area it is reported under
 * (lr_test_area()); a test lies in the testsuite of that area.  Results:
 *   PASS          nothing more
 *   FAIL, XPASS   <failure type="FAIL|XPASS">     (they fail the run)
 *   CRASH,
 *   TIMEOUT       <error type="CRASH|TIMEOUT">    (they fail the run)
 *   UNSUPPORTED   <skipped message="reason"/>
 *   UNRESOLVED    <skipped message="unresolved: reason"/>
 *   XFAIL         <skipped message="expected failure: REASON"/> with the
 *                 failure seen as the element's text
 * XFAIL is skipped rather than passed because the closing line counts it as
 * skipped too: a known deviation is neither a pass nor a failure, and a CI
 * page that shows it as skipped keeps it in sight.
 *
 * Text is UTF-8; bytes that are not valid UTF-8 become U+FFFD and control
 * characters that XML 1.0 cannot carry become "\xNN", so the file is always
 * well-formed.
 */
#include "runner.h"

#include <string.h>

/* Writes `s` escaped for XML: as attribute text when `attr` (newlines and
 * tabs as character references, so that a reader keeps them), as element
 * text otherwise.  NULL writes nothing. */
static void xml_text(FILE *f, const char *s, bool attr) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n;

  if (s == NULL)
    return;
  while (*p) {
    switch (*p) {
    case '&':
      fputs("&amp;", f);
      break;
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '"':
      fputs(attr ? "&quot;" : "\"", f);
      break;
    case '\n':
      fputs(attr ? "&#10;" : "\n", f);
      break;
    case '\t':
      fputs(attr ? "&#9;" : "\t", f);
      break;
    case '\r':
      fputs("&#13;", f);
      break;
    default:
      if (*p < 0x20) {
        fprintf(f, "\\x%02x", *p);
        break;
      }
      n = lr_utf8_sequence(p);
      /* XML 1.0 has no U+FFFE or U+FFFF either. */
      if (n == 0 || (n == 3 && p[0] == 0xef && p[1] == 0xbf && p[2] >= 0xbe)) {
        fputs("\xef\xbf\xbd", f); /* U+FFFD */
        p += n ? n : 1;
        continue;
      }
      fwrite(p, 1, n, f);
      p += n;
      continue;
    }
    p++;
  }
}

/* Writes the first line of `s` as attribute text. */
static void xml_first_line(FILE *f, const char *s) {
  const char *nl = strchr(s, '\n');
  char buf[512];
  size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);

  if (n >= sizeof buf)
    n = sizeof buf - 1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  xml_text(f, buf, true);
}

static void xml_property(FILE *f, const char *indent, const char *name,
                         const char *value) {
  fprintf(f, "%s<property name=\"", indent);
  xml_text(f, name, true);
  fputs("\" value=\"", f);
  xml_text(f, value, true);
  fputs("\"/>\n", f);
}

/* Counts of one group of tests, as JUnit's attributes count them. */
struct junit_counts {
  size_t tests, failures, errors, skipped;
};

static void junit_add(struct junit_counts *c, enum lr_result r) {
  c->tests++;
  if (r == LR_FAIL || r == LR_XPASS)
    c->failures++;
  else if (r == LR_CRASH || r == LR_TIMEOUT)
    c->errors++;
  else if (r == LR_UNSUPPORTED || r == LR_UNRESOLVED || r == LR_XFAIL)
    c->skipped++;
}

static void junit_attrs(FILE *f, const struct junit_counts *c) {
  fprintf(f,
          " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\"",
          c->tests, c->failures, c->errors, c->skipped);
}

static void junit_testcase(const struct lr_run *run, const struct lr_test *t,
                           const char *area, FILE *f) {
  const char *msg = t->message != NULL ? t->message : lr_result_name(t->result);
  size_t i;

  fputs("    <testcase classname=\"", f);
  xml_text(f, area, true);
  fputs("\" name=\"", f);
  xml_text(f, t->reg->suite, true);
  fputs("::", f);
  xml_text(f, t->reg->name, true);
  fputs("\">\n      <properties>\n", f);
  xml_property(f, "        ", "result", lr_result_name(t->result));
  for (i = 0; i < t->reg->nclauses; i++)
    xml_property(f, "        ", "clause", t->reg->clauses[i]);
  if (t->expect != NULL) {
    fputs("        <property name=\"expectation\" value=\"", f);
    xml_text(f, run->expect.path, true);
    fprintf(f, ":%u: ", t->expect->line);
    xml_text(f, t->expect->reason, true);
    fputs("\"/>\n", f);
  }
  fputs("      </properties>\n", f);

  switch (t->result) {
  case LR_FAIL:
  case LR_XPASS:
  case LR_CRASH:
  case LR_TIMEOUT: {
    const char *el =
        t->result == LR_FAIL || t->result == LR_XPASS ? "failure" : "error";
    fprintf(f, "      <%s type=\"%s\" message=\"", el,
            lr_result_name(t->result));
    xml_first_line(f, msg);
    fputs("\">", f);
    xml_text(f, msg, false);
    fprintf(f, "</%s>\n", el);
    break;
  }
  case LR_UNSUPPORTED:
    fputs("      <skipped message=\"", f);
    xml_first_line(f, msg);
    fputs("\"/>\n", f);
    break;
  case LR_UNRESOLVED:
    fputs("      <skipped message=\"unresolved: ", f);
    xml_first_line(f, msg);
    fputs("\"/>\n", f);
    break;
  case LR_XFAIL:
    fputs("      <skipped message=\"expected failure: ", f);
    xml_first_line(f, t->expect != NULL ? t->expect->reason : "");
    fputs("\">", f);
    xml_text(f, t->message, false);
    fputs("</skipped>\n", f);
    break;
  default:
    break;
  }
  fputs("    </testcase>\n", f);
}

/* True when clause `i` is the first reported, counted clause of its area. */
static bool first_of_area(const struct lr_run *run, size_t i) {
  const struct lr_clause *c = &run->clauses[i];
  size_t j;
  if (!c->reported || c->info)
    return false;
  for (j = 0; j < i; j++)
    if (run->clauses[j].reported && !run->clauses[j].info &&
        strcmp(run->clauses[j].reg->area, c->reg->area) == 0)
      return false;
  return true;
}

int lr_report_junit(const struct lr_run *run, const char *path) {
  struct junit_counts all = {0, 0, 0, 0};
  char profile[16], abi[16];
  size_t i, k;
  FILE *f;

  f = lr_report_open(LR_REPORT_JUNIT, path);
  if (f == NULL)
    return -1;

  for (i = 0; i < run->ntests; i++)
    if (lr_test_listed(&run->tests[i]))
      junit_add(&all, run->tests[i].result);
  fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<testsuites name=\"" LR_PROGRAM "\"",
        f);
  junit_attrs(f, &all);
  fputs(">\n", f);

  lr_profile_text(run->profile, profile, sizeof profile);
  snprintf(abi, sizeof abi, "%u", (unsigned)run->impl->abi_version);
  /* One testsuite per area, in the registry's order of areas; its tests in
   * suite::name order. */
  for (i = 0; i < run->nclauses; i++) {
    const char *area = run->clauses[i].reg->area;
    struct junit_counts c = {0, 0, 0, 0};

    if (!first_of_area(run, i))
      continue;
    for (k = 0; k < run->ntests; k++) {
      const struct lr_test *t = &run->tests[run->by_name[k]];
      if (lr_test_listed(t) && strcmp(lr_test_area(run, t), area) == 0)
        junit_add(&c, t->result);
    }
    if (c.tests == 0)
      continue;
    fputs("  <testsuite name=\"", f);
    xml_text(f, area, true);
    fputc('"', f);
    junit_attrs(f, &c);
    fputs(">\n    <properties>\n", f);
    xml_property(f, "      ", "implementation", run->impl->name);
    xml_property(f, "      ", "implementation_version", run->impl->version);
    xml_property(f, "      ", "abi_version", abi);
    xml_property(f, "      ", "profile", profile);
    xml_property(f, "      ", "follow", run->follow);
    xml_property(f, "      ", "strict", run->opt.strict ? "true" : "false");
    fputs("    </properties>\n", f);
    for (k = 0; k < run->ntests; k++) {
      const struct lr_test *t = &run->tests[run->by_name[k]];
      if (lr_test_listed(t) && strcmp(lr_test_area(run, t), area) == 0)
        junit_testcase(run, t, area, f);
    }
    fputs("  </testsuite>\n", f);
  }
  fputs("</testsuites>\n", f);
  return lr_report_close(f, LR_REPORT_JUNIT, path);
}
