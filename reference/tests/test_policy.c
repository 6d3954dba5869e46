/* test_policy.c - unit tests of the reference's policies, through its ABI
 * table: the process-wide policy, the default policy's per-thread context
 * (with real threads), custom policies and super calls, the Windows policies,
 * the module-level functions, profiles, and every bad argument.
 *
 * Each Criterion test runs in a fresh process, so the process-wide policy
 * and the profile start unset in every test.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <loopspec/abi.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const struct lspec_impl *impl;

/* --- warnings recorded by the hook ------------------------------------- */

static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static int warn_count[8];
static char warn_last[8][256];

static void record_warning(void *user, int category, const char *text) {
  (void)user;
  pthread_mutex_lock(&warn_lock);
  if (category >= 0 && category < 8) {
    warn_count[category]++;
    snprintf(warn_last[category], sizeof warn_last[category], "%s", text);
  }
  pthread_mutex_unlock(&warn_lock);
}

static int warnings(int category) {
  int n;
  pthread_mutex_lock(&warn_lock);
  n = warn_count[category];
  pthread_mutex_unlock(&warn_lock);
  return n;
}

static void setup(void) {
  impl = lspec_impl_v1();
  impl->set_warning_hook(record_warning, NULL);
}

/* Sets the profile, which every test does before anything else. */
static void profile(int p) {
  cr_assert(eq(int, impl->set_profile(p), LSPEC_OK), "set_profile: %s",
            impl->last_error());
}

TestSuite(policy, .init = setup, .timeout = 20);

/* --- the process-wide policy --------------------------------------------- */

Test(policy, global_policy_is_one_object_until_reset) {
  lspec_policy *a, *b, *c;
  cr_assert(eq(int, impl->get_event_loop_policy(&a), LSPEC_OK), "get 1");
  cr_assert(eq(int, impl->get_event_loop_policy(&b), LSPEC_OK), "get 2");
  cr_assert(eq(ptr, a, b), "two gets must return the same policy");
  cr_assert(eq(int, impl->set_event_loop_policy(NULL), LSPEC_OK), "set NULL");
  cr_assert(eq(int, impl->get_event_loop_policy(&c), LSPEC_OK), "get 3");
  cr_assert(ne(ptr, a, c), "NULL must restore a fresh default policy");
  impl->policy_release(a);
  impl->policy_release(b);
  impl->policy_release(c);
}

Test(policy, set_policy_stores_it_as_is) {
  lspec_policy *mine, *got;
  cr_assert(eq(int, impl->policy_new_default(&mine), LSPEC_OK), "new default");
  cr_assert(eq(int, impl->set_event_loop_policy(mine), LSPEC_OK), "set");
  cr_assert(eq(int, impl->get_event_loop_policy(&got), LSPEC_OK), "get");
  cr_assert(eq(ptr, mine, got), "the set policy must come back");
  impl->policy_release(got);
  impl->policy_release(mine); /* the global still holds it */
  cr_assert(eq(int, impl->get_event_loop_policy(&got), LSPEC_OK), "get again");
  cr_assert(eq(ptr, mine, got), "the global keeps its own reference");
  impl->policy_release(got);
  cr_assert(eq(int, impl->set_event_loop_policy(NULL), LSPEC_OK), "reset");
}

static void bad_policy_argument(int p, int want) {
  lspec_loop *loop;
  profile(p);
  cr_assert(eq(int, impl->new_event_loop(&loop), LSPEC_OK), "new loop");
  cr_assert(eq(int, impl->set_event_loop_policy((lspec_policy *)loop), want),
            "a loop is not a policy: %s", impl->last_error());
  cr_assert(eq(int, impl->loop_close(loop), LSPEC_OK), "close");
  impl->loop_release(loop);
}

Test(policy, bad_policy_is_assertion_error_before_3_11) {
  bad_policy_argument(LSPEC_PROFILE_3_10, LSPEC_E_ASSERTION);
}

