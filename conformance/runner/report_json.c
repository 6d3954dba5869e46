/* report_json.c - the JSON report (--report json:PATH).
 *
 * Shape (every key always present):
 *   { "implementation": { "name", "version", "abi_version", "path",
 *                         "capabilities": [names], "custom_child_watchers",
 *                         "watcher_kinds": [names], "profiles": ["3.8", ...] },
 *     "profile": "3.12", "follow": "doc", "filter": null | "GLOB",
 *     "strict": false, "stopped": false,
 *     "summary": { "pass", "fail", "xfail", "xpass", "unsupported",
 *                  "unresolved", "crash", "timeout" },       (tests)
 *     "clause_summary": { the same keys, "untested", "info" }, (clauses)
 *     "expectations": null | { "path", "entries", "unused": [names] },
 *     "clauses": [ { "id", "area", "level", "source", "statement",
 *                    "result", "observed", "counted", "conflict",
 *                    "tests": [ { "name", "result", "message",
 *                                 "expected": null | { "line", "reason",
 *                                                      "intermittent" } } ]
 *                  } ] }
 * A clause reported as information (the side of a conflict the run does not
 * follow) has "result": "INFO", "counted": false, and its own roll-up in
 * "observed"; for every other clause "observed" equals "result".  A test
 * listed in the expectations file (--expect) carries its entry in
 * "expected"; "strict" says whether --strict was given; "unused" names the entries whose tests this run did not
 * decide (not run, UNSUPPORTED or UNRESOLVED).
 *
 * lr_report_open() and lr_report_close(), which every report file goes
 * through, are here too, so that their messages read alike.
 *
 * Strings are escaped here, with no library: '"', '\\' and control
 * characters are escaped, and bytes that are not valid UTF-8 (an
 * implementation's error text can hold anything) become U+FFFD, so the file
 * is always valid JSON in UTF-8.
 */
#include "runner.h"

#include <errno.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at `s` (1 to 4), or 0 if the bytes
 * there are not one: overlong forms, surrogates and code points past
 * U+10FFFF are refused, as RFC 3629 says. */
size_t lr_utf8_sequence(const unsigned char *s) {
  unsigned char c = s[0];
  size_t n, i;
  unsigned long cp;

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) /* Also stops at the terminating NUL. */
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* Writes `s` as a JSON string, or null for NULL. */
static void json_string(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n;

  if (s == NULL) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  while (*p) {
    switch (*p) {
    case '"':
      fputs("\\\"", f);
      break;
    case '\\':
      fputs("\\\\", f);
      break;
    case '\n':
      fputs("\\n", f);
      break;
    case '\r':
      fputs("\\r", f);
      break;
    case '\t':
      fputs("\\t", f);
      break;
    case '\b':
      fputs("\\b", f);
      break;
    case '\f':
      fputs("\\f", f);
      break;
    default:
      if (*p < 0x20) {
        fprintf(f, "\\u%04x", *p);
        break;
      }
      n = lr_utf8_sequence(p);
      if (n == 0) {
        fputs("\\ufffd", f);
        break;
      }
      fwrite(p, 1, n, f);
      p += n;
      continue;
    }
    p++;
  }
  fputc('"', f);
}

/* Writes "key": with the separator that precedes it. */
static void json_key(FILE *f, bool *first, const char *key) {
  fputs(*first ? "" : ", ", f);
  *first = false;
  json_string(f, key);
  fputs(": ", f);
}

static void json_counts(FILE *f, const struct lr_counts *c, bool clauses) {
  static const enum lr_result order[] = {
      LR_PASS,        LR_FAIL,       LR_XFAIL, LR_XPASS,
      LR_UNSUPPORTED, LR_UNRESOLVED, LR_CRASH, LR_TIMEOUT};
  bool first = true;
  size_t i;

  fputc('{', f);
  for (i = 0; i < sizeof order / sizeof order[0]; i++) {
    json_key(f, &first, lr_result_key(order[i]));
    fprintf(f, "%zu", c->n[order[i]]);
  }
  if (clauses) {
    json_key(f, &first, "untested");
    fprintf(f, "%zu", c->n[LR_UNTESTED]);
    json_key(f, &first, "info");
    fprintf(f, "%zu", c->info);
  }
  fputc('}', f);
}

