/* impl_load.c - find, load and check the implementation under test: the
 * linked-in reference, or a shared object named on the command line.
 *
 * A checker must refuse a broken table before calling through it: a wrong ABI
 * version, a table shorter than v1, a capability value v1 does not define or
 * a NULL entry would otherwise turn into a crash inside some test, or into a
 * flood of meaningless FAILs.  See impl_load.h for the contract.
 */
#include "impl_load.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every entry of the v1 table, in order: all of them are mandatory. */
#define LH_V1_ENTRIES(XX)                                                      \
  XX(set_profile)                                                              \
  XX(get_profile)                                                              \
  XX(set_warning_hook)                                                         \
  XX(last_error)                                                               \
  XX(last_errno)                                                               \
  XX(get_event_loop_policy)                                                    \
  XX(set_event_loop_policy)                                                    \
  XX(get_event_loop)                                                           \
  XX(get_running_loop)                                                         \
  XX(set_event_loop)                                                           \
  XX(new_event_loop)                                                           \
  XX(get_child_watcher)                                                        \
  XX(set_child_watcher)                                                        \
  XX(policy_new_default)                                                       \
  XX(policy_new_windows_selector)                                              \
  XX(policy_new_windows_proactor)                                              \
  XX(policy_new_custom)                                                        \
  XX(policy_get_event_loop)                                                    \
  XX(policy_set_event_loop)                                                    \
  XX(policy_new_event_loop)                                                    \
  XX(policy_get_child_watcher)                                                 \
  XX(policy_set_child_watcher)                                                 \
  XX(policy_super_get_event_loop)                                              \
  XX(policy_super_set_event_loop)                                              \
  XX(policy_super_new_event_loop)                                              \
  XX(policy_super_get_child_watcher)                                           \
  XX(policy_super_set_child_watcher)                                           \
  XX(policy_retain)                                                            \
  XX(policy_release)                                                           \
  XX(loop_new)                                                                 \
  XX(loop_run_forever)                                                         \
  XX(loop_run_until)                                                           \
  XX(loop_stop)                                                                \
  XX(loop_close)                                                               \
  XX(loop_is_running)                                                          \
  XX(loop_is_closed)                                                           \
  XX(loop_time)                                                                \
  XX(loop_call_soon)                                                           \
  XX(loop_call_soon_threadsafe)                                                \
  XX(loop_call_later)                                                          \
  XX(loop_cancel)                                                              \
  XX(loop_add_reader)                                                          \
  XX(loop_remove_reader)                                                       \
  XX(loop_add_signal_handler)                                                  \
  XX(loop_remove_signal_handler)                                               \
  XX(loop_subprocess_exec)                                                     \
  XX(loop_retain)                                                              \
  XX(loop_release)                                                             \
  XX(watcher_new)                                                              \
  XX(watcher_kind)                                                             \
  XX(watcher_add_child_handler)                                                \
  XX(watcher_remove_child_handler)                                             \
  XX(watcher_attach_loop)                                                      \
  XX(watcher_is_active)                                                        \
  XX(watcher_close)                                                            \
  XX(watcher_enter)                                                            \
  XX(watcher_exit)                                                             \
  XX(watcher_retain)                                                           \
  XX(watcher_release)

/* The list above must cover the table from its first entry to the last one
 * v1 requires, with nothing left out: the entries' sizes, added to the
 * offset of the first, must reach LSPEC_IMPL_V1_MIN_SIZE exactly.  An entry
 * added to abi.h inside v1's mandatory range without being added here breaks
 * the build instead of going unchecked. */
#define LH_ENTRY_SIZE_(field) +sizeof(((const struct lspec_impl *)0)->field)
_Static_assert(offsetof(struct lspec_impl, set_profile) +
                       (0 LH_V1_ENTRIES(LH_ENTRY_SIZE_)) ==
                   LSPEC_IMPL_V1_MIN_SIZE,
               "LH_V1_ENTRIES must list every mandatory entry of abi.h");
#undef LH_ENTRY_SIZE_

/* Capability bits and watcher kinds v1 defines. */
#define LH_WATCHER_KINDS_ALL                                                   \
  (LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_THREADED) |                            \
   LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_MULTILOOP) |                           \
   LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_SAFE) |                                \
   LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_FAST) |                                \
   LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_PIDFD) |                               \
   LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_NATIVE))

/* Writes a formatted reason into why[0 .. whylen) and returns -1, so that
 * every failure path reads `return fail(...)`. */
static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  if (why == NULL || whylen == 0)
    return -1;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return -1;
}

/* Records dlerror()'s text as the reason.  The loader starts its messages
 * with the file name, which the caller prints anyway, so that prefix is
 * dropped; a message is also cut at its first newline to stay one line. */
static int fail_dlerror(char *why, size_t whylen, const char *file,
                        const char *fallback) {
  const char *text = dlerror();
  size_t flen = strlen(file);
  size_t n;

  if (text == NULL)
    text = fallback;
  if (strncmp(text, file, flen) == 0 && strncmp(text + flen, ": ", 2) == 0)
    text += flen + 2;
  n = strcspn(text, "\n");
  return fail(why, whylen, "%.*s", (int)n, text);
}