Test(policy, bad_policy_is_type_error_from_3_11) {
  bad_policy_argument(LSPEC_PROFILE_3_11, LSPEC_E_TYPE);
  cr_assert(not(eq(ptr, strstr(impl->last_error(), "AbstractEventLoopPolicy"),
                   NULL)),
            "message names the expected class: %s", impl->last_error());
}

/* --- profiles --------------------------------------------------------------- */

Test(policy, profile_is_frozen_by_first_use) {
  lspec_policy *p;
  cr_assert(eq(int, impl->set_profile(LSPEC_PROFILE(3, 7)), LSPEC_E_VALUE),
            "3.7 is not a profile");
  cr_assert(eq(int, impl->set_profile(LSPEC_PROFILE(3, 13)), LSPEC_E_VALUE),
            "3.13 is not a profile");
  profile(LSPEC_PROFILE_3_9);
  profile(LSPEC_PROFILE_3_10); /* still free to change before first use */
  cr_assert(eq(int, impl->get_event_loop_policy(&p), LSPEC_OK), "first use");
  cr_assert(eq(int, impl->set_profile(LSPEC_PROFILE_3_12), LSPEC_E_RUNTIME),
            "a profile in use cannot change");
  cr_assert(eq(int, impl->set_profile(LSPEC_PROFILE_3_10), LSPEC_OK),
            "setting the same profile again is harmless");
  cr_assert(eq(int, impl->get_profile(), LSPEC_PROFILE_3_10), "get_profile");
  impl->policy_release(p);
}

/* --- the default policy in the main thread -------------------------------- */

static void implicit_creation(int p, int want_warnings) {
  lspec_loop *a, *b;
  profile(p);
  cr_assert(eq(int, impl->get_event_loop(&a), LSPEC_OK), "implicit: %s",
            impl->last_error());
  cr_assert(eq(int, impl->get_event_loop(&b), LSPEC_OK), "second get");
  cr_assert(eq(ptr, a, b), "the implicit loop is kept as current");
  cr_assert(eq(int, warnings(LSPEC_WARN_DEPRECATION), want_warnings),
            "DeprecationWarnings on implicit creation");
  cr_assert(eq(int, impl->loop_close(a), LSPEC_OK), "close");
  impl->loop_release(a);
  impl->loop_release(b);
}

Test(policy, main_thread_creates_loop_implicitly_3_11) {
  implicit_creation(LSPEC_PROFILE_3_11, 0);
}

Test(policy, main_thread_creation_warns_once_in_3_12) {
  implicit_creation(LSPEC_PROFILE_3_12, 1);
  cr_assert(eq(str, warn_last[LSPEC_WARN_DEPRECATION],
               "There is no current event loop"),
            "the 3.12 warning text");
}

Test(policy, no_implicit_loop_after_set_event_loop_none) {
  lspec_loop *l;
  cr_assert(eq(int, impl->set_event_loop(NULL), LSPEC_OK), "set None");
  cr_assert(eq(int, impl->get_event_loop(&l), LSPEC_E_RUNTIME),
            "no implicit creation once set_event_loop was called");
  cr_assert(eq(ptr, l, NULL), "out is NULL on failure");
  cr_assert(not(eq(ptr, strstr(impl->last_error(), "'MainThread'"), NULL)),
            "message names the thread: %s", impl->last_error());
  cr_assert(eq(int, warnings(LSPEC_WARN_DEPRECATION), 0), "no warning");
}

Test(policy, failed_set_event_loop_still_disables_creation) {
  lspec_policy *p;
  lspec_loop *l;
  profile(LSPEC_PROFILE_3_11);
  cr_assert(eq(int, impl->get_event_loop_policy(&p), LSPEC_OK), "policy");
  cr_assert(eq(int, impl->set_event_loop((lspec_loop *)p), LSPEC_E_TYPE),
            "a policy is not a loop");
  cr_assert(eq(int, impl->get_event_loop(&l), LSPEC_E_RUNTIME),
            "_set_called was set before the argument check");
  impl->policy_release(p);
}