static void json_implementation(const struct lr_run *run, FILE *f) {
  const struct lspec_impl *impl = run->impl;
  char profile[16];
  bool first = true, item;
  size_t i;
  int k;
  const char *custom;

  fputc('{', f);
  json_key(f, &first, "name");
  json_string(f, impl->name);
  json_key(f, &first, "version");
  json_string(f, impl->version);
  json_key(f, &first, "abi_version");
  fprintf(f, "%u", (unsigned)impl->abi_version);
  json_key(f, &first, "path");
  json_string(f, run->impl_file);

  json_key(f, &first, "capabilities");
  fputc('[', f);
  for (i = 0, item = false; i < lh_ncap_names; i++)
    if (impl->capabilities & lh_cap_names[i].bit) {
      fputs(item ? ", " : "", f);
      json_string(f, lh_cap_names[i].macro);
      item = true;
    }
  fputc(']', f);

  json_key(f, &first, "custom_child_watchers");
  custom = lh_custom_watchers_name(impl->custom_child_watchers);
  json_string(f, custom != NULL ? custom : "?");

  json_key(f, &first, "watcher_kinds");
  fputc('[', f);
  for (k = LSPEC_WATCHER_THREADED, item = false; k <= LSPEC_WATCHER_NATIVE; k++)
    if (impl->watcher_kinds & LSPEC_WATCHER_KIND_BIT(k)) {
      fputs(item ? ", " : "", f);
      json_string(f, lh_watcher_kind_name(k));
      item = true;
    }
  fputc(']', f);

  json_key(f, &first, "profiles");
  fputc('[', f);
  for (k = 8, item = false; k <= 12; k++)
    if (impl->profiles & LSPEC_PROFILE_BIT(LSPEC_PROFILE(3, k))) {
      fputs(item ? ", " : "", f);
      json_string(
          f, lr_profile_text(LSPEC_PROFILE(3, k), profile, sizeof profile));
      item = true;
    }
  fputc(']', f);
  fputc('}', f);
}

static void json_expectations(const struct lr_run *run, FILE *f) {
  bool first = true, item = false;
  size_t i;

  if (run->expect.path == NULL) {
    fputs("null", f);
    return;
  }
  fputc('{', f);
  json_key(f, &first, "path");
  json_string(f, run->expect.path);
  json_key(f, &first, "entries");
  fprintf(f, "%zu", run->expect.n);
  json_key(f, &first, "unused");
  fputc('[', f);
  for (i = 0; i < run->expect.n; i++)
    if (lr_expect_unused(run, &run->expect.entries[i])) {
      fputs(item ? ", " : "", f);
      json_string(f, run->expect.entries[i].test);
      item = true;
    }
  fputs("]}", f);
}

