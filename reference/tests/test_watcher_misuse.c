/* test_watcher_misuse.c - bad input and misuse, for every watcher kind and
 * both profile families (3.9-3.11, 3.12): pid 0 or negative, a NULL
 * callback, attaching to a closed loop, closing twice, and the entries
 * after close.  Each gives its documented status and leaves nothing behind
 * (lt_run's checks: no descriptor, thread or zombie).
 */
#include "watcher_helpers.h"

TestSuite(watcher_misuse, .timeout = 60);

static const int misuse_kinds[] = {
    LSPEC_WATCHER_THREADED, LSPEC_WATCHER_MULTILOOP, LSPEC_WATCHER_SAFE,
    LSPEC_WATCHER_FAST, LSPEC_WATCHER_PIDFD};
#define NKINDS (int)(sizeof misuse_kinds / sizeof misuse_kinds[0])

/* A watcher of `kind`, or NULL when the platform lacks it (Pidfd without
 * pidfd_open: UNAVAILABLE is its documented answer). */
static lspec_watcher *misuse_new(int kind) {
  lspec_watcher *w = NULL;
  int rc = I->watcher_new(kind, &w);
  if (rc == LSPEC_E_UNAVAILABLE && kind == LSPEC_WATCHER_PIDFD)
    return NULL;
  cr_assert(eq(int, rc, LSPEC_OK), "watcher_new(%d): %s", kind,
            I->last_error());
  return w;
}

static void bad_arguments(int profile) {
  cr_assert(eq(int, I->set_profile(profile), LSPEC_OK));
  for (int i = 0; i < NKINDS; i++) {
    int kind = misuse_kinds[i];
    lspec_watcher *w = misuse_new(kind);
    if (w == NULL)
      continue;
    cr_assert(eq(int, I->watcher_add_child_handler(w, 0, wt_rec_cb, NULL),
                 LSPEC_E_VALUE), "kind %d: pid 0", kind);
    cr_assert(eq(int, I->watcher_add_child_handler(w, -5, wt_rec_cb, NULL),
                 LSPEC_E_VALUE), "kind %d: pid -5", kind);
    cr_assert(eq(int, I->watcher_add_child_handler(w, getpid(), NULL, NULL),
                 LSPEC_E_TYPE), "kind %d: NULL callback", kind);
    cr_assert(eq(int, I->watcher_enter(w, NULL), LSPEC_E_VALUE),
              "kind %d: enter with no out", kind);
    cr_assert(eq(int, I->watcher_kind(w), kind), "kind %d survives", kind);
    wt_free(w);
  }
}

ONE_TEST(watcher_misuse, bad_arguments_3_11) {
  (void)backend;
  bad_arguments(LSPEC_PROFILE_3_11);
}

ONE_TEST(watcher_misuse, bad_arguments_3_12) {
  (void)backend;
  bad_arguments(LSPEC_PROFILE_3_12);
}

/* Attaching to a closed loop: Safe and Fast install the loop's SIGCHLD
 * handler, which a closed loop refuses (CPython's add_signal_handler checks
 * that first: RuntimeError "Event loop is closed"), and stay unattached;
 * the others only note the loop (Pidfd 3.9-3.11), or ignore it. */
static void attach_closed(int backend, int profile) {
  cr_assert(eq(int, I->set_profile(profile), LSPEC_OK));
  for (int i = 0; i < NKINDS; i++) {
    int kind = misuse_kinds[i];
    int sigchld = kind == LSPEC_WATCHER_SAFE || kind == LSPEC_WATCHER_FAST;
    lspec_loop *loop = lt_new_loop(backend);
    lspec_watcher *w = misuse_new(kind);
    struct sigaction before, after;
    if (w == NULL) {
      lt_free_loop(loop);
      continue;
    }
    cr_assert(eq(int, I->loop_close(loop), LSPEC_OK));
    sigaction(SIGCHLD, NULL, &before);
    if (sigchld) {
      cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_E_RUNTIME),
                "kind %d: attach to a closed loop", kind);
      LT_ASSERT_MSG("Event loop is closed");
      cr_assert(eq(int, I->watcher_is_active(w), 0), "kind %d: inactive",
                kind);
    } else {
      cr_assert(eq(int, I->watcher_attach_loop(w, loop), LSPEC_OK),
                "kind %d: attach to a closed loop: %s", kind,
                I->last_error());
    }
    if (kind != LSPEC_WATCHER_MULTILOOP) { /* MultiLoop installs its own */
      sigaction(SIGCHLD, NULL, &after);
      cr_assert(before.sa_handler == after.sa_handler,
                "kind %d: SIGCHLD's disposition unchanged", kind);
    }
    wt_free(w);
    I->loop_release(loop);
  }
}

LOOP_TEST(watcher_misuse, attach_to_a_closed_loop_3_11) {
  attach_closed(backend, LSPEC_PROFILE_3_11);
}

LOOP_TEST(watcher_misuse, attach_to_a_closed_loop_3_12) {
  attach_closed(backend, LSPEC_PROFILE_3_12);
}

/* After close: closing again succeeds and does nothing; bad arguments are
 * still refused the same way; remove_child_handler finds nothing; the
 * kinds that need a loop or a handler are inactive; the SIGCHLD
 * disposition is back to what it was. */
static void after_close(int profile) {
  struct sigaction before, after;
  cr_assert(eq(int, I->set_profile(profile), LSPEC_OK));
  sigaction(SIGCHLD, NULL, &before);
  for (int i = 0; i < NKINDS; i++) {
    int kind = misuse_kinds[i];
    lspec_watcher *w = misuse_new(kind);
    if (w == NULL)
      continue;
    cr_assert(eq(int, I->watcher_attach_loop(w, NULL), LSPEC_OK),
              "kind %d: attach(NULL): %s", kind, I->last_error());
    cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "kind %d: close", kind);
    cr_assert(eq(int, I->watcher_close(w), LSPEC_OK), "kind %d: close again",
              kind);
    cr_assert(eq(int, I->watcher_add_child_handler(w, 0, wt_rec_cb, NULL),
                 LSPEC_E_VALUE), "kind %d: pid 0 after close", kind);
    cr_assert(eq(int, I->watcher_remove_child_handler(w, 12345), 0),
              "kind %d: remove after close finds nothing", kind);
    /* Threaded, and 3.12's Pidfd, are always active (CW-ACTIVE-004). */
    cr_assert(eq(int, I->watcher_is_active(w) == 1,
                 kind == LSPEC_WATCHER_THREADED ||
                     (kind == LSPEC_WATCHER_PIDFD &&
                      profile >= LSPEC_PROFILE_3_12)),
              "kind %d: is_active after close", kind);
    sigaction(SIGCHLD, NULL, &after);
    cr_assert(before.sa_handler == after.sa_handler,
              "kind %d: SIGCHLD's disposition restored by close", kind);
    I->watcher_release(w);
  }
}

ONE_TEST(watcher_misuse, after_close_3_11) {
  (void)backend;
  after_close(LSPEC_PROFILE_3_11);
}

ONE_TEST(watcher_misuse, after_close_3_12) {
  (void)backend;
  after_close(LSPEC_PROFILE_3_12);
}