Test(policy, bad_loop_is_assertion_error_in_3_8) {
  lspec_policy *p;
  profile(LSPEC_PROFILE_3_8);
  cr_assert(eq(int, impl->get_event_loop_policy(&p), LSPEC_OK), "policy");
  cr_assert(eq(int, impl->set_event_loop((lspec_loop *)p), LSPEC_E_ASSERTION),
            "3.8 asserts");
  impl->policy_release(p);
}

Test(policy, set_then_get_returns_the_loop_even_closed) {
  lspec_loop *mine, *got;
  cr_assert(eq(int, impl->new_event_loop(&mine), LSPEC_OK), "new");
  cr_assert(eq(int, impl->set_event_loop(mine), LSPEC_OK), "set");
  cr_assert(eq(int, impl->loop_close(mine), LSPEC_OK), "close");
  cr_assert(eq(int, impl->get_event_loop(&got), LSPEC_OK), "get");
  cr_assert(eq(ptr, got, mine), "a closed current loop is not replaced");
  impl->loop_release(got);
  impl->loop_release(mine);
  cr_assert(eq(int, impl->set_event_loop(NULL), LSPEC_OK), "unset");
}

Test(policy, new_event_loop_is_new_and_not_current) {
  lspec_loop *a, *b, *cur;
  cr_assert(eq(int, impl->set_event_loop(NULL), LSPEC_OK), "no current");
  cr_assert(eq(int, impl->new_event_loop(&a), LSPEC_OK), "new a");
  cr_assert(eq(int, impl->new_event_loop(&b), LSPEC_OK), "new b");
  cr_assert(ne(ptr, a, b), "every call makes a new loop");
  cr_assert(eq(int, impl->get_event_loop(&cur), LSPEC_E_RUNTIME),
            "new_event_loop does not set the loop as current");
  impl->loop_close(a);
  impl->loop_close(b);
  impl->loop_release(a);
  impl->loop_release(b);
}

/* --- other threads ----------------------------------------------------------- */

struct thread_case {
  lspec_loop *main_loop; /* the main thread's loop, to compare with */
  int get_status;        /* get_event_loop before set */
  int same_as_main;      /* the thread saw the main thread's loop */
  int set_status;        /* set_event_loop(own) */
  int round_trip;        /* get after set returned own */
  char message[256];
};

static void *thread_body(void *arg) {
  struct thread_case *tc = arg;
  lspec_loop *got = NULL, *own = NULL;
  tc->get_status = impl->get_event_loop(&got);
  snprintf(tc->message, sizeof tc->message, "%s", impl->last_error());
  tc->same_as_main = got != NULL && got == tc->main_loop;
  if (got)
    impl->loop_release(got);
  if (impl->new_event_loop(&own) != LSPEC_OK)
    return NULL;
  tc->set_status = impl->set_event_loop(own);
  if (impl->get_event_loop(&got) == LSPEC_OK) {
    tc->round_trip = got == own;
    impl->loop_release(got);
  }
  impl->loop_close(own);
  impl->loop_release(own); /* the context's reference goes at thread exit */
  return NULL;
}

Test(policy, other_threads_have_their_own_context) {
  struct thread_case tc;
  pthread_t t;
  lspec_loop *after;
  memset(&tc, 0, sizeof tc);
  cr_assert(eq(int, impl->get_event_loop(&tc.main_loop), LSPEC_OK), "main");
  cr_assert(eq(int, pthread_create(&t, NULL, thread_body, &tc), 0), "thread");
  pthread_join(t, NULL);
  cr_assert(eq(int, tc.get_status, LSPEC_E_RUNTIME),
            "no implicit loop in a non-main thread");
  cr_assert(eq(int, tc.same_as_main, 0), "the main loop is not shared");
  cr_assert(eq(ptr, strstr(tc.message, "MainThread"), NULL),
            "the message names the worker thread, not the main one: %s",
            tc.message);
  cr_assert(eq(int, tc.set_status, LSPEC_OK), "set in the thread");
  cr_assert(eq(int, tc.round_trip, 1), "set/get round trip in the thread");
  cr_assert(eq(int, impl->get_event_loop(&after), LSPEC_OK), "main again");
  cr_assert(eq(ptr, after, tc.main_loop), "the main context is unchanged");
  impl->loop_close(after);
  impl->loop_release(after);
  impl->loop_release(tc.main_loop);
}