int lh_check_impl(const struct lspec_impl *impl, char *why, size_t whylen) {
  uint64_t unknown_caps;
  uint32_t unknown_bits;

  if (impl == NULL)
    return fail(why, whylen, "no table");

  /* The header first: nothing past `size` may be read before it is known
   * to be there, and nothing at all if the version is not ours. */
  if (impl->abi_version != LSPEC_ABI_VERSION)
    return fail(why, whylen,
                "wrong ABI version %" PRIu32 ": this checker speaks ABI v%d",
                impl->abi_version, LSPEC_ABI_VERSION);
  if (impl->size < LSPEC_IMPL_V1_MIN_SIZE)
    return fail(why, whylen,
                "table too small: %" PRIu32
                " bytes, ABI v1 needs at least %" PRIu32,
                impl->size, LSPEC_IMPL_V1_MIN_SIZE);
  if (impl->name == NULL)
    return fail(why, whylen, "the table has no name (name is NULL)");
  if (impl->version == NULL)
    return fail(why, whylen, "the table has no version (version is NULL)");

  unknown_caps = impl->capabilities & ~LSPEC_CAP_KNOWN_ALL;
  if (unknown_caps != 0)
    return fail(why, whylen,
                "unknown capability bits 0x%" PRIx64
                " (ABI v1 defines 0x%" PRIx64 ")",
                unknown_caps, LSPEC_CAP_KNOWN_ALL);
  if (impl->custom_child_watchers < LSPEC_CUSTOM_WATCHERS_SUPPORTED ||
      impl->custom_child_watchers > LSPEC_CUSTOM_WATCHERS_IGNORED)
    return fail(why, whylen,
                "custom_child_watchers is %" PRIu32
                ": ABI v1 allows 1 (SUPPORTED), 2 (PROHIBITED) or 3 (IGNORED)",
                impl->custom_child_watchers);
  if (impl->profiles == 0)
    return fail(why, whylen, "the table declares no profile (3.8 to 3.12)");
  unknown_bits = impl->profiles & ~LSPEC_PROFILES_ALL;
  if (unknown_bits != 0)
    return fail(why, whylen,
                "unknown profile bits 0x%" PRIx32
                " (ABI v1 defines 3.8 to 3.12, 0x%" PRIx32 ")",
                unknown_bits, LSPEC_PROFILES_ALL);
  unknown_bits = impl->watcher_kinds & ~(uint32_t)LH_WATCHER_KINDS_ALL;
  if (unknown_bits != 0)
    return fail(why, whylen,
                "watcher_kinds has bits 0x%" PRIx32
                " that name no watcher kind (kinds 1 to 6 are 0x%" PRIx32 ")",
                unknown_bits, (uint32_t)LH_WATCHER_KINDS_ALL);

#define LH_CHECK_ENTRY_(field)                                                 \
  if (impl->field == NULL)                                                     \
    return fail(why, whylen, "mandatory entry %s is NULL", #field);
  LH_V1_ENTRIES(LH_CHECK_ENTRY_)
#undef LH_CHECK_ENTRY_

  return 0;
}

int lh_load_impl(const char *path, const struct lspec_impl **out, char *why,
                 size_t whylen) {
  const struct lspec_impl *impl;
  lspec_entry_fn entry;
  char *file;
  void *handle;
  void *sym;

  if (path == NULL || path[0] == '\0') {
    impl = lspec_impl_v1();
    if (impl == NULL)
      return fail(why, whylen, "the linked-in lspec_impl_v1() returned NULL");
    if (lh_check_impl(impl, why, whylen) != 0)
      return -1;
    *out = impl;
    return 0;
  }

  /* dlopen() searches the library path for a name without a slash; the
   * user named a file, so anchor such a name in the current directory. */
  if (strchr(path, '/') != NULL) {
    file = strdup(path);
  } else {
    file = malloc(strlen(path) + 3);
    if (file != NULL)
      sprintf(file, "./%s", path);
  }
  if (file == NULL)
    return fail(why, whylen, "out of memory");

  dlerror(); /* Forget any earlier failure, so the next one is ours. */
  handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    fail_dlerror(why, whylen, file, "dlopen failed");
    free(file);
    return -1;
  }

  /* A symbol whose value is NULL would be as useless as a missing one. */
  sym = dlsym(handle, LSPEC_ENTRY_SYMBOL);
  if (sym == NULL) {
    fail(why, whylen, "no symbol %s: not a loopspec implementation",
         LSPEC_ENTRY_SYMBOL);
    dlclose(handle);
    free(file);
    return -1;
  }
  free(file);

  /* ISO C has no conversion from object to function pointer; POSIX
   * guarantees this one works for dlsym(). */
  memcpy(&entry, &sym, sizeof entry);
  impl = entry();
  if (impl == NULL) {
    dlclose(handle);
    return fail(why, whylen, "%s() returned NULL", LSPEC_ENTRY_SYMBOL);
  }
  if (lh_check_impl(impl, why, whylen) != 0) {
    dlclose(handle);
    return -1;
  }

  /* The handle is deliberately kept: see impl_load.h. */
  *out = impl;
  return 0;
}
