/* impl.c - the reference's ABI table and its process-wide services: the
 * profile, the thread-local last error, and the warnings hook.
 *
 * The table is the only thing the reference exports (lspec_impl_v1); every
 * other symbol of the library is hidden.  Entries point straight at the
 * lspec__* functions of policy.c, loop*.c and watcher.c.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef LSPEC_REFERENCE_VERSION
#define LSPEC_REFERENCE_VERSION "0.0.0"
#endif

/* --- last error ---------------------------------------------------------- */

/* Each thread's last failure: a message and, for LSPEC_E_OS, its errno.  A
 * fixed buffer: recording an error never allocates, so it works on the
 * out-of-memory path too. */
static _Thread_local char last_message[512];
static _Thread_local int last_err;

static int vfail(int status, int err, const char *fmt, va_list ap) {
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  last_err = err;
  return status;
}

int lspec__fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(status, 0, fmt, ap);
  va_end(ap);
  return status;
}

int lspec__fail_errno(int err, const char *fmt, ...) {
  va_list ap;
  size_t used;
  va_start(ap, fmt);
  vfail(LSPEC_E_OS, err, fmt, ap);
  va_end(ap);
  /* Python spells OSError as "[Errno N] text"; we append the errno text. */
  used = strlen(last_message);
  snprintf(last_message + used, sizeof last_message - used, ": [Errno %d] %s",
           err, strerror(err));
  return LSPEC_E_OS;
}

int lspec__fail_nomem(const char *what) {
  return lspec__fail(LSPEC_E_NOMEM, "out of memory while %s", what);
}

static const char *last_error(void) { return last_message; }

static int last_errno_value(void) { return last_err; }

/* --- warnings hook --------------------------------------------------------- */

/* The hook and its argument change together, so a mutex guards the pair.  It
 * is held only to copy them: the hook itself runs unlocked, so it may call
 * back into the implementation. */
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static lspec_warning_hook hook_fn;
static void *hook_user;

static void set_warning_hook(lspec_warning_hook hook, void *user) {
  pthread_mutex_lock(&hook_lock);
  hook_fn = hook;
  hook_user = user;
  pthread_mutex_unlock(&hook_lock);
}

/* Per thread and category: how many suppressions are in force. */
static _Thread_local unsigned char suppressed[8];

void lspec__warn_suppress(int category, int on) {
  if (category < 0 || category >= (int)sizeof suppressed)
    return;
  if (on)
    suppressed[category]++;
  else if (suppressed[category] > 0)
    suppressed[category]--;
}

static _Thread_local struct lspec__warn_buf *deferring;

void lspec__warn_defer_begin(struct lspec__warn_buf *buf) {
  buf->n = 0;
  buf->dropped = 0;
  deferring = buf;
}

void lspec__warn_defer_end(struct lspec__warn_buf *buf) {
  int i, n = buf->n, dropped = buf->dropped;

  deferring = NULL;
  for (i = 0; i < n; i++)
    lspec__warn(buf->category[i], "%s", buf->text[i]);
  if (dropped > 0)
    lspec__warn(LSPEC_WARN_LOG_WARNING,
                "%d more warning(s) from the same pass were not kept",
                dropped);
  buf->n = buf->dropped = 0;
}

