/* expect.c - the expectations file (--expect FILE): the known deviations of
 * one implementation, each with its reason, and what they make of a run's
 * results.
 *
 * The file is TOML, of which this reads a strict subset: only what the
 * format needs, and anything else is an error naming the file and line.
 *
 *   # comments, on their own line or after a value
 *   follow = "doc"          optional, before the first entry: the file is
 *   profile = "3.11"        for runs with that --follow / --profile only
 *
 *   [[expect]]
 *   test = "watcher::second_add_replaces_threaded"    required, suite::name
 *   clause = "CW-ADD-002"         optional: a clause id, or an array of them
 *                                 on one line; each must be one the test checks
 *   reason = "CPython's ThreadedChildWatcher ..."     required, not empty
 *   intermittent = true           optional (default false)
 *
 * Values are basic strings ("...", escapes \" \\ \n \t only), literal
 * strings ('...'), arrays of strings on one line, and true / false.  No
 * other tables, dotted keys, inline tables, numbers, dates or multi-line
 * strings; no duplicate key in a table, no two entries for one test.
 *
 * Results (ARCHITECTURE.md, "Results"): a listed test that FAILs is XFAIL;
 * one that PASSes is XPASS, which fails the run, unless the entry is
 * intermittent (then the PASS stands) and the run is not --strict (with
 * --strict every listed test must fail, intermittent or not).  CRASH, TIMEOUT, UNSUPPORTED and
 * UNRESOLVED are left as they are: an entry expects a failure, not a crash.
 */
#include "runner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* --- reading ------------------------------------------------------------ */

enum value_kind { V_STRING, V_ARRAY, V_BOOL };

struct value {
  enum value_kind kind;
  char *s;  /* V_STRING */
  char **v; /* V_ARRAY */
  size_t n;
  bool b; /* V_BOOL */
};

/* Where the reader is, for its messages. */
struct reader {
  const char *path;
  unsigned line;
  const char *p; /* the cursor, inside the current line */
};

