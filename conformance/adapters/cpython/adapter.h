/* adapter.h - the internal interface between the files of loopspec's CPython
 * adapter (libloopspec_cpython.so): ABI v1 implemented on top of an embedded
 * CPython's asyncio.  Nothing declared here is exported; the only public
 * symbol of the shared object is lspec_impl_v1 (table.c).
 *
 * Conventions.  Every ABI entry brackets its work with ls_enter()/ls_leave(),
 * which take and drop the GIL from any thread.  A handle (handles.c) wraps one
 * Python object and owns a strong reference to it.  A failing Python call is
 * turned into a status by ls_fail_py() (status.c), which also records the
 * exception's text for last_error().
 */
#ifndef LSPEC_CPYTHON_ADAPTER_H
#define LSPEC_CPYTHON_ADAPTER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <loopspec/abi.h>
#include <stdint.h>

#define LS_HIDDEN __attribute__((visibility("hidden")))
#define LS_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* --- interp.c: the interpreter and the GIL ---------------------------------
 */

/* Starts the interpreter once (in the calling thread, which should be the
 * process's main thread) and imports the Python half (glue.py).  Returns 0,
 * or -1 when Python could not be started (the reason is in ls_start_error). */
LS_HIDDEN int ls_start(void);
LS_HIDDEN const char *ls_start_error(void);
/* Takes the GIL in any thread (attaching the thread to Python for good the
 * first time) and returns the state for ls_leave(). */
LS_HIDDEN PyGILState_STATE ls_enter(void);
LS_HIDDEN void ls_leave(PyGILState_STATE st);
/* The glue module (a borrowed reference, valid once ls_start succeeded). */
LS_HIDDEN PyObject *ls_glue(void);
/* Calls glue.<name>(*args) with the GIL held; a new reference or NULL with a
 * Python exception set.  `fmt` is a Py_BuildValue format of a tuple. */
LS_HIDDEN PyObject *ls_call_glue(const char *name, const char *fmt, ...);

/* --- status.c: statuses, messages and errno ---------------------------------
 */

/* Records a failure with a formatted message; returns `status`. */
LS_HIDDEN int ls_fail(int status, const char *fmt, ...) LS_PRINTF(2, 3);
/* Turns the pending Python exception into a status (and clears it), records
 * its text for last_error() and, for OSError, its errno. */
LS_HIDDEN int ls_fail_py(void);
/* Raises the Python exception that maps back to `status`, with the calling
 * thread's last_error() as its text (a C override's failure travelling
 * through Python code). */
LS_HIDDEN void ls_raise_status(int status);
LS_HIDDEN const char *ls_last_error(void);
LS_HIDDEN int ls_last_errno(void);

/* --- handles.c: one handle per Python object -------------------------------
 */

enum ls_kind { LS_POLICY = 1, LS_LOOP = 2, LS_WATCHER = 3 };

/* The handle of `obj` with one new reference for the caller (created on first
 * use), or NULL with a Python exception set.  The kind comes from the
 * object's class; an object of no known kind is a TypeError. */
LS_HIDDEN void *ls_handle_of(PyObject *obj);
/* The handle's kind, or 0 for NULL. */
LS_HIDDEN int ls_handle_kind(const void *h);
/* The object a handle wraps (borrowed). */
LS_HIDDEN PyObject *ls_handle_obj(const void *h);
/* The object of a handle argument that may be NULL (Py_None then), borrowed. */
LS_HIDDEN PyObject *ls_handle_obj_or_none(const void *h);
LS_HIDDEN void ls_handle_retain(void *h);
/* Drops one reference; the GIL must be held. */
LS_HIDDEN void ls_handle_release_locked(void *h);
/* Retain/release for the table: ignore NULL and other kinds. */
LS_HIDDEN void ls_retain_kind(void *h, int kind);
LS_HIDDEN void ls_release_kind(void *h, int kind);
/* Stores into *out the handle of a Python result (a new reference; None
 * gives NULL); returns a status.  Steals `result`. */
