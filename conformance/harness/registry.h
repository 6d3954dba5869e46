/* registry.h - the clause and test registry that conformance/gen emits
 * (build/.../gen/registry.c) and that loopspec-conform reads.  Shared by the
 * runner (which decides what runs and rolls results up per clause) and the
 * harness (which runs inside each Criterion worker).
 *
 * Runner -> worker contract (Criterion re-executes workers, so only the
 * environment crosses; see ARCHITECTURE.md "Rules every test lives by"):
 *   LSPEC_CONFORM_IMPL     path of the implementation's shared object, or
 *                          unset/empty for the linked-in reference;
 *   LSPEC_CONFORM_PROFILE  the profile as "3.N" (always set by the runner);
 *   LSPEC_CONFORM_FOLLOW   "doc" or "cpython".
 */
#ifndef LSPEC_CONFORM_REGISTRY_H
#define LSPEC_CONFORM_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

/* One clause of spec/clauses/<area>.toml. */
struct lh_clause {
  const char *id;          /* "POL-GET-001" */
  const char *area;        /* "POL", "LOOP", "CW", "SUB", "ABI" */
  const char *level;       /* "MUST", "SHOULD" or "MAY" */
  const char *source;      /* "doc" or "cpython" */
  const char *cite;        /* page section / CPython function */
  const char *statement;   /* our own words */
  int profile_min;         /* LSPEC_PROFILE(3, N), inclusive */
  int profile_max;         /* inclusive */
  const char *applies_to;  /* objects the clause is about */
  uint64_t caps;           /* LSPEC_CAP_* bits the clause needs */
  const char *status;      /* "active", "deprecated" or "withdrawn" */
  const char *conflict;    /* id of the other side of a conflict, or NULL */
};

/* One Criterion test, generated or hand-written. */
struct lh_test {
  const char *suite;               /* Criterion suite name */
  const char *name;                /* Criterion test name */
  const char *const *clauses;      /* ids it checks */
  size_t nclauses;
  int profile_min, profile_max;    /* where it applies (intersection) */
  uint64_t caps;                   /* LSPEC_CAP_* bits it needs */
  uint32_t custom_watchers;        /* required capability value, or 0 */
  double timeout;                  /* seconds */
  uint32_t watcher_kinds;          /* LSPEC_WATCHER_KIND_BIT() of each kind
                                      it needs (watcher_new(KIND) steps, a
                                      `kinds` key or tag), or 0 */
};

extern const struct lh_clause lh_clauses[];
extern const size_t lh_nclauses;
extern const struct lh_test lh_tests[];
extern const size_t lh_ntests;

#endif /* LSPEC_CONFORM_REGISTRY_H */