static int error_at(const char *path, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "loopspec-conform: FILE:LINE: what" and returns -1. */
static int error_at(const char *path, unsigned line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, LR_PROGRAM ": %s:%u: ", path, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return -1;
}

static void value_free(struct value *v) {
  size_t i;
  free(v->s);
  for (i = 0; i < v->n; i++)
    free(v->v[i]);
  free(v->v);
  memset(v, 0, sizeof *v);
}

static void skip_blank(struct reader *r) {
  while (*r->p == ' ' || *r->p == '\t')
    r->p++;
}

/* After a header or a value: only blanks and a comment may follow. */
static int expect_end(struct reader *r, const char *after) {
  skip_blank(r);
  if (*r->p == '\0' || *r->p == '#')
    return 0;
  return error_at(r->path, r->line, "unexpected text after %s: '%s'", after,
                  r->p);
}

/* Reads a string at the cursor ('"' or '\'') into a new buffer. */
static int read_string(struct reader *r, char **out) {
  char quote = *r->p;
  size_t len = 0;
  char *buf;

  if (strncmp(r->p, "\"\"\"", 3) == 0 || strncmp(r->p, "'''", 3) == 0)
    return error_at(r->path, r->line,
                    "multi-line strings are not supported: write the value "
                    "on one line");
  buf = malloc(strlen(r->p) + 1);
  if (buf == NULL)
    return error_at(r->path, r->line, "out of memory");
  r->p++;
  for (;;) {
    unsigned char c = (unsigned char)*r->p;
    if (c == '\0') {
      free(buf);
      return error_at(r->path, r->line, "unterminated string");
    }
    if (c == (unsigned char)quote) {
      r->p++;
      break;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      free(buf);
      return error_at(r->path, r->line, "control character 0x%02x in a string",
                      c);
    }
    if (c == '\\' && quote == '"') {
      char e = r->p[1], unescaped;
      switch (e) {
      case '"':
      case '\\':
        unescaped = e;
        break;
      case 'n':
        unescaped = '\n';
        break;
      case 't':
        unescaped = '\t';
        break;
      default:
        free(buf);
        return error_at(r->path, r->line,
                        "unsupported escape '\\%c' in a string: only \\\", "
                        "\\\\, \\n and \\t",
                        e ? e : ' ');
      }
      buf[len++] = unescaped;
      r->p += 2;
      continue;
    }
    buf[len++] = (char)c;
    r->p++;
  }
  buf[len] = '\0';
  *out = buf;
  return 0;
}

/* Reads an array of strings on one line: [ "a", "b" ], a trailing comma
 * allowed. */
static int read_array(struct reader *r, struct value *v) {
  r->p++; /* '[' */
  for (;;) {
    char **grown;
    char *s;
    skip_blank(r);
    if (*r->p == ']') {
      r->p++;
      return 0;
    }
    if (*r->p != '"' && *r->p != '\'')
      return error_at(r->path, r->line,
                      *r->p == '\0'
                          ? "an array must be written on one line: expected "
                            "']'"
                          : "an array may hold only strings");
    if (read_string(r, &s) != 0)
      return -1;
    grown = realloc(v->v, (v->n + 1) * sizeof *grown);
    if (grown == NULL) {
      free(s);
      return error_at(r->path, r->line, "out of memory");
    }
    v->v = grown;
    v->v[v->n++] = s;
    skip_blank(r);
    if (*r->p == ',')
      r->p++;
    else if (*r->p != ']')
      return error_at(r->path, r->line, "expected ',' or ']' in the array");
  }
}

static bool word_ends(const char *p) {
  return *p == '\0' || *p == ' ' || *p == '\t' || *p == '#';
}

/* Reads the value at the cursor. */
static int read_value(struct reader *r, struct value *v) {
  memset(v, 0, sizeof *v);
  if (*r->p == '"' || *r->p == '\'') {
    v->kind = V_STRING;
    return read_string(r, &v->s);
  }
  if (*r->p == '[') {
    v->kind = V_ARRAY;
    return read_array(r, v);
  }
  if (strncmp(r->p, "true", 4) == 0 && word_ends(r->p + 4)) {
    v->kind = V_BOOL;
    v->b = true;
    r->p += 4;
    return 0;
  }
  if (strncmp(r->p, "false", 5) == 0 && word_ends(r->p + 5)) {
    v->kind = V_BOOL;
    v->b = false;
    r->p += 5;
    return 0;
  }
  if (*r->p == '\0' || *r->p == '#')
    return error_at(r->path, r->line, "a key with no value");
  return error_at(r->path, r->line,
                  "unsupported value '%s': expected a string, an array of "
                  "strings, true or false",
                  r->p);
}

static bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* --- the entries --------------------------------------------------------- */

/* The keys of one table, with the line each was given on (0: absent). */
struct table {
  unsigned line; /* the header's, or 0 for the top level */
  struct value test, clause, reason, intermittent, follow, profile;
  unsigned test_line, clause_line, reason_line, intermittent_line, follow_line,
      profile_line;
};

static void table_free(struct table *t) {
  value_free(&t->test);
  value_free(&t->clause);
  value_free(&t->reason);
  value_free(&t->intermittent);
  value_free(&t->follow);
  value_free(&t->profile);
  memset(t, 0, sizeof *t);
}

/* Stores `v` under `key` in the table, checking the key and the value's
 * kind; takes `v` over (also on failure). */
static int table_set(struct reader *r, struct table *t, const char *key,
                     struct value *v) {
  static const char *const kind_names[] = {"a string", "an array",
                                           "true or false"};
  struct value *slot;
  unsigned *line;
  bool kind_ok;

  if (t->line == 0 && strcmp(key, "follow") == 0) {
    slot = &t->follow, line = &t->follow_line;
    kind_ok = v->kind == V_STRING;
  } else if (t->line == 0 && strcmp(key, "profile") == 0) {
    slot = &t->profile, line = &t->profile_line;
    kind_ok = v->kind == V_STRING;
  } else if (t->line != 0 && strcmp(key, "test") == 0) {
    slot = &t->test, line = &t->test_line;
    kind_ok = v->kind == V_STRING;
  } else if (t->line != 0 && strcmp(key, "clause") == 0) {
    slot = &t->clause, line = &t->clause_line;
    kind_ok = v->kind == V_STRING || v->kind == V_ARRAY;
  } else if (t->line != 0 && strcmp(key, "reason") == 0) {
    slot = &t->reason, line = &t->reason_line;
    kind_ok = v->kind == V_STRING;
  } else if (t->line != 0 && strcmp(key, "intermittent") == 0) {
    slot = &t->intermittent, line = &t->intermittent_line;
    kind_ok = v->kind == V_BOOL;
  } else {
    value_free(v);
    if (t->line == 0)
      return error_at(r->path, r->line,
                      "unknown key '%s' before the first [[expect]] (only "
                      "follow and profile)",
                      key);
    return error_at(r->path, r->line,
                    "unknown key '%s' in [[expect]] (test, clause, reason, "
                    "intermittent)",
                    key);
  }
  if (*line != 0) {
    value_free(v);
    return error_at(r->path, r->line, "duplicate key '%s' (first at line %u)",
                    key, *line);
  }
  if (!kind_ok) {
    enum value_kind got = v->kind;
    value_free(v);
    return error_at(r->path, r->line, "%s must be %s, not %s", key,
                    strcmp(key, "clause") == 0         ? "a string or an array"
                    : strcmp(key, "intermittent") == 0 ? "true or false"
                                                       : "a string",
                    kind_names[got]);
  }
  *slot = *v;
  memset(v, 0, sizeof *v);
  *line = r->line;
  return 0;
}

static bool only_blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\n')
      return false;
  return true;
}