LS_HIDDEN int ls_out_handle(PyObject *result, void **out);

/* --- ccallback.c: C functions as Python callables --------------------------
 */

enum ls_cb_kind { LS_CB_PLAIN = 1, LS_CB_CHILD = 2, LS_CB_PREDICATE = 3 };
/* A new Python callable that calls fn with arg (and, for CHILD, with the pid
 * and returncode it is called with).  A non-zero `id` is removed from the
 * scheduled-callback registry when the callable runs. */
LS_HIDDEN PyObject *ls_ccallback_new(int kind, void (*fn)(void), void *arg,
                                     uint64_t id);
/* loop.c: forgets a scheduled callback's id once it has run. */
LS_HIDDEN void ls_scheduled_forget(uint64_t id);
/* The builtin module _loopspec_c: registers it before Py_Initialize. */
LS_HIDDEN int ls_register_c_module(void);

/* --- warnings.c: the warnings hook -------------------------------------- */

LS_HIDDEN void ls_set_warning_hook(lspec_warning_hook hook, void *user);
/* Delivers one warning to the hook (if any); called with the GIL held, it
 * drops the GIL while the hook runs. */
LS_HIDDEN void ls_emit_warning(int category, const char *text);

/* --- policy_custom.c: custom policies ------------------------------------ */

/* _loopspec_c.override(capsule, method, self, arg): runs a C override. */
LS_HIDDEN PyObject *ls_py_override(PyObject *mod, PyObject *args);

/* --- table.c ----------------------------------------------------------------
 */

LS_HIDDEN int ls_profile(void);
/* The entries, one file per concept. */
LS_HIDDEN int ls_set_profile(int profile);
LS_HIDDEN int ls_get_profile(void);

LS_HIDDEN int ls_get_event_loop_policy(lspec_policy **out);
LS_HIDDEN int ls_set_event_loop_policy(lspec_policy *policy);
LS_HIDDEN int ls_get_event_loop(lspec_loop **out);
LS_HIDDEN int ls_get_running_loop(lspec_loop **out);
LS_HIDDEN int ls_set_event_loop(lspec_loop *loop);
LS_HIDDEN int ls_new_event_loop(lspec_loop **out);
LS_HIDDEN int ls_get_child_watcher(lspec_watcher **out);
LS_HIDDEN int ls_set_child_watcher(lspec_watcher *watcher);
LS_HIDDEN int ls_policy_new_default(lspec_policy **out);
LS_HIDDEN int ls_policy_new_windows_selector(lspec_policy **out);
LS_HIDDEN int ls_policy_new_windows_proactor(lspec_policy **out);
LS_HIDDEN int ls_policy_new_custom(int base,
                                   const struct lspec_policy_methods *m,
                                   void *user, lspec_policy **out);
LS_HIDDEN int ls_policy_get_event_loop(lspec_policy *p, lspec_loop **out);
LS_HIDDEN int ls_policy_set_event_loop(lspec_policy *p, lspec_loop *loop);
LS_HIDDEN int ls_policy_new_event_loop(lspec_policy *p, lspec_loop **out);
LS_HIDDEN int ls_policy_get_child_watcher(lspec_policy *p, lspec_watcher **out);
LS_HIDDEN int ls_policy_set_child_watcher(lspec_policy *p, lspec_watcher *w);
LS_HIDDEN int ls_policy_super_get_event_loop(lspec_policy *self,
                                             lspec_loop **out);
LS_HIDDEN int ls_policy_super_set_event_loop(lspec_policy *self,
                                             lspec_loop *loop);
LS_HIDDEN int ls_policy_super_new_event_loop(lspec_policy *self,
                                             lspec_loop **out);
LS_HIDDEN int ls_policy_super_get_child_watcher(lspec_policy *self,
                                                lspec_watcher **out);
LS_HIDDEN int ls_policy_super_set_child_watcher(lspec_policy *self,
                                                lspec_watcher *w);
LS_HIDDEN void ls_policy_retain(lspec_policy *p);
LS_HIDDEN void ls_policy_release(lspec_policy *p);

