/* policy.c - the process-wide policy, the module-level functions and the
 * policy objects' methods, each one call of asyncio's own function or method
 * (asyncio.get_event_loop_policy(), policy.get_event_loop(), ...): whatever
 * CPython raises is the status.  Windows policies do not exist on Unix.
 */
#include "adapter.h"

/* Calls asyncio.<name>(*args) (a new reference, or NULL with an exception). */
static PyObject *asyncio_call(const char *name, PyObject *arg) {
  PyObject *mod = PyImport_ImportModule("asyncio"), *res;
  if (mod == NULL)
    return NULL;
  res = arg ? PyObject_CallMethod(mod, name, "O", arg)
            : PyObject_CallMethod(mod, name, NULL);
  Py_DECREF(mod);
  return res;
}

/* An entry that hands out a handle from asyncio.<name>(). */
static int asyncio_getter(const char *name, void **out) {
  int rc;
  if (out == NULL)
    return ls_fail(LSPEC_E_VALUE, "%s: out is NULL", name);
  *out = NULL;
  LS_ENTER(st);
  rc = ls_out_handle(asyncio_call(name, NULL), out);
  ls_leave(st);
  return rc;
}

/* An entry that passes one handle (or None) to asyncio.<name>(x). */
static int asyncio_setter(const char *name, const void *h) {
  PyObject *res;
  int rc = LSPEC_OK;
  LS_ENTER(st);
  res = asyncio_call(name, ls_handle_obj_or_none(h));
  if (res == NULL)
    rc = ls_fail_py();
  Py_XDECREF(res);
  ls_leave(st);
  return rc;
}

int ls_get_event_loop_policy(lspec_policy **out) {
  return asyncio_getter("get_event_loop_policy", (void **)out);
}
int ls_set_event_loop_policy(lspec_policy *policy) {
  return asyncio_setter("set_event_loop_policy", policy);
}
int ls_get_event_loop(lspec_loop **out) {
  return asyncio_getter("get_event_loop", (void **)out);
}
int ls_get_running_loop(lspec_loop **out) {
  return asyncio_getter("get_running_loop", (void **)out);
}
int ls_set_event_loop(lspec_loop *loop) {
  return asyncio_setter("set_event_loop", loop);
}
int ls_new_event_loop(lspec_loop **out) {
  return asyncio_getter("new_event_loop", (void **)out);
}
int ls_get_child_watcher(lspec_watcher **out) {
  return asyncio_getter("get_child_watcher", (void **)out);
}
int ls_set_child_watcher(lspec_watcher *watcher) {
  return asyncio_setter("set_child_watcher", watcher);
}

int ls_policy_new_default(lspec_policy **out) {
  int rc;
  if (out == NULL)
    return ls_fail(LSPEC_E_VALUE, "policy_new_default: out is NULL");
  *out = NULL;
  LS_ENTER(st);
  rc = ls_out_handle(ls_call_glue("new_default_policy", "()"), (void **)out);
  ls_leave(st);
  return rc;
}

static int windows_only(const char *cls, lspec_policy **out) {
  if (out != NULL)
    *out = NULL;
  return ls_fail(LSPEC_E_UNAVAILABLE,
                 "asyncio.%s exists on Windows only (not in this "
                 "interpreter's asyncio)",
                 cls);
}
int ls_policy_new_windows_selector(lspec_policy **out) {
  return windows_only("WindowsSelectorEventLoopPolicy", out);
}
int ls_policy_new_windows_proactor(lspec_policy **out) {
  return windows_only("WindowsProactorEventLoopPolicy", out);
}

/* policy.<name>(*arg) with p checked to be a policy. */
static int policy_method(lspec_policy *p, const char *name, const void *arg,
                         int has_arg, void **out) {
  PyObject *res;
  int rc;
  if (out != NULL)
    *out = NULL;
  if ((rc = ls_check_receiver(p, LS_POLICY, name)) != LSPEC_OK)
    return rc;
  if (!has_arg && out == NULL)
    return ls_fail(LSPEC_E_VALUE, "%s: out is NULL", name);
  LS_ENTER(st);
  if (has_arg)
    res = PyObject_CallMethod(ls_handle_obj(p), name, "O",
                              ls_handle_obj_or_none(arg));
  else
    res = PyObject_CallMethod(ls_handle_obj(p), name, NULL);
  if (has_arg) {
    rc = res ? LSPEC_OK : ls_fail_py();
    Py_XDECREF(res);
  } else {
    rc = ls_out_handle(res, out);
  }
  ls_leave(st);
  return rc;
}

int ls_policy_get_event_loop(lspec_policy *p, lspec_loop **out) {
  return policy_method(p, "get_event_loop", NULL, 0, (void **)out);
}
int ls_policy_set_event_loop(lspec_policy *p, lspec_loop *loop) {
  return policy_method(p, "set_event_loop", loop, 1, NULL);
}
int ls_policy_new_event_loop(lspec_policy *p, lspec_loop **out) {
  return policy_method(p, "new_event_loop", NULL, 0, (void **)out);
}
int ls_policy_get_child_watcher(lspec_policy *p, lspec_watcher **out) {
  return policy_method(p, "get_child_watcher", NULL, 0, (void **)out);
}
int ls_policy_set_child_watcher(lspec_policy *p, lspec_watcher *w) {
  return policy_method(p, "set_child_watcher", w, 1, NULL);
}

void ls_policy_retain(lspec_policy *p) { ls_retain_kind(p, LS_POLICY); }
void ls_policy_release(lspec_policy *p) { ls_release_kind(p, LS_POLICY); }
