/* watcher.c - child watchers and loop_subprocess_exec.
 *
 * This build of the reference does not offer child watchers yet: the table
 * declares no watcher kind and neither LSPEC_CAP_CHILD_WATCHERS nor
 * LSPEC_CAP_SUBPROCESS, and every entry answers LSPEC_E_UNSUPPORTED after
 * checking its arguments as the full implementation will.  Since no watcher
 * handle can exist, any non-NULL handle passed here is of another kind.
 */
#include "internal.h"

static int unsupported(const char *what) {
  return lspec__fail(LSPEC_E_UNSUPPORTED,
                     "%s: this build of the reference has no child watchers",
                     what);
}

/* The shared check: a watcher entry given something that is not a watcher. */
static int not_a_watcher(const void *h) {
  return lspec__fail(LSPEC_E_TYPE, "expected a child watcher handle, got %s",
                     h ? "a handle of another kind" : "NULL");
}

int lspec__watcher_new(int kind, lspec_watcher **out) {
  if (out == NULL)
    return lspec__fail(LSPEC_E_VALUE, "watcher_new: out is NULL");
  *out = NULL;
  if (kind < LSPEC_WATCHER_THREADED || kind > LSPEC_WATCHER_NATIVE)
    return lspec__fail(LSPEC_E_VALUE, "unknown watcher kind %d", kind);
  return unsupported("watcher_new");
}

int lspec__watcher_kind(lspec_watcher *w) { return not_a_watcher(w); }

int lspec__watcher_add_child_handler(lspec_watcher *w, int pid,
                                     lspec_child_callback cb, void *arg) {
  (void)pid, (void)cb, (void)arg;
  return not_a_watcher(w);
}

int lspec__watcher_remove_child_handler(lspec_watcher *w, int pid) {
  (void)pid;
  return not_a_watcher(w);
}

int lspec__watcher_attach_loop(lspec_watcher *w, lspec_loop *loop) {
  (void)loop;
  return not_a_watcher(w);
}

int lspec__watcher_is_active(lspec_watcher *w) { return not_a_watcher(w); }

int lspec__watcher_close(lspec_watcher *w) { return not_a_watcher(w); }

int lspec__watcher_enter(lspec_watcher *w, lspec_watcher **out) {
  if (out != NULL)
    *out = NULL;
  return not_a_watcher(w);
}

int lspec__watcher_exit(lspec_watcher *w) { return not_a_watcher(w); }

/* Retain and release cannot report errors; with no watcher handle in
 * existence there is nothing to count. */
void lspec__watcher_retain(lspec_watcher *w) { (void)w; }

void lspec__watcher_release(lspec_watcher *w) { (void)w; }

int lspec__loop_subprocess_exec(lspec_loop *loop, const char *const *argv,
                                lspec_child_callback cb, void *arg, int *pid) {
  (void)arg;
  if (pid != NULL)
    *pid = -1;
  if (lspec__kind_of(loop) != LSPEC__KIND_LOOP)
    return lspec__fail(LSPEC_E_TYPE, "subprocess_exec: not an event loop");
  if (argv == NULL || argv[0] == NULL)
    return lspec__fail(LSPEC_E_VALUE, "subprocess_exec: empty argv");
  if (cb == NULL)
    return lspec__fail(LSPEC_E_TYPE, "subprocess_exec: callback is NULL");
  return unsupported("subprocess_exec");
}
