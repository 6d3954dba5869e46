/* example_adapter.c - a minimal loopspec adapter to copy when starting your
 * own: a shared object that exports lspec_impl_v1() and nothing else.
 *
 * It starts from the reference implementation's table and changes only what
 * names the implementation, so that it passes the suite from the first day.
 * To check your own event loop, replace the reference's entries with your
 * functions one group at a time (the policy entries, the loop entries, the
 * watcher entries: handles are opaque to each implementation, so entries
 * that share a handle type move together), run loopspec-conform after each
 * step, and record the deviations you mean to keep in an expectations file
 * (expectations.toml beside this file).  Once every entry is yours, the
 * reference is no longer needed: drop reference_table() and fill the table
 * directly.  spec/abi.md says, entry by entry, what each must do.
 *
 * Why dlopen() rather than linking the reference: the reference exports the
 * same symbol, lspec_impl_v1.  Opened on its own (RTLD_LOCAL), it keeps its
 * symbol to itself and this object's lspec_impl_v1 is the one the runner
 * finds.  LSPEC_EXAMPLE_REFERENCE is the reference's file, given by the
 * build (CMakeLists.txt); without it the library path is searched.
 */
#include <loopspec/abi.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef LSPEC_EXAMPLE_REFERENCE
#define LSPEC_EXAMPLE_REFERENCE "libloopspec-reference.so.1"
#endif

/* What this implementation calls itself in reports (JSON, JUnit, TAP). */
#define LSPEC_EXAMPLE_NAME "loopspec-example"
#define LSPEC_EXAMPLE_VERSION "0.1.0"

/* The reference's table, or NULL when it cannot be loaded. */
static const struct lspec_impl *reference;

/* This adapter's table: a copy of the reference's, then changed. */
static struct lspec_impl table;
static const struct lspec_impl *table_ready;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* --- your functions go here ----------------------------------------------
 * One entry replaced, as a pattern: new_event_loop() creates the loop that
 * asyncio.new_event_loop() would.  This one still forwards to the
 * reference; your own would create your loop and return it through *out,
 * with LSPEC_OK, or return a status (LSPEC_E_*) after recording a message
 * for last_error(). */
static int example_new_event_loop(lspec_loop **out) {
  return reference->new_event_loop(out);
}

/* Loads the reference and returns its table, or NULL after one line on
 * stderr. */
static const struct lspec_impl *reference_table(void) {
  lspec_entry_fn entry;
  void *handle, *sym;

  handle = dlopen(LSPEC_EXAMPLE_REFERENCE, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    fprintf(stderr, LSPEC_EXAMPLE_NAME ": cannot load the reference: %s\n",
            dlerror());
    return NULL;
  }
  sym = dlsym(handle, LSPEC_ENTRY_SYMBOL);
  if (sym == NULL) {
    fprintf(stderr, LSPEC_EXAMPLE_NAME ": %s has no %s\n",
            LSPEC_EXAMPLE_REFERENCE, LSPEC_ENTRY_SYMBOL);
    return NULL;
  }
  /* ISO C has no cast from void * to a function pointer; POSIX guarantees
   * that this copy works. */
  memcpy(&entry, &sym, sizeof entry);
  return entry();
}

static void build_table(void) {
  size_t n;

  reference = reference_table();
  if (reference == NULL || reference->abi_version != LSPEC_ABI_VERSION)
    return; /* lspec_impl_v1() returns NULL: the runner says so. */

  /* The table only grows at its end: copy what both sides know. */
  n = reference->size < sizeof table ? reference->size : sizeof table;
  memcpy(&table, reference, n);
  table.size = (uint32_t)n;

  /* Who we are.  The capabilities, custom-child-watchers value, profiles
   * and watcher kinds stay the reference's until your functions replace
   * its entries: declare then what yours offer. */
  table.name = LSPEC_EXAMPLE_NAME;
  table.version = LSPEC_EXAMPLE_VERSION;

  /* Your entries. */
  table.new_event_loop = example_new_event_loop;

  table_ready = &table;
}

/* The one exported symbol.  The runner calls it in each of its processes;
 * pthread_once builds the table once per process. */
__attribute__((visibility("default"))) const struct lspec_impl *
lspec_impl_v1(void) {
  pthread_once(&once, build_table);
  return table_ready;
}
