/* loop.c - event loop entries: each is the asyncio loop method of the same
 * name (run_forever, stop, close, call_soon, add_reader, ...); run_until is
 * glue.run_until.  Scheduled callbacks get ABI ids through a registry
 * {id: (loop, asyncio.Handle)} so that loop_cancel can find the Handle; an
 * entry goes when its callback runs, is cancelled, or its loop is closed.
 * The ABI's own argument rules (NULL callback: TypeError; NaN delay:
 * ValueError) are checked here, before asyncio sees the call.
 */
#include "adapter.h"

#include <math.h>
#include <stdatomic.h>

static PyObject *scheduled; /* {id: (loop, handle or None)}; GIL-protected */
static atomic_uint_fast64_t next_id = 1;

static int scheduled_ready(void) {
  if (scheduled == NULL)
    scheduled = PyDict_New();
  return scheduled != NULL ? 0 : -1;
}

void ls_scheduled_forget(uint64_t id) {
  PyObject *key;
  if (scheduled == NULL)
    return;
  key = PyLong_FromUnsignedLongLong(id);
  if (key == NULL || PyDict_DelItem(scheduled, key) != 0)
    PyErr_Clear();
  Py_XDECREF(key);
}

/* Forgets every entry of `loop` (closed: its callbacks will never run). */
static void scheduled_forget_loop(PyObject *loop) {
  PyObject *key, *value, *dead = PyList_New(0);
  Py_ssize_t pos = 0;
  if (dead == NULL || scheduled == NULL) {
    Py_XDECREF(dead);
    PyErr_Clear();
    return;
  }
  while (PyDict_Next(scheduled, &pos, &key, &value))
    if (PyTuple_GET_ITEM(value, 0) == loop)
      PyList_Append(dead, key);
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dead); i++)
    PyDict_DelItem(scheduled, PyList_GET_ITEM(dead, i));
  Py_DECREF(dead);
  PyErr_Clear();
}

/* loop.<name>() with no arguments; returns the result or NULL. */
static PyObject *loop_call0(lspec_loop *loop, const char *name) {
  return PyObject_CallMethod(ls_handle_obj(loop), name, NULL);
}

/* A loop method returning nothing of interest. */
static int loop_simple(lspec_loop *loop, const char *name) {
  PyObject *res;
  int rc = ls_check_receiver(loop, LS_LOOP, name);
  if (rc != LSPEC_OK)
    return rc;
  LS_ENTER(st);
  res = loop_call0(loop, name);
  rc = res ? LSPEC_OK : ls_fail_py();
  Py_XDECREF(res);
  ls_leave(st);
  return rc;
}

/* A loop method returning a bool: 1, 0 or a status. */
static int loop_bool(lspec_loop *loop, const char *name, PyObject *arg) {
  PyObject *res;
  int rc = ls_check_receiver(loop, LS_LOOP, name);
  if (rc != LSPEC_OK)
    return rc;
  LS_ENTER(st);
  res = arg ? PyObject_CallMethod(ls_handle_obj(loop), name, "O", arg)
            : loop_call0(loop, name);
  if (res == NULL) {
    rc = ls_fail_py();
  } else {
    rc = PyObject_IsTrue(res);
    if (rc < 0)
      rc = ls_fail_py();
    Py_DECREF(res);
  }
  ls_leave(st);
  return rc;
}

int ls_loop_new(int backend, lspec_loop **out) {
  int rc;
  if (out == NULL)
    return ls_fail(LSPEC_E_VALUE, "loop_new: out is NULL");
  *out = NULL;
  if (backend != LSPEC_BACKEND_DEFAULT && backend != LSPEC_BACKEND_EPOLL &&
      backend != LSPEC_BACKEND_POLL)
    return ls_fail(LSPEC_E_VALUE, "loop_new: unknown backend %d", backend);
  LS_ENTER(st);
  rc = ls_out_handle(ls_call_glue("loop_new", "(i)", backend), (void **)out);
  ls_leave(st);
  return rc;
}

int ls_loop_run_forever(lspec_loop *loop) {
  return loop_simple(loop, "run_forever");
}

int ls_loop_run_until(lspec_loop *loop, lspec_predicate pred, void *arg,
                      double timeout) {
  PyObject *pcb = NULL, *res;
  int rc = ls_check_receiver(loop, LS_LOOP, "loop_run_until");
  if (rc != LSPEC_OK)
    return rc;
  if (isnan(timeout))
    return ls_fail(LSPEC_E_VALUE, "loop_run_until: the timeout is NaN");
  LS_ENTER(st);
  if (pred != NULL)
    pcb = ls_ccallback_new(LS_CB_PREDICATE, (void (*)(void))pred, arg, 0);
  if (pred != NULL && pcb == NULL) {
    rc = ls_fail_py();
  } else {
    res = ls_call_glue("run_until", "(OOd)", ls_handle_obj(loop),
                       pcb ? pcb : Py_None, timeout);
    rc = res ? LSPEC_OK : ls_fail_py();
    Py_XDECREF(res);
  }
  Py_XDECREF(pcb);
  ls_leave(st);
  return rc;
}

