/* table.c - the adapter's ABI v1 table and its one exported symbol,
 * lspec_impl_v1.  The first call starts the embedded interpreter (in the
 * calling thread, the process's main thread in a test) and fills in what is
 * known only then: the profile (the interpreter's own version), the
 * version text, and the capabilities and watcher kinds of the policy class
 * the run checks (LSPEC_CPYTHON_POLICY, see README.md).
 */
#include "adapter.h"

#include <pthread.h>
#include <stdio.h>

static int profile_of_interpreter; /* LSPEC_PROFILE(3, N), or 0 */
static char version_text[256] = "unknown";

static struct lspec_impl table = {
    .abi_version = LSPEC_ABI_VERSION,
    .size = sizeof(struct lspec_impl),
    .name = "loopspec-cpython",
    .version = version_text,
    .custom_child_watchers = LSPEC_CUSTOM_WATCHERS_SUPPORTED,
    .reserved = 0,
    .set_profile = ls_set_profile,
    .get_profile = ls_get_profile,
    .set_warning_hook = ls_set_warning_hook,
    .last_error = ls_last_error,
    .last_errno = ls_last_errno,
    .get_event_loop_policy = ls_get_event_loop_policy,
    .set_event_loop_policy = ls_set_event_loop_policy,
    .get_event_loop = ls_get_event_loop,
    .get_running_loop = ls_get_running_loop,
    .set_event_loop = ls_set_event_loop,
    .new_event_loop = ls_new_event_loop,
    .get_child_watcher = ls_get_child_watcher,
    .set_child_watcher = ls_set_child_watcher,
    .policy_new_default = ls_policy_new_default,
    .policy_new_windows_selector = ls_policy_new_windows_selector,
    .policy_new_windows_proactor = ls_policy_new_windows_proactor,
    .policy_new_custom = ls_policy_new_custom,
    .policy_get_event_loop = ls_policy_get_event_loop,
    .policy_set_event_loop = ls_policy_set_event_loop,
    .policy_new_event_loop = ls_policy_new_event_loop,
    .policy_get_child_watcher = ls_policy_get_child_watcher,
    .policy_set_child_watcher = ls_policy_set_child_watcher,
    .policy_super_get_event_loop = ls_policy_super_get_event_loop,
    .policy_super_set_event_loop = ls_policy_super_set_event_loop,
    .policy_super_new_event_loop = ls_policy_super_new_event_loop,
    .policy_super_get_child_watcher = ls_policy_super_get_child_watcher,
    .policy_super_set_child_watcher = ls_policy_super_set_child_watcher,
    .policy_retain = ls_policy_retain,
    .policy_release = ls_policy_release,
    .loop_new = ls_loop_new,
    .loop_run_forever = ls_loop_run_forever,
    .loop_run_until = ls_loop_run_until,
    .loop_stop = ls_loop_stop,
    .loop_close = ls_loop_close,
    .loop_is_running = ls_loop_is_running,
    .loop_is_closed = ls_loop_is_closed,
    .loop_time = ls_loop_time,
    .loop_call_soon = ls_loop_call_soon,
    .loop_call_soon_threadsafe = ls_loop_call_soon_threadsafe,
    .loop_call_later = ls_loop_call_later,
    .loop_cancel = ls_loop_cancel,
    .loop_add_reader = ls_loop_add_reader,
    .loop_remove_reader = ls_loop_remove_reader,
    .loop_add_signal_handler = ls_loop_add_signal_handler,
    .loop_remove_signal_handler = ls_loop_remove_signal_handler,
    .loop_subprocess_exec = ls_loop_subprocess_exec,
    .loop_retain = ls_loop_retain,
    .loop_release = ls_loop_release,
    .watcher_new = ls_watcher_new,
    .watcher_kind = ls_watcher_kind,
    .watcher_add_child_handler = ls_watcher_add_child_handler,
    .watcher_remove_child_handler = ls_watcher_remove_child_handler,
    .watcher_attach_loop = ls_watcher_attach_loop,
    .watcher_is_active = ls_watcher_is_active,
    .watcher_close = ls_watcher_close,
    .watcher_enter = ls_watcher_enter,
    .watcher_exit = ls_watcher_exit,
    .watcher_retain = ls_watcher_retain,
    .watcher_release = ls_watcher_release,
};

int ls_profile(void) { return profile_of_interpreter; }

/* One profile only: the interpreter's own version. */
int ls_set_profile(int profile) {
  if (profile != profile_of_interpreter)
    return ls_fail(LSPEC_E_VALUE,
                   "profile %d.%d is not declared: this adapter runs "
                   "CPython %d.%d's asyncio",
                   profile >> 8, profile & 0xff, profile_of_interpreter >> 8,
                   profile_of_interpreter & 0xff);
  return LSPEC_OK;
}

int ls_get_profile(void) { return profile_of_interpreter; }

static void fill_table(void) {
  unsigned major = 0, minor = 0;
  PyObject *info;
  int native = 0, poll = 0;
  uint64_t caps = LSPEC_CAP_POLICIES | LSPEC_CAP_CUSTOM_POLICY |
                  LSPEC_CAP_LOOP | LSPEC_CAP_READERS | LSPEC_CAP_SIGNALS |
                  LSPEC_CAP_CHILD_WATCHERS | LSPEC_CAP_SUBPROCESS;

  /* Py_GetVersion() needs no running interpreter. */
  if (sscanf(Py_GetVersion(), "%u.%u", &major, &minor) == 2 && major == 3 &&
      minor >= 8 && minor <= 12) {
    profile_of_interpreter = LSPEC_PROFILE(3, (int)minor);
    table.profiles = LSPEC_PROFILE_BIT(profile_of_interpreter);
  } else {
    /* Outside what ABI v1 can describe: the checker refuses the table. */
    table.profiles = 0;
  }
  snprintf(version_text, sizeof version_text, "CPython %u.%u (not started)",
           major, minor);
  table.watcher_kinds = LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_THREADED) |
                        LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_MULTILOOP) |
                        LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_SAFE) |
                        LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_FAST) |
                        LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_PIDFD);
  if (ls_start() != 0) {
    snprintf(version_text, sizeof version_text,
             "CPython %u.%u (the interpreter did not start: %s)", major, minor,
             ls_start_error());
    table.capabilities = caps;
    return;
  }
  PyGILState_STATE st = ls_enter();
  info = ls_call_glue("info", "()");
  if (info != NULL && PyTuple_Check(info) && PyTuple_GET_SIZE(info) == 3) {
    const char *text = PyUnicode_AsUTF8(PyTuple_GET_ITEM(info, 0));
    if (text != NULL)
      snprintf(version_text, sizeof version_text, "%s", text);
    native = PyObject_IsTrue(PyTuple_GET_ITEM(info, 1)) == 1;
    poll = PyObject_IsTrue(PyTuple_GET_ITEM(info, 2)) == 1;
  }
  PyErr_Clear();
  Py_XDECREF(info);
  ls_leave(st);
  if (poll)
    caps |= LSPEC_CAP_LOOP_BACKEND_POLL;
  if (native) {
    /* A policy with its own child handling (uvloop): get/set_child_watcher
     * raise NotImplementedError, so a custom watcher is refused. */
    table.watcher_kinds |= LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_NATIVE);
    table.custom_child_watchers = LSPEC_CUSTOM_WATCHERS_PROHIBITED;
  }
  table.capabilities = caps;
}

__attribute__((visibility("default"))) const struct lspec_impl *
lspec_impl_v1(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, fill_table);
  return &table;
}
