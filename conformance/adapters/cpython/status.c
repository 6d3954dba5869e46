/* status.c - statuses, last_error() and last_errno(): a Python exception is
 * turned into the ABI status of its class (most specific class first), its
 * text is kept per thread for last_error(); and the other way round, a
 * status a C override returned is raised as the Python exception of its
 * class, so that it travels through asyncio's code as CPython's would.
 */
#include "adapter.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char tl_message[1024];
static __thread int tl_errno;

/* The attribute that carries an exact status through Python code. */
#define LS_STATUS_ATTR "_lspec_status"

const char *ls_last_error(void) { return tl_message; }
int ls_last_errno(void) { return tl_errno; }

int ls_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tl_message, sizeof tl_message, fmt, ap);
  va_end(ap);
  tl_errno = 0;
  return status;
}

/* Exception classes and their statuses, most specific first (a subclass
 * before its base: NotImplementedError is a RuntimeError, ProcessLookupError
 * an OSError). */
static int status_of_class(PyObject *type) {
  static const struct {
    PyObject **cls;
    int status;
  } map[] = {
      {&PyExc_MemoryError, LSPEC_E_NOMEM},
      {&PyExc_NotImplementedError, LSPEC_E_NOTIMPL},
      {&PyExc_RuntimeError, LSPEC_E_RUNTIME},
      {&PyExc_ProcessLookupError, LSPEC_E_PROCESS_LOOKUP},
      {&PyExc_ChildProcessError, LSPEC_E_CHILD_PROCESS},
      {&PyExc_TimeoutError, LSPEC_E_TIMEOUT},
      {&PyExc_OSError, LSPEC_E_OS},
      {&PyExc_AssertionError, LSPEC_E_ASSERTION},
      {&PyExc_AttributeError, LSPEC_E_ATTRIBUTE},
      {&PyExc_KeyError, LSPEC_E_KEY},
      {&PyExc_TypeError, LSPEC_E_TYPE},
      {&PyExc_ValueError, LSPEC_E_VALUE},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (PyErr_GivenExceptionMatches(type, *map[i].cls))
      return map[i].status;
  return LSPEC_E_INTERNAL;
}

int ls_fail_py(void) {
  PyObject *type, *value, *tb, *text = NULL, *attr;
  int status;
  const char *name = "?", *msg = NULL;

  PyErr_Fetch(&type, &value, &tb);
  if (type == NULL)
    return ls_fail(LSPEC_E_INTERNAL, "a Python call failed without an "
                                     "exception");
  PyErr_NormalizeException(&type, &value, &tb);
  status = status_of_class(type);
  tl_errno = 0;
  if (value != NULL) {
    attr = PyObject_GetAttrString(value, LS_STATUS_ATTR);
    if (attr != NULL && PyLong_Check(attr))
      status = (int)PyLong_AsLong(attr);
    Py_XDECREF(attr);
    PyErr_Clear();
    if (status == LSPEC_E_OS) {
      attr = PyObject_GetAttrString(value, "errno");
      if (attr != NULL && PyLong_Check(attr))
        tl_errno = (int)PyLong_AsLong(attr);
      Py_XDECREF(attr);
      PyErr_Clear();
    }
    text = PyObject_Str(value);
    if (text != NULL && PyUnicode_Check(text))
      msg = PyUnicode_AsUTF8(text);
    PyErr_Clear();
  }
  if (PyType_Check(type))
    name = ((PyTypeObject *)type)->tp_name;
  if (msg == NULL || msg[0] == '\0')
    snprintf(tl_message, sizeof tl_message, "%s", name);
  else
    snprintf(tl_message, sizeof tl_message, "%s: %s", name, msg);
  Py_XDECREF(text);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  if (status == LSPEC_OK)
    status = LSPEC_E_INTERNAL;
  return status;
}

extern LS_HIDDEN PyObject *ls_exc_loopspec_error; /* ccallback.c */

void ls_raise_status(int status) {
  PyObject *cls, *exc, *num;
  const char *msg = tl_message;
  char copy[sizeof tl_message];

  switch (status) {
  case LSPEC_E_RUNTIME:
    cls = PyExc_RuntimeError;
    break;
  case LSPEC_E_VALUE:
    cls = PyExc_ValueError;
    break;
  case LSPEC_E_TYPE:
    cls = PyExc_TypeError;
    break;
  case LSPEC_E_NOTIMPL:
    cls = PyExc_NotImplementedError;
    break;
  case LSPEC_E_ASSERTION:
    cls = PyExc_AssertionError;
    break;
  case LSPEC_E_PROCESS_LOOKUP:
    cls = PyExc_ProcessLookupError;
    break;
  case LSPEC_E_CHILD_PROCESS:
    cls = PyExc_ChildProcessError;
    break;
  case LSPEC_E_OS:
    cls = PyExc_OSError;
    break;
  case LSPEC_E_ATTRIBUTE:
    cls = PyExc_AttributeError;
    break;
  case LSPEC_E_KEY:
    cls = PyExc_KeyError;
    break;
  case LSPEC_E_TIMEOUT:
    cls = PyExc_TimeoutError;
    break;
  case LSPEC_E_NOMEM:
    cls = PyExc_MemoryError;
    break;
  default:
    cls = ls_exc_loopspec_error;
    break;
  }
  /* The message a failing inner entry left is the override's reason; its
   * "Class: " prefix is dropped, the class says it again. */
  snprintf(copy, sizeof copy, "%s", msg);
  msg = copy;
  {
    const char *colon = strstr(copy, ": ");
    if (colon != NULL && colon - copy < 40 && strchr(copy, ' ') > colon)
      msg = colon + 2;
  }
  if (status == LSPEC_E_OS && tl_errno != 0)
    exc = PyObject_CallFunction(cls, "is", tl_errno, msg);
  else
    exc = PyObject_CallFunction(cls, "s", msg);
  if (exc == NULL)
    return;
  num = PyLong_FromLong(status);
  if (num != NULL) {
    PyObject_SetAttrString(exc, LS_STATUS_ATTR, num);
    Py_DECREF(num);
  }
  PyErr_Clear();
  PyErr_SetObject(cls, exc);
  Py_DECREF(exc);
}
