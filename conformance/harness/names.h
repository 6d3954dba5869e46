/* names.h - the names of the ABI's codes: statuses, capability bits,
 * custom_child_watchers values, watcher kinds and warning categories.
 *
 * One copy for the harness (its failure and skip messages) and for
 * loopspec-conform (its reports), which are linked into the same executable.
 * Needs abi.h only: no Criterion, so the runner's files may include it. */
#ifndef LSPEC_CONFORM_NAMES_H
#define LSPEC_CONFORM_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include <loopspec/abi.h>

/* "LSPEC_E_RUNTIME", or "status -99" for a code v1 does not define (then in
 * a per-thread buffer, valid until the thread's next call). */
const char *lh_status_name(int status);
/* "RuntimeError", "success", ... (LSPEC_STATUS_MAP's text). */
const char *lh_status_class(int status);

/* Every capability bit v1 defines, in bit order, with two spellings:
 * `macro` is the LSPEC_CAP_ macro's name without the prefix ("READERS", as
 * the runner's reports print it), `name` the harness's ("readers"). */
struct lh_cap_name {
  uint64_t bit;
  const char *macro;
  const char *name;
};
extern const struct lh_cap_name lh_cap_names[];
extern const size_t lh_ncap_names;

/* "readers", ... for one LSPEC_CAP_* bit; "unknown capability" otherwise. */
const char *lh_cap_name(uint64_t bit);

/* "SUPPORTED", "PROHIBITED", "IGNORED"; NULL for a value v1 does not
 * define. */
const char *lh_custom_watchers_name(uint32_t value);

/* "THREADED", ... "NATIVE" for an LSPEC_WATCHER_* kind; NULL otherwise. */
const char *lh_watcher_kind_name(int kind);

/* "DeprecationWarning", ... for an LSPEC_WARN_* category; "unknown warning
 * category" otherwise. */
const char *lh_warning_name(int category);

#endif /* LSPEC_CONFORM_NAMES_H */