/* Many threads get and set the process-wide policy at once: one object at a
 * time, no crash, no leak (TSan and valgrind check the rest). */
static void *policy_churn(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 200; i++) {
    lspec_policy *p = NULL;
    if (impl->get_event_loop_policy(&p) == LSPEC_OK)
      impl->policy_release(p);
    if (i % 50 == 0)
      impl->set_event_loop_policy(NULL);
  }
  return NULL;
}

Test(policy, global_policy_is_thread_safe) {
  pthread_t t[4];
  int i;
  for (i = 0; i < 4; i++)
    cr_assert(eq(int, pthread_create(&t[i], NULL, policy_churn, NULL), 0),
              "thread");
  for (i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  cr_assert(eq(int, impl->set_event_loop_policy(NULL), LSPEC_OK), "reset");
}

/* --- the running loop wins ---------------------------------------------------- */

struct running_case {
  lspec_loop *loop;
  int get_status, running_status, done;
  lspec_loop *got, *running;
};

static void inside(void *arg) {
  struct running_case *rc = arg;
  rc->get_status = impl->get_event_loop(&rc->got);
  rc->running_status = impl->get_running_loop(&rc->running);
  rc->done = 1;
}

static int is_done(void *arg) { return ((struct running_case *)arg)->done; }

static int refuse(void *user, lspec_policy *self, lspec_loop **out) {
  (void)user, (void)self, (void)out;
  return LSPEC_E_VALUE; /* a custom policy's own failure */
}

Test(policy, get_event_loop_returns_the_running_loop) {
  struct running_case rc;
  static const struct lspec_policy_methods m = {
      .size = sizeof m, .get_event_loop = refuse};
  lspec_policy *p;
  lspec_loop *l;
  memset(&rc, 0, sizeof rc);
  cr_assert(eq(int, impl->policy_new_custom(LSPEC_POLICY_BASE_DEFAULT, &m, NULL,
                                         &p),
               LSPEC_OK),
            "custom");
  cr_assert(eq(int, impl->set_event_loop_policy(p), LSPEC_OK), "install");
  cr_assert(eq(int, impl->get_event_loop(&l), LSPEC_E_VALUE),
            "outside a running loop the policy's error propagates");
  cr_assert(eq(int, impl->get_running_loop(&l), LSPEC_E_RUNTIME),
            "no running loop");
  cr_assert(eq(int, impl->loop_new(LSPEC_BACKEND_DEFAULT, &rc.loop), LSPEC_OK),
            "loop");
  cr_assert(eq(int, impl->loop_call_soon(rc.loop, inside, &rc, NULL), LSPEC_OK),
            "soon");
  cr_assert(eq(int, impl->loop_run_until(rc.loop, is_done, &rc, 10.0), LSPEC_OK),
            "run");
  cr_assert(eq(int, rc.get_status, LSPEC_OK), "inside: get_event_loop");
  cr_assert(eq(ptr, rc.got, rc.loop), "the running loop, not the policy's");
  cr_assert(eq(int, rc.running_status, LSPEC_OK), "get_running_loop");
  cr_assert(eq(ptr, rc.running, rc.loop), "get_running_loop's loop");
  impl->loop_release(rc.got);
  impl->loop_release(rc.running);
  impl->loop_close(rc.loop);
  impl->loop_release(rc.loop);
  impl->set_event_loop_policy(NULL);
  impl->policy_release(p);
}

/* --- custom policies ---------------------------------------------------------- */

struct my_policy {
  int gets, sets, news, destroyed;
};

/* The page's MyEventLoopPolicy: get_event_loop calls the base, then may do
 * something with the loop. */
static int my_get_event_loop(void *user, lspec_policy *self, lspec_loop **out) {
  struct my_policy *mp = user;
  int rc = impl->policy_super_get_event_loop(self, out);
  mp->gets++;
  return rc;
}

static int my_set_event_loop(void *user, lspec_policy *self, lspec_loop *l) {
  ((struct my_policy *)user)->sets++;
  return impl->policy_super_set_event_loop(self, l);
}

static int my_new_event_loop(void *user, lspec_policy *self, lspec_loop **o) {
  ((struct my_policy *)user)->news++;
  return impl->policy_super_new_event_loop(self, o);
}

static void my_destroy(void *user) { ((struct my_policy *)user)->destroyed++; }

Test(policy, custom_policy_overrides_and_calls_super) {
  static struct my_policy mp;
  static const struct lspec_policy_methods m = {
      .size = sizeof m,
      .get_event_loop = my_get_event_loop,
      .set_event_loop = my_set_event_loop,
      .new_event_loop = my_new_event_loop,
      .destroy = my_destroy};
  lspec_policy *p;
  lspec_loop *a, *b;
  cr_assert(eq(int, impl->policy_new_custom(LSPEC_POLICY_BASE_DEFAULT, &m, &mp,
                                         &p),
               LSPEC_OK),
            "custom: %s", impl->last_error());
  cr_assert(eq(int, impl->set_event_loop_policy(p), LSPEC_OK), "install");
  cr_assert(eq(int, impl->get_event_loop(&a), LSPEC_OK), "get: %s",
            impl->last_error());
  /* Implicit creation goes through the overridden new and set methods. */
  cr_assert(eq(int, mp.gets, 1), "get_event_loop override called once");
  cr_assert(eq(int, mp.news, 1), "implicit creation used new_event_loop");
  cr_assert(eq(int, mp.sets, 1), "implicit creation used set_event_loop");
  cr_assert(eq(int, impl->get_event_loop(&b), LSPEC_OK), "get again");
  cr_assert(eq(ptr, a, b), "the base kept the loop");
  cr_assert(eq(int, mp.news, 1), "no second creation");
  impl->loop_close(a);
  impl->loop_release(a);
  impl->loop_release(b);
  impl->set_event_loop_policy(NULL);
  cr_assert(eq(int, mp.destroyed, 0), "still referenced by the test");
  impl->policy_release(p);
  cr_assert(eq(int, mp.destroyed, 1), "destroy runs once at the last release");
}

Test(policy, abstract_base_raises_not_implemented) {
  lspec_policy *p;
  lspec_loop *l;
  lspec_watcher *w;
  cr_assert(eq(int, impl->policy_new_custom(LSPEC_POLICY_BASE_ABSTRACT, NULL,
                                         NULL, &p),
               LSPEC_OK),
            "abstract");
  cr_assert(eq(int, impl->policy_get_event_loop(p, &l), LSPEC_E_NOTIMPL), "get");
  cr_assert(eq(int, impl->policy_set_event_loop(p, NULL), LSPEC_E_NOTIMPL),
            "set");
  cr_assert(eq(int, impl->policy_new_event_loop(p, &l), LSPEC_E_NOTIMPL), "new");
  cr_assert(eq(int, impl->policy_get_child_watcher(p, &w), LSPEC_E_NOTIMPL),
            "get watcher");
  cr_assert(eq(int, impl->policy_set_child_watcher(p, NULL), LSPEC_E_NOTIMPL),
            "set watcher");
  impl->policy_release(p);
}

Test(policy, custom_policy_bad_arguments) {
  lspec_policy *p = (lspec_policy *)&p;
  struct {
    struct lspec_policy_methods m;
    void *newer_method;
  } newer;
  cr_assert(eq(int, impl->policy_new_custom(0, NULL, NULL, &p), LSPEC_E_VALUE),
            "unknown base");
  cr_assert(eq(ptr, p, NULL), "out cleared on failure");
  cr_assert(eq(int, impl->policy_new_custom(LSPEC_POLICY_BASE_DEFAULT, NULL, NULL,
                                         NULL),
               LSPEC_E_VALUE),
            "NULL out");
  memset(&newer, 0, sizeof newer);
  newer.m.size = sizeof newer;
  newer.newer_method = &newer;
  cr_assert(eq(int, impl->policy_new_custom(LSPEC_POLICY_BASE_DEFAULT, &newer.m,
                                         NULL, &p),
               LSPEC_E_VALUE),
            "an override this implementation does not know");
  newer.newer_method = NULL;
  cr_assert(eq(int, impl->policy_new_custom(LSPEC_POLICY_BASE_DEFAULT, &newer.m,
                                         NULL, &p),
               LSPEC_OK),
            "a larger table whose extra entries are unset is fine");
  impl->policy_release(p);
}

/* --- Windows policies, bad handles, NULL outs ----------------------------- */

Test(policy, windows_policies_are_unavailable) {
  lspec_policy *p = (lspec_policy *)&p;
  cr_assert(eq(int, impl->policy_new_windows_selector(&p), LSPEC_E_UNAVAILABLE),
            "selector");
  cr_assert(eq(ptr, p, NULL), "out cleared");
  cr_assert(not(eq(ptr, strstr(impl->last_error(), "Windows"), NULL)),
            "the message says why: %s", impl->last_error());
  cr_assert(eq(int, impl->policy_new_windows_proactor(&p), LSPEC_E_UNAVAILABLE),
            "proactor");
}

Test(policy, wrong_handles_and_null_outs) {
  lspec_loop *l;
  lspec_watcher *w;
  lspec_policy *p;
  cr_assert(eq(int, impl->new_event_loop(&l), LSPEC_OK), "loop");
  cr_assert(eq(int, impl->policy_get_event_loop(NULL, &l), LSPEC_E_TYPE), "NULL");
  cr_assert(eq(int, impl->policy_get_event_loop((lspec_policy *)l, &l),
               LSPEC_E_TYPE),
            "a loop as policy");
  cr_assert(eq(int, impl->policy_set_event_loop(NULL, NULL), LSPEC_E_TYPE),
            "set on NULL");
  cr_assert(eq(int, impl->policy_new_event_loop(NULL, &l), LSPEC_E_TYPE), "new");
  cr_assert(eq(int, impl->policy_get_child_watcher(NULL, &w), LSPEC_E_TYPE),
            "watcher get");
  cr_assert(eq(int, impl->policy_super_get_event_loop(NULL, &l), LSPEC_E_TYPE),
            "super");
  cr_assert(eq(int, impl->get_event_loop_policy(NULL), LSPEC_E_VALUE), "out");
  cr_assert(eq(int, impl->get_event_loop(NULL), LSPEC_E_VALUE), "out");
  cr_assert(eq(int, impl->get_running_loop(NULL), LSPEC_E_VALUE), "out");
  cr_assert(eq(int, impl->new_event_loop(NULL), LSPEC_E_VALUE), "out");
  cr_assert(eq(int, impl->get_event_loop_policy(&p), LSPEC_OK), "policy");
  cr_assert(eq(int, impl->policy_get_event_loop(p, NULL), LSPEC_E_VALUE), "out");
  /* Retain and release ignore what is not theirs. */
  impl->policy_retain(NULL);
  impl->policy_release(NULL);
  impl->policy_release((lspec_policy *)l);
  impl->policy_release(p);
  impl->loop_close(l);
  impl->loop_release(l);
}

Test(policy, set_child_watcher_rejects_non_watchers) {
  lspec_policy *p;
  cr_assert(eq(int, impl->get_event_loop_policy(&p), LSPEC_OK), "policy");
  cr_assert(eq(int, impl->set_child_watcher((lspec_watcher *)p),
               LSPEC_E_ASSERTION),
            "a bare assert in every version");
  cr_assert(eq(int, impl->set_child_watcher(NULL), LSPEC_OK), "NULL is fine");
  impl->policy_release(p);
}
