/* impl_load.h - find, load and check the implementation under test.
 *
 * loopspec-conform calls lh_load_impl() once in main(), to refuse a broken
 * implementation with one line before anything runs; the harness calls it
 * again in every Criterion worker, because workers are re-executed, not
 * forked, and inherit nothing from main() but the environment (the runner
 * passes the path in LSPEC_CONFORM_IMPL, see registry.h).
 *
 * Only abi.h is used: nothing here knows the reference's insides.
 */
#ifndef LSPEC_CONFORM_IMPL_LOAD_H
#define LSPEC_CONFORM_IMPL_LOAD_H

#include <stddef.h>

#include <loopspec/abi.h>

/* Loads the implementation at `path` and checks its ABI table.
 *
 * `path` NULL or "" selects the reference linked into the calling program
 * (its lspec_impl_v1()).  Any other value is a file name: a shared object
 * exporting lspec_impl_v1.  A name without a slash is taken relative to the
 * current directory, not searched for along the library path, since the user
 * gave a file.  The object is opened with RTLD_NOW | RTLD_LOCAL, so an
 * unresolved symbol is reported now rather than crashing a test later.
 *
 * The table must be usable by a v1 checker: abi_version equal to
 * LSPEC_ABI_VERSION; size at least LSPEC_IMPL_V1_MIN_SIZE; name and version
 * set; only capability bits that v1 defines; custom_child_watchers one of the
 * enum lspec_custom_watchers values; at least one profile and only 3.8 to
 * 3.12; watcher_kinds only for kinds 1 to 6; every entry up to
 * watcher_release non-NULL.
 *
 * On success stores the table in *out and returns 0.  The object stays loaded
 * for the rest of the process: the table and the functions it points at must
 * outlive every handle the implementation gave out, and an implementation may
 * have started threads, so unloading it is never safe.
 *
 * On failure returns -1, leaves *out untouched, unloads whatever it loaded,
 * and writes a one-line reason (no trailing newline, no path prefix: the
 * caller says which implementation) into why[0 .. whylen), truncating it if
 * needed.  `why` may be NULL when whylen is 0.
 *
 * Thread-safe as far as dlopen() and dlerror() are.
 */
int lh_load_impl(const char *path, const struct lspec_impl **out, char *why,
                 size_t whylen);

/* Checks an already obtained table as lh_load_impl() does, without loading
 * anything.  Returns 0, or -1 with a one-line reason in `why`.  Exposed so
 * that a caller holding a table by other means (a test, an embedding
 * program) applies exactly the same rules. */
int lh_check_impl(const struct lspec_impl *impl, char *why, size_t whylen);

#endif /* LSPEC_CONFORM_IMPL_LOAD_H */