/* Does test `t` check clause `id`? */
static bool test_checks(const struct lr_test *t, const char *id) {
  size_t i;
  for (i = 0; i < t->reg->nclauses; i++)
    if (strcmp(t->reg->clauses[i], id) == 0)
      return true;
  return false;
}

/* Writes "A, B" (the test's clauses) into buf. */
static void clause_list(const struct lr_test *t, char *buf, size_t len) {
  size_t i, used = 0;
  buf[0] = '\0';
  for (i = 0; i < t->reg->nclauses && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                             t->reg->clauses[i]);
}

/* Checks the top-level keys against the run. */
static int check_header(struct lr_run *run, struct table *top) {
  const char *path = run->opt.expect_path;
  char have[16];
  int profile;

  if (top->follow_line != 0 && strcmp(top->follow.s, "doc") != 0 &&
      strcmp(top->follow.s, "cpython") != 0)
    return error_at(path, top->follow_line,
                    "follow must be \"doc\" or \"cpython\", not \"%s\"",
                    top->follow.s);
  if (top->follow_line != 0 && strcmp(top->follow.s, run->follow) != 0)
    return error_at(path, top->follow_line,
                    "these expectations are for --follow %s; this run follows "
                    "%s",
                    top->follow.s, run->follow);
  if (top->profile_line != 0) {
    profile = lr_profile_parse(top->profile.s);
    if (profile == 0)
      return error_at(path, top->profile_line,
                      "profile must be one of \"3.8\" to \"3.12\", not \"%s\"",
                      top->profile.s);
    if (profile != run->profile)
      return error_at(path, top->profile_line,
                      "these expectations are for profile %s; this run "
                      "emulates %s",
                      top->profile.s,
                      lr_profile_text(run->profile, have, sizeof have));
  }
  return 0;
}

