/* policy_custom.c - custom policies: a Python subclass of the base
 * (AbstractEventLoopPolicy, or the run's DefaultEventLoopPolicy; see
 * glue.new_custom_policy) whose overridden methods call the test's C
 * functions through _loopspec_c.override, and policy_super_*, which run the
 * base's method on the policy as super() does.  The C table and `user` live
 * in a capsule owned by the Python object: destroy(user) runs when that
 * object dies, that is when the last reference to the policy (handles, the
 * process-wide slot, ...) is gone.
 */
#include "adapter.h"

#include <stdlib.h>
#include <string.h>

#define LS_CAPSULE_NAME "loopspec.custom_policy"

struct custom {
  struct lspec_policy_methods m;
  void *user;
};

static void custom_destroy(PyObject *capsule) {
  struct custom *c = PyCapsule_GetPointer(capsule, LS_CAPSULE_NAME);
  if (c == NULL) {
    PyErr_Clear();
    return;
  }
  if (c->m.destroy != NULL) {
    void (*destroy)(void *) = c->m.destroy;
    void *user = c->user;
    Py_BEGIN_ALLOW_THREADS destroy(user);
    Py_END_ALLOW_THREADS
  }
  free(c);
}

int ls_policy_new_custom(int base, const struct lspec_policy_methods *m,
                         void *user, lspec_policy **out) {
  struct custom *c;
  PyObject *capsule;
  int mask = 0, rc;

  if (out == NULL)
    return ls_fail(LSPEC_E_VALUE, "policy_new_custom: out is NULL");
  *out = NULL;
  if (base != LSPEC_POLICY_BASE_ABSTRACT && base != LSPEC_POLICY_BASE_DEFAULT)
    return ls_fail(LSPEC_E_VALUE, "policy_new_custom: unknown base %d", base);
  if (m != NULL) {
    const unsigned char *bytes = (const unsigned char *)m;
    if (m->size < sizeof m->size)
      return ls_fail(LSPEC_E_VALUE, "policy methods: size %zu is too small",
                     m->size);
    for (size_t i = sizeof *m; i < m->size; i++)
      if (bytes[i] != 0)
        return ls_fail(LSPEC_E_VALUE,
                       "policy methods: an override this implementation "
                       "does not know is set (byte %zu)",
                       i);
  }
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return ls_fail(LSPEC_E_NOMEM, "policy_new_custom: out of memory");
  if (m != NULL)
    memcpy(&c->m, m, m->size < sizeof c->m ? m->size : sizeof c->m);
  c->m.size = sizeof c->m;
  c->user = user;
  mask = (c->m.get_event_loop ? 1 : 0) | (c->m.set_event_loop ? 2 : 0) |
         (c->m.new_event_loop ? 4 : 0) | (c->m.get_child_watcher ? 8 : 0) |
         (c->m.set_child_watcher ? 16 : 0);

  LS_ENTER(st);
  capsule = PyCapsule_New(c, LS_CAPSULE_NAME, custom_destroy);
  if (capsule == NULL) {
    free(c);
    rc = ls_fail_py();
  } else {
    /* From here the capsule owns c: destroy runs even if this fails. */
    rc = ls_out_handle(
        ls_call_glue("new_custom_policy", "(iOi)", base, capsule, mask),
        (void **)out);
    Py_DECREF(capsule);
  }
  ls_leave(st);
  return rc;
}

/* _loopspec_c.override(capsule, method, self, arg): the C method `method`
 * (0..4 in the order of struct lspec_policy_methods) of the policy `self`. */
PyObject *ls_py_override(PyObject *mod, PyObject *args) {
  PyObject *capsule, *self, *arg, *result = NULL;
  struct custom *c;
  void *self_h, *arg_h = NULL, *out = NULL;
  int method, rc = LSPEC_E_INTERNAL;
  (void)mod;

  if (!PyArg_ParseTuple(args, "OiOO", &capsule, &method, &self, &arg))
    return NULL;
  c = PyCapsule_GetPointer(capsule, LS_CAPSULE_NAME);
  if (c == NULL)
    return NULL;
  self_h = ls_handle_of(self);
  if (self_h == NULL)
    return NULL;
  if (arg != Py_None && (arg_h = ls_handle_of(arg)) == NULL) {
    ls_handle_release_locked(self_h);
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS switch (method) {
  case 0:
    rc = c->m.get_event_loop(c->user, self_h, (lspec_loop **)&out);
    break;
  case 1:
    rc = c->m.set_event_loop(c->user, self_h, arg_h);
    break;
  case 2:
    rc = c->m.new_event_loop(c->user, self_h, (lspec_loop **)&out);
    break;
  case 3:
    rc = c->m.get_child_watcher(c->user, self_h, (lspec_watcher **)&out);
    break;
  case 4:
    rc = c->m.set_child_watcher(c->user, self_h, arg_h);
    break;
  }
  Py_END_ALLOW_THREADS;
  if (rc != LSPEC_OK) {
    if (out != NULL)
      ls_handle_release_locked(out);
    ls_raise_status(rc);
  } else if (out != NULL) {
    result = ls_handle_obj(out);
    Py_INCREF(result);
    ls_handle_release_locked(out); /* the reference the method gave us */
  } else {
    result = Py_None;
    Py_INCREF(result);
  }
  if (arg_h != NULL)
    ls_handle_release_locked(arg_h);
  ls_handle_release_locked(self_h);
  return result;
}

/* glue.super_call(self, name, *arg): the base's method on self. */
static int super_call(lspec_policy *self, const char *name, const void *arg,
                      int has_arg, void **out) {
  PyObject *res;
  int rc;
  if (out != NULL)
    *out = NULL;
  if ((rc = ls_check_receiver(self, LS_POLICY, name)) != LSPEC_OK)
    return rc;
  if (!has_arg && out == NULL)
    return ls_fail(LSPEC_E_VALUE, "policy_super_%s: out is NULL", name);
  LS_ENTER(st);
  if (has_arg)
    res = ls_call_glue("super_call", "(OsO)", ls_handle_obj(self), name,
                       ls_handle_obj_or_none(arg));
  else
    res = ls_call_glue("super_call", "(Os)", ls_handle_obj(self), name);
  if (has_arg) {
    rc = res ? LSPEC_OK : ls_fail_py();
    Py_XDECREF(res);
  } else {
    rc = ls_out_handle(res, out);
  }
  ls_leave(st);
  return rc;
}

int ls_policy_super_get_event_loop(lspec_policy *self, lspec_loop **out) {
  return super_call(self, "get_event_loop", NULL, 0, (void **)out);
}
int ls_policy_super_set_event_loop(lspec_policy *self, lspec_loop *loop) {
  return super_call(self, "set_event_loop", loop, 1, NULL);
}
int ls_policy_super_new_event_loop(lspec_policy *self, lspec_loop **out) {
  return super_call(self, "new_event_loop", NULL, 0, (void **)out);
}
int ls_policy_super_get_child_watcher(lspec_policy *self, lspec_watcher **out) {
  return super_call(self, "get_child_watcher", NULL, 0, (void **)out);
}
int ls_policy_super_set_child_watcher(lspec_policy *self, lspec_watcher *w) {
  return super_call(self, "set_child_watcher", w, 1, NULL);
}