int ls_loop_stop(lspec_loop *loop) { return loop_simple(loop, "stop"); }

int ls_loop_close(lspec_loop *loop) {
  int rc = loop_simple(loop, "close");
  if (rc == LSPEC_OK) {
    PyGILState_STATE st = ls_enter();
    scheduled_forget_loop(ls_handle_obj(loop));
    ls_leave(st);
  }
  return rc;
}

int ls_loop_is_running(lspec_loop *loop) {
  return loop_bool(loop, "is_running", NULL);
}
int ls_loop_is_closed(lspec_loop *loop) {
  return loop_bool(loop, "is_closed", NULL);
}

double ls_loop_time(lspec_loop *loop) {
  PyObject *res;
  double t = -1.0;
  if (ls_check_receiver(loop, LS_LOOP, "loop_time") != LSPEC_OK)
    return -1.0;
  if (ls_start() != 0)
    return -1.0;
  PyGILState_STATE st = ls_enter();
  res = loop_call0(loop, "time");
  if (res != NULL)
    t = PyFloat_AsDouble(res);
  if (res == NULL || PyErr_Occurred()) {
    ls_fail_py();
    t = -1.0;
  }
  Py_XDECREF(res);
  ls_leave(st);
  return t;
}

/* call_soon, call_soon_threadsafe (delay < 0 unused) and call_later. */
static int schedule(lspec_loop *loop, const char *name, double delay,
                    lspec_callback cb, void *arg, lspec_handle_id *out) {
  PyObject *ccb = NULL, *handle = NULL, *key = NULL, *entry;
  uint64_t id;
  int rc = ls_check_receiver(loop, LS_LOOP, name);

  if (out != NULL)
    *out = 0;
  if (rc != LSPEC_OK)
    return rc;
  if (cb == NULL)
    return ls_fail(LSPEC_E_TYPE,
                   "a callable object was expected by %s(), "
                   "got NULL",
                   name);
  if (isnan(delay))
    return ls_fail(LSPEC_E_VALUE, "%s: the delay is NaN", name);
  LS_ENTER(st);
  id = atomic_fetch_add(&next_id, 1);
  if (scheduled_ready() != 0 || (key = PyLong_FromUnsignedLongLong(id)) == NULL)
    goto failed;
  /* The entry exists before the callback can run (another thread may run
   * the loop as soon as call_soon_threadsafe has queued it). */
  entry = PyTuple_Pack(2, ls_handle_obj(loop), Py_None);
  if (entry == NULL || PyDict_SetItem(scheduled, key, entry) != 0) {
    Py_XDECREF(entry);
    goto failed;
  }
  Py_DECREF(entry);
  ccb = ls_ccallback_new(LS_CB_PLAIN, (void (*)(void))cb, arg, id);
  if (ccb == NULL)
    goto failed_registered;
  if (delay >= 0)
    handle = PyObject_CallMethod(ls_handle_obj(loop), name, "dO", delay, ccb);
  else
    handle = PyObject_CallMethod(ls_handle_obj(loop), name, "O", ccb);
  if (handle == NULL)
    goto failed_registered;
  if (PyDict_Contains(scheduled, key) == 1) {
    entry = PyTuple_Pack(2, ls_handle_obj(loop), handle);
    if (entry != NULL)
      PyDict_SetItem(scheduled, key, entry);
    Py_XDECREF(entry);
  }
  PyErr_Clear();
  Py_DECREF(handle);
  Py_DECREF(ccb);
  Py_DECREF(key);
  if (out != NULL)
    *out = id;
  ls_leave(st);
  return LSPEC_OK;

failed_registered:
  rc = ls_fail_py();
  PyDict_DelItem(scheduled, key);
  PyErr_Clear();
  goto done;
failed:
  rc = ls_fail_py();
done:
  Py_XDECREF(ccb);
  Py_XDECREF(key);
  ls_leave(st);
  return rc;
}

