/* ccallback.c - C functions as Python callables, and the builtin module
 * _loopspec_c that the Python half (glue.py) imports.  A CCallback holds a
 * C function pointer and its argument; Python calls it with the GIL held,
 * and the GIL is dropped while the C function runs, so that the function may
 * block, wait for other threads or call back into any ABI entry.
 */
#include "adapter.h"

#include <stdio.h>

LS_HIDDEN PyObject *ls_exc_loopspec_error; /* _loopspec_c.LoopspecError */

typedef struct {
  PyObject_HEAD int kind;
  void (*fn)(void);
  void *arg;
  uint64_t id;
} ccallback;

static PyObject *ccallback_call(PyObject *self, PyObject *args,
                                PyObject *kwargs) {
  ccallback *cb = (ccallback *)self;
  int pid = 0, returncode = 0, result = 0;
  lspec_callback plain;
  lspec_child_callback child;
  lspec_predicate pred;

  if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
    PyErr_SetString(PyExc_TypeError, "a loopspec C callback takes no "
                                     "keyword arguments");
    return NULL;
  }
  if (cb->kind == LS_CB_CHILD) {
    /* callback(pid, returncode, *args): extra arguments are ignored. */
    if (PyTuple_GET_SIZE(args) < 2) {
      PyErr_SetString(PyExc_TypeError,
                      "a child callback needs (pid, returncode)");
      return NULL;
    }
    long v = PyLong_AsLong(PyTuple_GET_ITEM(args, 0));
    if (v == -1 && PyErr_Occurred())
      return NULL;
    pid = (int)v;
    v = PyLong_AsLong(PyTuple_GET_ITEM(args, 1));
    if (v == -1 && PyErr_Occurred())
      return NULL;
    returncode = (int)v;
  }
  if (cb->id != 0) {
    ls_scheduled_forget(cb->id);
    cb->id = 0;
  }
  Py_BEGIN_ALLOW_THREADS switch (cb->kind) {
  case LS_CB_PLAIN:
    plain = (lspec_callback)cb->fn;
    plain(cb->arg);
    break;
  case LS_CB_CHILD:
    child = (lspec_child_callback)cb->fn;
    child(pid, returncode, cb->arg);
    break;
  default:
    pred = (lspec_predicate)cb->fn;
    result = pred(cb->arg) != 0;
    break;
  }
  Py_END_ALLOW_THREADS;
  if (cb->kind == LS_CB_PREDICATE)
    return PyBool_FromLong(result);
  Py_RETURN_NONE;
}

static PyObject *ccallback_repr(PyObject *self) {
  ccallback *cb = (ccallback *)self;
  static const char *kinds[4] = {"?", "callback", "child callback",
                                 "predicate"};
  char buf[128];
  snprintf(buf, sizeof buf, "<loopspec C %s %p(%p)>",
           kinds[cb->kind >= 1 && cb->kind <= 3 ? cb->kind : 0],
           *(void **)&cb->fn, cb->arg);
  return PyUnicode_FromString(buf);
}

static PyTypeObject ccallback_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_loopspec_c.CCallback",
    .tp_basicsize = sizeof(ccallback),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_call = ccallback_call,
    .tp_repr = ccallback_repr,
    .tp_doc = "A C function of a loopspec test, callable from Python.",
};

PyObject *ls_ccallback_new(int kind, void (*fn)(void), void *arg, uint64_t id) {
  ccallback *cb = PyObject_New(ccallback, &ccallback_type);
  if (cb == NULL)
    return NULL;
  cb->kind = kind;
  cb->fn = fn;
  cb->arg = arg;
  cb->id = id;
  return (PyObject *)cb;
}

/* _loopspec_c.emit(category, text): a warning for the hook. */
static PyObject *py_emit(PyObject *mod, PyObject *args) {
  int category;
  const char *text;
  (void)mod;
  if (!PyArg_ParseTuple(args, "is", &category, &text))
    return NULL;
  ls_emit_warning(category, text);
  Py_RETURN_NONE;
}

static PyMethodDef c_methods[] = {
    {"emit", py_emit, METH_VARARGS,
     "emit(category, text): deliver a warning to the ABI's warnings hook"},
    {"override", ls_py_override, METH_VARARGS,
     "override(capsule, method, self, arg): run a custom policy's C method"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef c_module = {
    PyModuleDef_HEAD_INIT, .m_name = "_loopspec_c",
    .m_doc = "The C half of loopspec's CPython adapter.", .m_size = -1,
    .m_methods = c_methods};

static PyObject *init_c_module(void) {
  PyObject *m;
  if (PyType_Ready(&ccallback_type) < 0)
    return NULL;
  m = PyModule_Create(&c_module);
  if (m == NULL)
    return NULL;
  ls_exc_loopspec_error =
      PyErr_NewException("_loopspec_c.LoopspecError", PyExc_Exception, NULL);
  if (ls_exc_loopspec_error == NULL ||
      PyModule_AddObjectRef(m, "LoopspecError", ls_exc_loopspec_error) < 0 ||
      PyModule_AddObjectRef(m, "CCallback", (PyObject *)&ccallback_type) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}

int ls_register_c_module(void) {
  return PyImport_AppendInittab("_loopspec_c", init_c_module);
}