static void json_clause(const struct lr_run *run, size_t index, FILE *f) {
  const struct lr_clause *c = &run->clauses[index];
  char name[512];
  bool first = true, item = false;
  size_t i, j;

  fputs("    {", f);
  json_key(f, &first, "id");
  json_string(f, c->reg->id);
  json_key(f, &first, "area");
  json_string(f, c->reg->area);
  json_key(f, &first, "level");
  json_string(f, c->reg->level);
  json_key(f, &first, "source");
  json_string(f, c->reg->source);
  json_key(f, &first, "statement");
  json_string(f, c->reg->statement);
  json_key(f, &first, "result");
  json_string(f, c->info ? "INFO" : lr_result_name(c->result));
  json_key(f, &first, "observed");
  json_string(f, lr_result_name(c->result));
  json_key(f, &first, "counted");
  fputs(c->info ? "false" : "true", f);
  json_key(f, &first, "conflict");
  json_string(f, c->reg->conflict);

  json_key(f, &first, "tests");
  fputc('[', f);
  for (i = 0; i < run->ntests; i++) {
    const struct lr_test *t = &run->tests[i];
    bool cites = false, tfirst = true;
    if (!t->selected || !t->has_result)
      continue;
    for (j = 0; j < t->reg->nclauses && !cites; j++)
      cites = t->clauses[j] == index;
    if (!cites)
      continue;
    snprintf(name, sizeof name, "%s::%s", t->reg->suite, t->reg->name);
    fputs(item ? ",\n      {" : "\n      {", f);
    item = true;
    json_key(f, &tfirst, "name");
    json_string(f, name);
    json_key(f, &tfirst, "result");
    json_string(f, lr_result_name(t->result));
    json_key(f, &tfirst, "message");
    json_string(f, t->message);
    json_key(f, &tfirst, "expected");
    if (t->expect != NULL) {
      bool efirst = true;
      fputc('{', f);
      json_key(f, &efirst, "line");
      fprintf(f, "%u", t->expect->line);
      json_key(f, &efirst, "reason");
      json_string(f, t->expect->reason);
      json_key(f, &efirst, "intermittent");
      fputs(t->expect->intermittent ? "true" : "false", f);
      fputc('}', f);
    } else {
      fputs("null", f);
    }
    fputc('}', f);
  }
  fputs(item ? "\n    ]}" : "]}", f);
}

FILE *lr_report_open(enum lr_report_format format, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    fprintf(stderr, LR_PROGRAM ": cannot write the %s report %s: %s\n",
            lr_report_format_name(format), path, strerror(errno));
  return f;
}

int lr_report_close(FILE *f, enum lr_report_format format, const char *path) {
  if (ferror(f)) {
    fclose(f);
    fprintf(stderr, LR_PROGRAM ": cannot write the %s report %s: write error\n",
            lr_report_format_name(format), path);
    return -1;
  }
  if (fclose(f) != 0) {
    fprintf(stderr, LR_PROGRAM ": cannot write the %s report %s: %s\n",
            lr_report_format_name(format), path, strerror(errno));
    return -1;
  }
  return 0;
}

int lr_report_json(const struct lr_run *run, const char *path) {
  struct lr_counts tests, clauses;
  char profile[16];
  bool item = false;
  size_t i;
  FILE *f;

  f = lr_report_open(LR_REPORT_JSON, path);
  if (f == NULL)
    return -1;
  lr_count_tests(run, &tests);
  lr_count_clauses(run, &clauses);

  fputs("{\n  \"implementation\": ", f);
  json_implementation(run, f);
  fputs(",\n  \"profile\": ", f);
  json_string(f, lr_profile_text(run->profile, profile, sizeof profile));
  fputs(",\n  \"follow\": ", f);
  json_string(f, run->follow);
  fputs(",\n  \"filter\": ", f);
  json_string(f, run->opt.filter);
  fprintf(f, ",\n  \"strict\": %s", run->opt.strict ? "true" : "false");
  fprintf(f, ",\n  \"stopped\": %s", run->stopped ? "true" : "false");
  fputs(",\n  \"summary\": ", f);
  json_counts(f, &tests, false);
  fputs(",\n  \"clause_summary\": ", f);
  json_counts(f, &clauses, true);
  fputs(",\n  \"expectations\": ", f);
  json_expectations(run, f);
  fputs(",\n  \"clauses\": [", f);
  for (i = 0; i < run->nclauses; i++) {
    if (!run->clauses[i].reported)
      continue;
    fputs(item ? ",\n" : "\n", f);
    item = true;
    json_clause(run, i, f);
  }
  fputs(item ? "\n  ]\n}\n" : "]\n}\n", f);

  return lr_report_close(f, LR_REPORT_JSON, path);
}