LS_HIDDEN int ls_loop_new(int backend, lspec_loop **out);
LS_HIDDEN int ls_loop_run_forever(lspec_loop *loop);
LS_HIDDEN int ls_loop_run_until(lspec_loop *loop, lspec_predicate pred,
                                void *arg, double timeout);
LS_HIDDEN int ls_loop_stop(lspec_loop *loop);
LS_HIDDEN int ls_loop_close(lspec_loop *loop);
LS_HIDDEN int ls_loop_is_running(lspec_loop *loop);
LS_HIDDEN int ls_loop_is_closed(lspec_loop *loop);
LS_HIDDEN double ls_loop_time(lspec_loop *loop);
LS_HIDDEN int ls_loop_call_soon(lspec_loop *loop, lspec_callback cb, void *arg,
                                lspec_handle_id *out);
LS_HIDDEN int ls_loop_call_soon_threadsafe(lspec_loop *loop, lspec_callback cb,
                                           void *arg, lspec_handle_id *out);
LS_HIDDEN int ls_loop_call_later(lspec_loop *loop, double delay,
                                 lspec_callback cb, void *arg,
                                 lspec_handle_id *out);
LS_HIDDEN int ls_loop_cancel(lspec_loop *loop, lspec_handle_id id);
LS_HIDDEN int ls_loop_add_reader(lspec_loop *loop, int fd, lspec_callback cb,
                                 void *arg);
LS_HIDDEN int ls_loop_remove_reader(lspec_loop *loop, int fd);
LS_HIDDEN int ls_loop_add_signal_handler(lspec_loop *loop, int sig,
                                         lspec_callback cb, void *arg);
LS_HIDDEN int ls_loop_remove_signal_handler(lspec_loop *loop, int sig);
LS_HIDDEN int ls_loop_subprocess_exec(lspec_loop *loop, const char *const *argv,
                                      lspec_child_callback cb, void *arg,
                                      int *pid);
LS_HIDDEN void ls_loop_retain(lspec_loop *loop);
LS_HIDDEN void ls_loop_release(lspec_loop *loop);

LS_HIDDEN int ls_watcher_new(int kind, lspec_watcher **out);
LS_HIDDEN int ls_watcher_kind(lspec_watcher *w);
LS_HIDDEN int ls_watcher_add_child_handler(lspec_watcher *w, int pid,
                                           lspec_child_callback cb, void *arg);
LS_HIDDEN int ls_watcher_remove_child_handler(lspec_watcher *w, int pid);
LS_HIDDEN int ls_watcher_attach_loop(lspec_watcher *w, lspec_loop *loop);
LS_HIDDEN int ls_watcher_is_active(lspec_watcher *w);
LS_HIDDEN int ls_watcher_close(lspec_watcher *w);
LS_HIDDEN int ls_watcher_enter(lspec_watcher *w, lspec_watcher **out);
LS_HIDDEN int ls_watcher_exit(lspec_watcher *w);
LS_HIDDEN void ls_watcher_retain(lspec_watcher *w);
LS_HIDDEN void ls_watcher_release(lspec_watcher *w);

/* --- helpers shared by the entry files ----------------------------------- */

/* The prologue of an entry: starts Python if needed (E_INTERNAL if it cannot
 * be started), then takes the GIL.  Use as
 *   LS_ENTER(st);  ... ; LS_LEAVE(st, rc); return rc;                        */
#define LS_ENTER(st)                                                           \
  PyGILState_STATE st;                                                         \
  if (ls_start() != 0)                                                         \
    return ls_fail(LSPEC_E_INTERNAL, "the embedded Python did not start: %s",  \
                   ls_start_error());                                          \
  st = ls_enter()

/* Checks that handle `h` is of `kind` (the receiver of a method): E_TYPE
 * otherwise, with the entry's name in the message. */
LS_HIDDEN int ls_check_receiver(const void *h, int kind, const char *entry);

#endif /* LSPEC_CPYTHON_ADAPTER_H */
