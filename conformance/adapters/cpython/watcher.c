/* watcher.c - child watcher entries: asyncio's five watcher classes (and,
 * for a policy without asyncio's watchers such as uvloop's, the loop's own
 * mechanism as LSPEC_WATCHER_NATIVE; see glue.NativeChildWatcher), each entry
 * one method call: add_child_handler, remove_child_handler, attach_loop,
 * is_active, close, __enter__ and __exit__.
 */
#include "adapter.h"

#include <stdarg.h>

int ls_watcher_new(int kind, lspec_watcher **out) {
  int rc;
  if (out == NULL)
    return ls_fail(LSPEC_E_VALUE, "watcher_new: out is NULL");
  *out = NULL;
  if (kind < LSPEC_WATCHER_THREADED || kind > LSPEC_WATCHER_NATIVE)
    return ls_fail(LSPEC_E_VALUE, "watcher_new: unknown kind %d", kind);
  LS_ENTER(st);
  rc = ls_out_handle(ls_call_glue("watcher_new", "(i)", kind), (void **)out);
  ls_leave(st);
  return rc;
}

int ls_watcher_kind(lspec_watcher *w) {
  PyObject *res;
  int rc = ls_check_receiver(w, LS_WATCHER, "watcher_kind");
  if (rc != LSPEC_OK)
    return rc;
  LS_ENTER(st);
  res = ls_call_glue("watcher_kind", "(O)", ls_handle_obj(w));
  rc = res ? (int)PyLong_AsLong(res) : ls_fail_py();
  Py_XDECREF(res);
  ls_leave(st);
  return rc;
}

int ls_watcher_add_child_handler(lspec_watcher *w, int pid,
                                 lspec_child_callback cb, void *arg) {
  PyObject *ccb, *res;
  int rc = ls_check_receiver(w, LS_WATCHER, "watcher_add_child_handler");
  if (rc != LSPEC_OK)
    return rc;
  if (cb == NULL)
    return ls_fail(LSPEC_E_TYPE, "a callable object was expected by "
                                 "add_child_handler(), got NULL");
  /* The ABI's rule: asyncio would pass 0 or -1 to waitpid(), which waits
   * for any child of the process (the test's own included). */
  if (pid <= 0)
    return ls_fail(LSPEC_E_VALUE,
                   "add_child_handler: pid %d is not a "
                   "process id",
                   pid);
  LS_ENTER(st);
  ccb = ls_ccallback_new(LS_CB_CHILD, (void (*)(void))cb, arg, 0);
  res = ccb ? PyObject_CallMethod(ls_handle_obj(w), "add_child_handler", "iO",
                                  pid, ccb)
            : NULL;
  rc = res ? LSPEC_OK : ls_fail_py();
  Py_XDECREF(res);
  Py_XDECREF(ccb);
  ls_leave(st);
  return rc;
}

/* w.<name>(*args) returning a bool (1/0) or, for bool_result 0, nothing. */
static int watcher_method(lspec_watcher *w, const char *name, int bool_result,
                          const char *fmt, ...) {
  PyObject *fn, *args, *res;
  va_list ap;
  int rc = ls_check_receiver(w, LS_WATCHER, name);
  if (rc != LSPEC_OK)
    return rc;
  LS_ENTER(st);
  fn = PyObject_GetAttrString(ls_handle_obj(w), name);
  va_start(ap, fmt);
  args = fn ? Py_VaBuildValue(fmt, ap) : NULL;
  va_end(ap);
  res = args ? PyObject_Call(fn, args, NULL) : NULL;
  if (res == NULL) {
    rc = ls_fail_py();
  } else if (bool_result) {
    rc = PyObject_IsTrue(res);
    if (rc < 0)
      rc = ls_fail_py();
  }
  Py_XDECREF(res);
  Py_XDECREF(args);
  Py_XDECREF(fn);
  ls_leave(st);
  return rc;
}

int ls_watcher_remove_child_handler(lspec_watcher *w, int pid) {
  return watcher_method(w, "remove_child_handler", 1, "(i)", pid);
}
int ls_watcher_attach_loop(lspec_watcher *w, lspec_loop *loop) {
  /* The loop goes to Python as it is: a handle of another kind is the
   * wrong-type case, answered by the watcher itself. */
  PyObject *obj;
  if (ls_check_receiver(w, LS_WATCHER, "attach_loop") != LSPEC_OK)
    return LSPEC_E_TYPE;
  obj = ls_handle_obj_or_none(loop);
  return watcher_method(w, "attach_loop", 0, "(O)", obj);
}
int ls_watcher_is_active(lspec_watcher *w) {
  return watcher_method(w, "is_active", 1, "()");
}
int ls_watcher_close(lspec_watcher *w) {
  return watcher_method(w, "close", 0, "()");
}
int ls_watcher_exit(lspec_watcher *w) {
  return watcher_method(w, "__exit__", 0, "(OOO)", Py_None, Py_None, Py_None);
}

int ls_watcher_enter(lspec_watcher *w, lspec_watcher **out) {
  int rc;
  if (out != NULL)
    *out = NULL;
  if ((rc = ls_check_receiver(w, LS_WATCHER, "watcher_enter")) != LSPEC_OK)
    return rc;
  if (out == NULL)
    return ls_fail(LSPEC_E_VALUE, "watcher_enter: out is NULL");
  LS_ENTER(st);
  rc = ls_out_handle(PyObject_CallMethod(ls_handle_obj(w), "__enter__", NULL),
                     (void **)out);
  ls_leave(st);
  return rc;
}

void ls_watcher_retain(lspec_watcher *w) { ls_retain_kind(w, LS_WATCHER); }
void ls_watcher_release(lspec_watcher *w) { ls_release_kind(w, LS_WATCHER); }