/* Turns a finished [[expect]] table into an entry of run->expect. */
static int add_entry(struct lr_run *run, struct table *t) {
  struct lr_expectations *x = &run->expect;
  const char *path = run->opt.expect_path;
  struct lr_expect *grown, *e;
  struct lr_test *test;
  char suite[256], names[512];
  const char *sep;
  size_t i, nclauses;
  char **clauses;

  if (t->test_line == 0)
    return error_at(path, t->line, "this [[expect]] has no test");
  if (t->reason_line == 0)
    return error_at(path, t->line,
                    "the entry for %s has no reason: say which code or bug "
                    "of the implementation makes the test fail",
                    t->test.s);
  if (only_blank(t->reason.s))
    return error_at(path, t->reason_line, "the reason for %s is empty",
                    t->test.s);

  sep = strstr(t->test.s, "::");
  if (sep == NULL || sep == t->test.s || sep[2] == '\0' ||
      strstr(sep + 2, "::") != NULL ||
      (size_t)(sep - t->test.s) >= sizeof suite)
    return error_at(path, t->test_line,
                    "test \"%s\" does not read suite::name, as the report "
                    "names tests",
                    t->test.s);
  memcpy(suite, t->test.s, (size_t)(sep - t->test.s));
  suite[sep - t->test.s] = '\0';
  test = lr_find_test(run, suite, sep + 2);
  if (test == NULL)
    return error_at(path, t->test_line, "the suite has no test %s", t->test.s);
  for (i = 0; i < x->n; i++)
    if (x->entries[i].index == (size_t)(test - run->tests))
      return error_at(path, t->line,
                      "a second entry for %s (the first is at line %u)",
                      t->test.s, x->entries[i].line);

  if (t->clause.kind == V_STRING && t->clause_line != 0) {
    clauses = &t->clause.s;
    nclauses = 1;
  } else {
    clauses = t->clause.v;
    nclauses = t->clause.n;
    if (t->clause_line != 0 && nclauses == 0)
      return error_at(path, t->clause_line, "clause is an empty array");
  }
  for (i = 0; i < nclauses; i++)
    if (!test_checks(test, clauses[i])) {
      clause_list(test, names, sizeof names);
      return error_at(path, t->clause_line, "%s checks %s, not %s", t->test.s,
                      names, clauses[i]);
    }

  grown = realloc(x->entries, (x->n + 1) * sizeof *grown);
  if (grown == NULL)
    return error_at(path, t->line, "out of memory");
  x->entries = grown;
  e = &x->entries[x->n++];
  memset(e, 0, sizeof *e);
  e->index = (size_t)(test - run->tests);
  e->line = t->line;
  e->intermittent = t->intermittent_line != 0 && t->intermittent.b;
  e->test = t->test.s;
  t->test.s = NULL;
  e->reason = t->reason.s;
  t->reason.s = NULL;
  if (t->clause.kind == V_STRING && t->clause_line != 0) {
    e->clauses = malloc(sizeof *e->clauses);
    if (e->clauses == NULL)
      return error_at(path, t->line, "out of memory");
    e->clauses[0] = t->clause.s;
    e->nclauses = 1;
    t->clause.s = NULL;
  } else {
    e->clauses = t->clause.v;
    e->nclauses = t->clause.n;
    t->clause.v = NULL;
    t->clause.n = 0;
  }
  return 0;
}

/* Reads the whole file into a NUL-terminated buffer; refuses NUL bytes
 * and text that is not UTF-8. */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL, *grown;
  size_t len = 0, cap = 0, n, i;
  unsigned line = 1;

  if (f == NULL) {
    fprintf(stderr, LR_PROGRAM ": cannot read the expectations file %s: %s\n",
            path, strerror(errno));
    return NULL;
  }
  for (;;) {
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 8192;
      grown = realloc(buf, cap + 1);
      if (grown == NULL) {
        fprintf(stderr, LR_PROGRAM ": %s: out of memory\n", path);
        goto fail;
      }
      buf = grown;
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0)
      break;
  }
  if (ferror(f)) {
    fprintf(stderr,
            LR_PROGRAM ": cannot read the expectations file %s: read "
                       "error\n",
            path);
    goto fail;
  }
  fclose(f);
  f = NULL;
  buf[len] = '\0';
  for (i = 0; i < len;) {
    size_t seq;
    if (buf[i] == '\0') {
      error_at(path, line, "a NUL byte: not a text file");
      goto fail;
    }
    if (buf[i] == '\n')
      line++;
    seq = lr_utf8_sequence((const unsigned char *)buf + i);
    if (seq == 0) {
      error_at(path, line, "bytes that are not UTF-8");
      goto fail;
    }
    i += seq;
  }
  return buf;
fail:
  if (f != NULL)
    fclose(f);
  free(buf);
  return NULL;
}

