/* handles.c - the ABI's opaque handles over Python objects: one handle per
 * object (a dictionary from id(obj) to the handle keeps identity), each
 * owning one strong reference to its object; retain/release count the
 * handle, and the last release drops the reference.  A handle's kind comes
 * from the object's class (AbstractEventLoopPolicy, AbstractEventLoop,
 * AbstractChildWatcher), so handles of different kinds can be told apart.
 */
#include "adapter.h"

#include <stdatomic.h>
#include <stdlib.h>

struct ls_handle {
  int kind;
  atomic_long refs;
  PyObject *obj; /* strong */
};
/* The ABI's three opaque types are all one handle. */
struct lspec_policy {
  struct ls_handle h;
};
struct lspec_loop {
  struct ls_handle h;
};
struct lspec_watcher {
  struct ls_handle h;
};

static PyObject *registry;    /* {id(obj): handle address}; GIL-protected */
static PyObject *kind_cls[4]; /* index ls_kind -> the asyncio ABC */

static int kind_of(PyObject *obj) {
  static const char *names[4] = {NULL, "AbstractEventLoopPolicy",
                                 "AbstractEventLoop", "AbstractChildWatcher"};
  for (int k = LS_POLICY; k <= LS_WATCHER; k++) {
    int r;
    if (kind_cls[k] == NULL) {
      kind_cls[k] = PyObject_GetAttrString(ls_glue(), names[k]);
      if (kind_cls[k] == NULL)
        return -1;
    }
    r = PyObject_IsInstance(obj, kind_cls[k]);
    if (r < 0)
      return -1;
    if (r)
      return k;
  }
  return 0;
}

void *ls_handle_of(PyObject *obj) {
  PyObject *key, *found;
  struct ls_handle *h;
  int kind;

  if (registry == NULL && (registry = PyDict_New()) == NULL)
    return NULL;
  key = PyLong_FromVoidPtr(obj);
  if (key == NULL)
    return NULL;
  found = PyDict_GetItemWithError(registry, key);
  if (found != NULL) {
    h = PyLong_AsVoidPtr(found);
    atomic_fetch_add(&h->refs, 1);
    Py_DECREF(key);
    return h;
  }
  if (PyErr_Occurred() || (kind = kind_of(obj)) < 0) {
    Py_DECREF(key);
    return NULL;
  }
  if (kind == 0) {
    PyErr_Format(PyExc_TypeError,
                 "%.100s is neither an event loop policy, an event loop nor "
                 "a child watcher",
                 Py_TYPE(obj)->tp_name);
    Py_DECREF(key);
    return NULL;
  }
  h = calloc(1, sizeof *h);
  if (h == NULL) {
    Py_DECREF(key);
    PyErr_NoMemory();
    return NULL;
  }
  h->kind = kind;
  atomic_init(&h->refs, 1);
  Py_INCREF(obj);
  h->obj = obj;
  found = PyLong_FromVoidPtr(h);
  if (found == NULL || PyDict_SetItem(registry, key, found) != 0) {
    Py_XDECREF(found);
    Py_DECREF(key);
    Py_DECREF(obj);
    free(h);
    return NULL;
  }
  Py_DECREF(found);
  Py_DECREF(key);
  return h;
}

int ls_handle_kind(const void *h) {
  return h ? ((const struct ls_handle *)h)->kind : 0;
}

PyObject *ls_handle_obj(const void *h) {
  return ((const struct ls_handle *)h)->obj;
}

PyObject *ls_handle_obj_or_none(const void *h) {
  return h ? ((const struct ls_handle *)h)->obj : Py_None;
}

void ls_handle_retain(void *h) {
  atomic_fetch_add(&((struct ls_handle *)h)->refs, 1);
}

void ls_handle_release_locked(void *vh) {
  struct ls_handle *h = vh;
  PyObject *key, *obj;
  if (atomic_fetch_sub(&h->refs, 1) != 1)
    return;
  /* Every decrement happens with the GIL held, and so does every lookup:
   * nobody can find the handle between here and its removal. */
  key = PyLong_FromVoidPtr(h->obj);
  if (key == NULL || PyDict_DelItem(registry, key) != 0)
    PyErr_Clear();
  Py_XDECREF(key);
  obj = h->obj;
  h->kind = 0;
  free(h);
  Py_DECREF(obj); /* may run __del__, destroy() of a custom policy, ... */
}

void ls_retain_kind(void *h, int kind) {
  if (h == NULL || ls_handle_kind(h) != kind)
    return;
  ls_handle_retain(h);
}

void ls_release_kind(void *h, int kind) {
  PyGILState_STATE st;
  if (h == NULL || ls_handle_kind(h) != kind || ls_start() != 0)
    return;
  st = ls_enter();
  ls_handle_release_locked(h);
  if (PyErr_Occurred())
    PyErr_WriteUnraisable(NULL);
  ls_leave(st);
}

int ls_out_handle(PyObject *result, void **out) {
  if (result == NULL) {
    *out = NULL;
    return ls_fail_py();
  }
  if (result == Py_None) {
    Py_DECREF(result);
    *out = NULL;
    return LSPEC_OK;
  }
  *out = ls_handle_of(result);
  Py_DECREF(result);
  if (*out == NULL)
    return ls_fail_py();
  return LSPEC_OK;
}

int ls_check_receiver(const void *h, int kind, const char *entry) {
  static const char *names[4] = {"", "policy", "loop", "watcher"};
  if (h == NULL)
    return ls_fail(LSPEC_E_TYPE, "%s: the %s is NULL", entry, names[kind]);
  if (ls_handle_kind(h) != kind)
    return ls_fail(LSPEC_E_TYPE, "%s: the handle is a %s, not a %s", entry,
                   names[ls_handle_kind(h)], names[kind]);
  return LSPEC_OK;
}