void lspec__warn(int category, const char *fmt, ...) {
  char text[512];
  lspec_warning_hook fn;
  void *user;
  va_list ap;

  if (category >= 0 && category < (int)sizeof suppressed &&
      suppressed[category] > 0)
    return;
  if (deferring != NULL) {
    struct lspec__warn_buf *b = deferring;
    if (b->n < LSPEC__WARN_DEFER_MAX) {
      va_start(ap, fmt);
      vsnprintf(b->text[b->n], sizeof b->text[0], fmt, ap);
      va_end(ap);
      b->category[b->n++] = category;
    } else {
      b->dropped++;
    }
    return;
  }
  pthread_mutex_lock(&hook_lock);
  fn = hook_fn;
  user = hook_user;
  pthread_mutex_unlock(&hook_lock);
  if (fn == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  fn(user, category, text);
}

/* --- profile ---------------------------------------------------------------- */

/* The profile is chosen before first use and then frozen: policies and loops
 * made under one profile must not change behaviour half way.  0 = not chosen
 * yet (3.12 is used then). */
static atomic_int profile_value;
static atomic_int profile_frozen;

static int valid_profile(int profile) {
  return profile >= LSPEC_PROFILE_3_8 && profile <= LSPEC_PROFILE_3_12;
}

static int set_profile(int profile) {
  int current;
  if (!valid_profile(profile))
    return lspec__fail(LSPEC_E_VALUE,
                       "unsupported profile 0x%x: the reference emulates "
                       "3.8 to 3.12",
                       (unsigned)profile);
  if (atomic_load(&profile_frozen)) {
    current = atomic_load(&profile_value);
    if (current == profile)
      return LSPEC_OK;
    return lspec__fail(LSPEC_E_RUNTIME,
                       "the profile is already in use (3.%d); it can only "
                       "be chosen before first use",
                       current & 0xff);
  }
  atomic_store(&profile_value, profile);
  return LSPEC_OK;
}

int lspec__profile(void) {
  int expected = 0;
  /* First use picks the newest profile if nobody chose one. */
  atomic_compare_exchange_strong(&profile_value, &expected, LSPEC_PROFILE_3_12);
  atomic_store(&profile_frozen, 1);
  return atomic_load(&profile_value);
}

static int get_profile(void) {
  int p = atomic_load(&profile_value);
  return p ? p : LSPEC_PROFILE_3_12;
}

/* --- threads -------------------------------------------------------------- */

int lspec__is_main_thread(void) {
  /* The initial thread's id equals the process id; this stays true after a
   * fork from the main thread and false after a fork from another thread,
   * as CPython 3.9+ decides (threading.main_thread() is reset in the child
   * to the forking thread only in 3.8's isinstance test). */
  return (pid_t)syscall(SYS_gettid) == getpid();
}

/* --- the table --------------------------------------------------------------- */

static const struct lspec_impl reference_table = {
    .abi_version = LSPEC_ABI_VERSION,
    .size = LSPEC_IMPL_V1_SIZE,
    .name = "loopspec-reference",
    .version = LSPEC_REFERENCE_VERSION,
    .capabilities = LSPEC_CAP_POLICIES | LSPEC_CAP_CUSTOM_POLICY |
                    LSPEC_CAP_LOOP | LSPEC_CAP_LOOP_BACKEND_POLL |
                    LSPEC_CAP_READERS | LSPEC_CAP_SIGNALS |
                    LSPEC_CAP_CHILD_WATCHERS | LSPEC_CAP_SUBPROCESS |
                    LSPEC_CAP_THREAD_CHECKS,
    .custom_child_watchers = LSPEC_CUSTOM_WATCHERS_SUPPORTED,
    .profiles = LSPEC_PROFILES_ALL,
    /* asyncio's five watchers; Pidfd is absent in the 3.8 profile, as the
     * class is in CPython 3.8 (watcher_new answers AttributeError there). */
    .watcher_kinds = LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_THREADED) |
                     LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_MULTILOOP) |
                     LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_SAFE) |
                     LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_FAST) |
                     LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_PIDFD),
    .reserved = 0,

    .set_profile = set_profile,
    .get_profile = get_profile,
    .set_warning_hook = set_warning_hook,
    .last_error = last_error,
    .last_errno = last_errno_value,

    .get_event_loop_policy = lspec__get_event_loop_policy,
    .set_event_loop_policy = lspec__set_event_loop_policy,
    .get_event_loop = lspec__get_event_loop,
    .get_running_loop = lspec__get_running_loop,
    .set_event_loop = lspec__set_event_loop,
    .new_event_loop = lspec__new_event_loop,
    .get_child_watcher = lspec__get_child_watcher,
    .set_child_watcher = lspec__set_child_watcher,

    .policy_new_default = lspec__policy_new_default,
    .policy_new_windows_selector = lspec__policy_new_windows_selector,
    .policy_new_windows_proactor = lspec__policy_new_windows_proactor,
    .policy_new_custom = lspec__policy_new_custom,
    .policy_get_event_loop = lspec__policy_get_event_loop,
    .policy_set_event_loop = lspec__policy_set_event_loop,
    .policy_new_event_loop = lspec__policy_new_event_loop,
    .policy_get_child_watcher = lspec__policy_get_child_watcher,
    .policy_set_child_watcher = lspec__policy_set_child_watcher,
    .policy_super_get_event_loop = lspec__policy_super_get_event_loop,
    .policy_super_set_event_loop = lspec__policy_super_set_event_loop,
    .policy_super_new_event_loop = lspec__policy_super_new_event_loop,
    .policy_super_get_child_watcher = lspec__policy_super_get_child_watcher,
    .policy_super_set_child_watcher = lspec__policy_super_set_child_watcher,
    .policy_retain = lspec__policy_retain,
    .policy_release = lspec__policy_release,

    .loop_new = lspec__loop_new,
    .loop_run_forever = lspec__loop_run_forever,
    .loop_run_until = lspec__loop_run_until,
    .loop_stop = lspec__loop_stop,
    .loop_close = lspec__loop_close,
    .loop_is_running = lspec__loop_is_running,
    .loop_is_closed = lspec__loop_is_closed,
    .loop_time = lspec__loop_time,
    .loop_call_soon = lspec__loop_call_soon,
    .loop_call_soon_threadsafe = lspec__loop_call_soon_threadsafe,
    .loop_call_later = lspec__loop_call_later,
    .loop_cancel = lspec__loop_cancel,
    .loop_add_reader = lspec__loop_add_reader,
    .loop_remove_reader = lspec__loop_remove_reader,
    .loop_add_signal_handler = lspec__loop_add_signal_handler,
    .loop_remove_signal_handler = lspec__loop_remove_signal_handler,
    .loop_subprocess_exec = lspec__loop_subprocess_exec,
    .loop_retain = lspec__loop_retain,
    .loop_release = lspec__loop_release,

    .watcher_new = lspec__watcher_new,
    .watcher_kind = lspec__watcher_kind,
    .watcher_add_child_handler = lspec__watcher_add_child_handler,
    .watcher_remove_child_handler = lspec__watcher_remove_child_handler,
    .watcher_attach_loop = lspec__watcher_attach_loop,
    .watcher_is_active = lspec__watcher_is_active,
    .watcher_close = lspec__watcher_close,
    .watcher_enter = lspec__watcher_enter,
    .watcher_exit = lspec__watcher_exit,
    .watcher_retain = lspec__watcher_retain,
    .watcher_release = lspec__watcher_release,
};

__attribute__((visibility("default"))) const struct lspec_impl *
lspec_impl_v1(void) {
  return &reference_table;
}