int lr_expect_load(struct lr_run *run) {
  const char *path = run->opt.expect_path;
  struct reader r = {path, 0, NULL};
  struct table top, cur, *t = &top;
  char *text, *line, *next;
  int rc = -1;

  if (path == NULL)
    return 0;
  memset(&top, 0, sizeof top);
  memset(&cur, 0, sizeof cur);
  run->expect.path = strdup(path);
  if (run->expect.path == NULL) {
    fprintf(stderr, LR_PROGRAM ": out of memory\n");
    return -1;
  }
  text = read_file(path);
  if (text == NULL)
    return -1;

  for (line = text; line != NULL; line = next) {
    char key[64];
    size_t klen = 0;
    struct value v;

    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    if (line[0] != '\0' && line[strlen(line) - 1] == '\r')
      line[strlen(line) - 1] = '\0';
    r.line++;
    r.p = line;
    skip_blank(&r);
    if (*r.p == '\0' || *r.p == '#')
      continue;

    if (*r.p == '[') {
      if (strncmp(r.p, "[[expect]]", 10) != 0) {
        error_at(path, r.line, "only [[expect]] tables are allowed, not '%s'",
                 r.p);
        goto out;
      }
      r.p += 10;
      if (expect_end(&r, "[[expect]]") != 0)
        goto out;
      if (t == &top) {
        if (check_header(run, &top) != 0)
          goto out;
      } else if (add_entry(run, &cur) != 0) {
        goto out;
      }
      table_free(&cur);
      cur.line = r.line;
      t = &cur;
      continue;
    }

    while (is_key_char(r.p[klen]))
      klen++;
    if (klen == 0) {
      error_at(path, r.line,
               "expected a key, an [[expect]] header or a comment, not '%s'",
               r.p);
      goto out;
    }
    if (klen >= sizeof key) {
      error_at(path, r.line, "unknown key '%.*s'", (int)klen, r.p);
      goto out;
    }
    memcpy(key, r.p, klen);
    key[klen] = '\0';
    r.p += klen;
    skip_blank(&r);
    if (*r.p == '.') {
      error_at(path, r.line, "dotted keys are not supported");
      goto out;
    }
    if (*r.p != '=') {
      error_at(path, r.line, "expected '=' after the key '%s'", key);
      goto out;
    }
    r.p++;
    skip_blank(&r);
    if (read_value(&r, &v) != 0) {
      value_free(&v);
      goto out;
    }
    if (table_set(&r, t, key, &v) != 0)
      goto out;
    if (expect_end(&r, "the value") != 0)
      goto out;
  }
  if (t == &top)
    rc = check_header(run, &top);
  else
    rc = add_entry(run, &cur);

out:
  table_free(&top);
  table_free(&cur);
  free(text);
  if (rc == 0) {
    size_t i;
    for (i = 0; i < run->expect.n; i++)
      run->tests[run->expect.entries[i].index].expect = &run->expect.entries[i];
  }
  return rc;
}

/* --- after the run ----------------------------------------------------------
 */

void lr_expect_apply(struct lr_run *run) {
  size_t i;
  for (i = 0; i < run->expect.n; i++) {
    const struct lr_expect *e = &run->expect.entries[i];
    struct lr_test *t = &run->tests[e->index];
    if (!t->selected || !t->has_result)
      continue;
    if (t->result == LR_FAIL)
      t->result = LR_XFAIL; /* The failure's own message stays. */
    else if (t->result == LR_PASS && e->intermittent && run->opt.strict)
      lr_set_result(t, LR_XPASS,
                    "passed, and --strict allows no pass of a listed test: "
                    "%s:%u lists it as an intermittent deviation",
                    run->expect.path, e->line);
    else if (t->result == LR_PASS && !e->intermittent)
      lr_set_result(t, LR_XPASS,
                    "passed, but %s:%u lists it as a known deviation: remove "
                    "this entry",
                    run->expect.path, e->line);
  }
}

bool lr_expect_unused(const struct lr_run *run, const struct lr_expect *e) {
  const struct lr_test *t = &run->tests[e->index];
  return !t->selected || !t->has_result || t->result == LR_UNSUPPORTED ||
         t->result == LR_UNRESOLVED;
}

void lr_expect_free(struct lr_expectations *x) {
  size_t i, j;
  for (i = 0; i < x->n; i++) {
    struct lr_expect *e = &x->entries[i];
    free(e->test);
    free(e->reason);
    for (j = 0; j < e->nclauses; j++)
      free(e->clauses[j]);
    free(e->clauses);
  }
  free(x->entries);
  free(x->path);
  memset(x, 0, sizeof *x);
}