int ls_loop_call_soon(lspec_loop *loop, lspec_callback cb, void *arg,
                      lspec_handle_id *out) {
  return schedule(loop, "call_soon", -1.0, cb, arg, out);
}
int ls_loop_call_soon_threadsafe(lspec_loop *loop, lspec_callback cb, void *arg,
                                 lspec_handle_id *out) {
  return schedule(loop, "call_soon_threadsafe", -1.0, cb, arg, out);
}
int ls_loop_call_later(lspec_loop *loop, double delay, lspec_callback cb,
                       void *arg, lspec_handle_id *out) {
  /* A negative delay is asyncio's "as soon as possible": call_later(0). */
  return schedule(loop, "call_later", delay < 0 ? 0.0 : delay, cb, arg, out);
}

int ls_loop_cancel(lspec_loop *loop, lspec_handle_id id) {
  PyObject *key, *entry;
  int rc = ls_check_receiver(loop, LS_LOOP, "loop_cancel");
  if (rc != LSPEC_OK)
    return rc;
  LS_ENTER(st);
  if (scheduled_ready() != 0 ||
      (key = PyLong_FromUnsignedLongLong(id)) == NULL) {
    rc = ls_fail_py();
    ls_leave(st);
    return rc;
  }
  entry = PyDict_GetItemWithError(scheduled, key);
  if (entry != NULL && PyTuple_GET_ITEM(entry, 0) == ls_handle_obj(loop) &&
      PyTuple_GET_ITEM(entry, 1) != Py_None) {
    PyObject *handle = PyTuple_GET_ITEM(entry, 1), *res;
    Py_INCREF(handle);
    PyDict_DelItem(scheduled, key);
    res = PyObject_CallMethod(handle, "cancel", NULL);
    if (res == NULL)
      rc = ls_fail_py();
    Py_XDECREF(res);
    Py_DECREF(handle);
  }
  PyErr_Clear();
  Py_DECREF(key);
  ls_leave(st);
  return rc;
}

int ls_loop_add_reader(lspec_loop *loop, int fd, lspec_callback cb, void *arg) {
  PyObject *ccb, *res;
  int rc = ls_check_receiver(loop, LS_LOOP, "loop_add_reader");
  if (rc != LSPEC_OK)
    return rc;
  if (cb == NULL)
    return ls_fail(LSPEC_E_TYPE, "a callable object was expected by "
                                 "add_reader(), got NULL");
  LS_ENTER(st);
  ccb = ls_ccallback_new(LS_CB_PLAIN, (void (*)(void))cb, arg, 0);
  res = ccb ? PyObject_CallMethod(ls_handle_obj(loop), "add_reader", "iO", fd,
                                  ccb)
            : NULL;
  rc = res ? LSPEC_OK : ls_fail_py();
  Py_XDECREF(res);
  Py_XDECREF(ccb);
  ls_leave(st);
  return rc;
}

/* loop.METHOD(n) for a method answering a bool (remove_reader,
 * remove_signal_handler): 1, 0, or a status. */
static int loop_bool_int(lspec_loop *loop, const char *method, int n) {
  PyObject *arg;
  int rc;
  if (ls_start() != 0)
    return ls_fail(LSPEC_E_INTERNAL, "%s", ls_start_error());
  PyGILState_STATE st = ls_enter();
  arg = PyLong_FromLong(n);
  ls_leave(st);
  rc = arg ? loop_bool(loop, method, arg) : LSPEC_E_NOMEM;
  st = ls_enter();
  Py_XDECREF(arg);
  ls_leave(st);
  return rc;
}

int ls_loop_remove_reader(lspec_loop *loop, int fd) {
  return loop_bool_int(loop, "remove_reader", fd);
}

int ls_loop_add_signal_handler(lspec_loop *loop, int sig, lspec_callback cb,
                               void *arg) {
  PyObject *ccb, *res;
  int rc = ls_check_receiver(loop, LS_LOOP, "loop_add_signal_handler");
  if (rc != LSPEC_OK)
    return rc;
  if (cb == NULL)
    return ls_fail(LSPEC_E_TYPE, "a callable object was expected by "
                                 "add_signal_handler(), got NULL");
  LS_ENTER(st);
  ccb = ls_ccallback_new(LS_CB_PLAIN, (void (*)(void))cb, arg, 0);
  res = ccb ? PyObject_CallMethod(ls_handle_obj(loop), "add_signal_handler",
                                  "iO", sig, ccb)
            : NULL;
  rc = res ? LSPEC_OK : ls_fail_py();
  Py_XDECREF(res);
  Py_XDECREF(ccb);
  ls_leave(st);
  return rc;
}

int ls_loop_remove_signal_handler(lspec_loop *loop, int sig) {
  return loop_bool_int(loop, "remove_signal_handler", sig);
}

void ls_loop_retain(lspec_loop *loop) { ls_retain_kind(loop, LS_LOOP); }
void ls_loop_release(lspec_loop *loop) { ls_release_kind(loop, LS_LOOP); }
