/* subprocess.c - loop_subprocess_exec: loop.subprocess_exec(protocol, *argv)
 * run up to its first suspension inside the call (so the spawn, the watcher's
 * checks and their errors happen here), then driven on by the loop
 * (glue.subprocess_exec).  The exit reaches the C callback from the
 * protocol's process_exited(), in the loop's thread, with the transport's
 * pid and returncode.
 */
#include "adapter.h"

int ls_loop_subprocess_exec(lspec_loop *loop, const char *const *argv,
                            lspec_child_callback cb, void *arg, int *pid) {
  PyObject *list = NULL, *ccb = NULL, *res = NULL;
  int rc;
  size_t n = 0;

  if (pid != NULL)
    *pid = 0;
  if ((rc = ls_check_receiver(loop, LS_LOOP, "loop_subprocess_exec")) !=
      LSPEC_OK)
    return rc;
  if (argv == NULL || argv[0] == NULL)
    return ls_fail(LSPEC_E_VALUE, "subprocess_exec: argv is empty");
  if (cb == NULL)
    return ls_fail(LSPEC_E_TYPE, "a callable object was expected by "
                                 "subprocess_exec(), got NULL");
  LS_ENTER(st);
  while (argv[n] != NULL)
    n++;
  list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; list != NULL && i < n; i++) {
    PyObject *s = PyUnicode_DecodeFSDefault(argv[i]);
    if (s == NULL) {
      Py_CLEAR(list);
      break;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, s);
  }
  if (list != NULL)
    ccb = ls_ccallback_new(LS_CB_CHILD, (void (*)(void))cb, arg, 0);
  if (ccb != NULL)
    res = ls_call_glue("subprocess_exec", "(OOO)", ls_handle_obj(loop), list,
                       ccb);
  if (res == NULL) {
    rc = ls_fail_py();
  } else {
    long v = PyLong_AsLong(res);
    if (v == -1 && PyErr_Occurred()) {
      rc = ls_fail_py();
    } else {
      rc = LSPEC_OK;
      if (pid != NULL)
        *pid = (int)v;
    }
  }
  Py_XDECREF(res);
  Py_XDECREF(ccb);
  Py_XDECREF(list);
  ls_leave(st);
  return rc;
}
