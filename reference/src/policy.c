/* policy.c - event loop policies: the process-wide policy, the Unix default
 * policy with its per-thread context, custom policies built from an override
 * table, the two Windows policies, and asyncio's module-level functions.
 *
 * Behaviour follows the page where it speaks and CPython where it is silent
 * (spec/clauses/policy.toml and loop.toml cite each rule).  The traps kept on
 * purpose: set_event_loop marks the context "set" before it checks its
 * argument; bad arguments are AssertionError up to 3.10 and TypeError from
 * 3.11; a loop is created implicitly only in the main thread and only while
 * set_event_loop was never called there; set_child_watcher closes the old
 * watcher even when it is the new one.
 *
 * Division of this file: per-thread contexts; policy objects; the base
 * ("super") methods; dispatch through overrides; the process-wide policy and
 * the module-level functions.
 */
#define _GNU_SOURCE 1 /* pthread_getname_np */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ctx;
struct tctx;

struct lspec_policy {
  struct lspec__obj hdr;            /* kind LSPEC__KIND_POLICY, refs */
  int base;                         /* enum lspec_policy_base */
  struct lspec_policy_methods m;    /* overrides; NULL = inherit the base's */
  void *user;                       /* the overrides' argument */
  struct ctx *contexts;             /* per-thread contexts, under ctx_lock */
  pthread_mutex_t watcher_lock;     /* guards watcher */
  lspec_watcher *watcher;           /* the Unix policy's watcher, or NULL */
};

/* ------------------------------------------------------------------------ */
/* Per-thread contexts.                                                      */
/*                                                                            */
/* CPython keeps a threading.local per policy.  Here each (policy, thread)    */
/* pair that ever asked has one struct ctx, linked both into its policy's     */
/* list and into its thread's list.  A thread's list hangs off a pthread key  */
/* whose destructor drops the thread's contexts when the thread exits; a      */
/* dying policy drops its own.  One mutex guards every list: these are not   */
/* hot paths, and one lock cannot be taken in two orders.                    */
/* ------------------------------------------------------------------------ */

struct ctx {
  lspec_policy *policy;      /* owner (borrowed: the policy frees us first) */
  struct tctx *thread;       /* the thread's list */
  struct ctx *p_prev, *p_next; /* links in policy->contexts */
  struct ctx *t_prev, *t_next; /* links in thread->head */
  lspec_loop *loop;          /* the thread's current loop (a reference) */
  int set_called;            /* set_event_loop was called in this thread */
};

struct tctx {
  struct ctx *head; /* this thread's contexts, one per policy */
};

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static int thread_key_ok;

static void unlink_ctx(struct ctx *c) {
  if (c->p_prev)
    c->p_prev->p_next = c->p_next;
  else
    c->policy->contexts = c->p_next;
  if (c->p_next)
    c->p_next->p_prev = c->p_prev;
  if (c->t_prev)
    c->t_prev->t_next = c->t_next;
  else
    c->thread->head = c->t_next;
  if (c->t_next)
    c->t_next->t_prev = c->t_prev;
}

/* Frees contexts already unlinked and chained through p_next, dropping the
 * reference each held on its loop.  Called without ctx_lock: a loop's last
 * release closes it. */
static void free_contexts(struct ctx *dead) {
  struct ctx *next;
  for (; dead != NULL; dead = next) {
    next = dead->p_next;
    if (dead->loop)
      lspec__loop_release(dead->loop);
    free(dead);
  }
}

/* Unlinks every context of policy `p` and returns them chained through
 * p_next, for free_contexts.  Called with ctx_lock held. */
static struct ctx *take_policy_contexts(lspec_policy *p) {
  struct ctx *c, *next, *dead = NULL;
  for (c = p->contexts; c != NULL; c = next) {
    next = c->p_next;
    unlink_ctx(c);
    c->p_next = dead;
    dead = c;
  }
  return dead;
}

/* Runs when a thread that used a policy exits: its loops lose the reference
 * the context held, as a threading.local's values do. */
static void thread_exit(void *value) {
  struct tctx *t = value;
  struct ctx *c, *next, *dead = NULL;

  pthread_mutex_lock(&ctx_lock);
  for (c = t->head; c != NULL; c = next) {
    next = c->t_next;
    unlink_ctx(c);
    c->p_next = dead;
    dead = c;
  }
  pthread_mutex_unlock(&ctx_lock);
  free_contexts(dead);
  free(t);
}

static void make_thread_key(void) {
  thread_key_ok = pthread_key_create(&thread_key, thread_exit) == 0;
}

/* Finds the calling thread's context for `p`, creating it if `create`.
 * Called with ctx_lock held.  Returns NULL when absent (create == 0) or out
 * of memory (create == 1). */
static struct ctx *find_ctx(lspec_policy *p, int create) {
  struct tctx *t;
  struct ctx *c;

  t = thread_key_ok ? pthread_getspecific(thread_key) : NULL;
  for (c = t ? t->head : NULL; c != NULL; c = c->t_next)
    if (c->policy == p)
      return c;
  if (!create || !thread_key_ok)
    return NULL;
  if (t == NULL) {
    t = calloc(1, sizeof *t);
    if (t == NULL)
      return NULL;
    if (pthread_setspecific(thread_key, t) != 0) {
      free(t);
      return NULL;
    }
  }
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->policy = p;
  c->thread = t;
  c->p_next = p->contexts;
  if (p->contexts)
    p->contexts->p_prev = c;
  p->contexts = c;
  c->t_next = t->head;
  if (t->head)
    t->head->t_prev = c;
  t->head = c;
  return c;
}

/* ------------------------------------------------------------------------ */
/* Policy objects.                                                           */
/* ------------------------------------------------------------------------ */

/* Python's name for the class of a handle, for TypeError messages. */
static const char *type_name(const void *h) {
  switch (lspec__kind_of(h)) {
  case LSPEC__KIND_POLICY:
    return "_UnixDefaultEventLoopPolicy";
  case LSPEC__KIND_LOOP:
    return "_UnixSelectorEventLoop";
  case LSPEC__KIND_WATCHER:
    return "AbstractChildWatcher";
  default:
    return "NoneType";
  }
}

/* A policy entry given something that is not a policy.  CPython would raise
 * AttributeError calling a method on a non-policy; the ABI asks for TypeError
 * (spec/abi.md, "Handles"). */
static int check_policy(const lspec_policy *p) {
  if (lspec__kind_of(p) == LSPEC__KIND_POLICY)
    return LSPEC_OK;
  return lspec__fail(LSPEC_E_TYPE, "expected an event loop policy, got %s",
                     p ? "a handle of another kind" : "NULL");
}

static int check_out(const void *out, const char *entry) {
  if (out != NULL)
    return LSPEC_OK;
  return lspec__fail(LSPEC_E_VALUE, "%s: out is NULL", entry);
}

static int new_policy(int base, const struct lspec_policy_methods *m,
                      void *user, lspec_policy **out) {
  lspec_policy *p;

  /* pthread_once makes the key exactly once for the whole process. */
  pthread_once(&thread_key_once, make_thread_key);
  (void)lspec__profile(); /* a policy in existence freezes the profile */
  if (!thread_key_ok)
    return lspec__fail(LSPEC_E_RUNTIME, "no thread-specific key available");
  p = calloc(1, sizeof *p);
  if (p == NULL)
    return lspec__fail_nomem("creating a policy");
  p->hdr.kind = LSPEC__KIND_POLICY;
  atomic_init(&p->hdr.refs, 1);
  p->base = base;
  if (m != NULL)
    memcpy(&p->m, m, m->size < sizeof p->m ? m->size : sizeof p->m);
  p->m.size = sizeof p->m;
  p->user = user;
  pthread_mutex_init(&p->watcher_lock, NULL);
  *out = p;
  return LSPEC_OK;
}

static void destroy_policy(lspec_policy *p) {
  struct ctx *dead;

  pthread_mutex_lock(&ctx_lock);
  dead = take_policy_contexts(p);
  pthread_mutex_unlock(&ctx_lock);
  free_contexts(dead);
  if (p->watcher)
    lspec__watcher_release(p->watcher);
  if (p->m.destroy)
    p->m.destroy(p->user);
  pthread_mutex_destroy(&p->watcher_lock);
  p->hdr.kind = LSPEC__KIND_DEAD;
  free(p);
}

void lspec__policy_retain(lspec_policy *p) {
  if (lspec__kind_of(p) == LSPEC__KIND_POLICY)
    atomic_fetch_add(&p->hdr.refs, 1);
}

void lspec__policy_release(lspec_policy *p) {
  if (lspec__kind_of(p) != LSPEC__KIND_POLICY)
    return;
  if (lspec__unref(&p->hdr))
    destroy_policy(p);
}

int lspec__policy_new_default(lspec_policy **out) {
  int rc = check_out(out, "policy_new_default");
  if (rc)
    return rc;
  *out = NULL;
  return new_policy(LSPEC_POLICY_BASE_DEFAULT, NULL, NULL, out);
}

static int windows_only(lspec_policy **out, const char *name) {
  if (out != NULL)
    *out = NULL;
  return lspec__fail(LSPEC_E_UNAVAILABLE,
                     "%s is available on Windows only: asyncio defines it "
                     "only when sys.platform == 'win32'",
                     name);
}

int lspec__policy_new_windows_selector(lspec_policy **out) {
  return windows_only(out, "WindowsSelectorEventLoopPolicy");
}

int lspec__policy_new_windows_proactor(lspec_policy **out) {
  return windows_only(out, "WindowsProactorEventLoopPolicy");
}

int lspec__policy_new_custom(int base, const struct lspec_policy_methods *m,
                             void *user, lspec_policy **out) {
  const unsigned char *extra;
  size_t i;
  int rc = check_out(out, "policy_new_custom");

  if (rc)
    return rc;
  *out = NULL;
  if (base != LSPEC_POLICY_BASE_ABSTRACT && base != LSPEC_POLICY_BASE_DEFAULT)
    return lspec__fail(LSPEC_E_VALUE, "unknown policy base %d", base);
  if (m != NULL) {
    if (m->size < sizeof m->size)
      return lspec__fail(LSPEC_E_VALUE,
                         "policy methods: size %zu is too small", m->size);
    /* A caller built against a newer header may know more methods; any it
     * sets that this implementation does not know cannot be honoured. */
    extra = (const unsigned char *)m;
    for (i = sizeof *m; i < m->size; i++)
      if (extra[i] != 0)
        return lspec__fail(LSPEC_E_VALUE,
                           "policy methods: an override this implementation "
                           "does not know is set (byte %zu)",
                           i);
  }
  return new_policy(base, m, user, out);
}

/* ------------------------------------------------------------------------ */
/* Base ("super") methods: AbstractEventLoopPolicy raises NotImplementedError */
/* for everything; the default policy is BaseDefaultEventLoopPolicy plus the  */
/* Unix policy's child-watcher part.                                         */
/* ------------------------------------------------------------------------ */

static int abstract_method(void) {
  return lspec__fail(LSPEC_E_NOTIMPL, "%s", "");
}

/* Set in the child of a fork made from a thread other than the main one. */
static int forked_from_non_main;

/* Whether CPython's policy would see the calling thread as the main thread.
 * 3.9+ compare with threading.main_thread(), which a fork's child resets to
 * the forking thread: the OS's view (lspec__is_main_thread).  3.8 tests the
 * thread object's class, so a child forked from a non-main thread has no
 * main thread at all. */
static int policy_main_thread(void) {
  if (!lspec__is_main_thread())
    return 0;
  return !(forked_from_non_main && lspec__profile() == LSPEC_PROFILE_3_8);
}

/* The name CPython's RuntimeError message gives the calling thread. */
static void thread_name(char *buf, size_t size) {
  if (policy_main_thread() ||
      pthread_getname_np(pthread_self(), buf, size) != 0 || buf[0] == '\0')
    snprintf(buf, size, "%s", policy_main_thread() ? "MainThread" : "Thread");
}

static int base_new_event_loop(lspec_policy *self, lspec_loop **out) {
  if (self->base == LSPEC_POLICY_BASE_ABSTRACT &&
      !LSPEC_PLANTED(POL_ABC_002)) /* planted: the abstract one makes loops */
    return abstract_method();
  return lspec__loop_new(LSPEC_BACKEND_DEFAULT, out);
}

static int base_set_event_loop(lspec_policy *self, lspec_loop *loop) {
  struct ctx *c;
  lspec_loop *old;
  lspec_watcher *w = NULL;
  int rc = LSPEC_OK;

  if (self->base == LSPEC_POLICY_BASE_ABSTRACT)
    return abstract_method();
  /* CPython sets _set_called before it checks the argument, so even a call
   * that fails disables implicit creation in this thread. */
  pthread_mutex_lock(&ctx_lock);
  c = find_ctx(self, 1);
  if (c && !(LSPEC_PLANTED(LOOP_IMPL_006) && /* planted: checks first */
             loop != NULL && lspec__kind_of(loop) != LSPEC__KIND_LOOP))
    c->set_called = 1;
  pthread_mutex_unlock(&ctx_lock);
  if (c == NULL)
    return lspec__fail_nomem("recording the thread's event loop");
  if (loop != NULL && lspec__kind_of(loop) != LSPEC__KIND_LOOP) {
    if (lspec__profile() <= LSPEC_PROFILE_3_10)
      return lspec__fail(LSPEC_E_ASSERTION, "%s", "");
    return lspec__fail(LSPEC_E_TYPE,
                       "loop must be an instance of AbstractEventLoop or "
                       "None, not '%s'",
                       type_name(loop));
  }
  if (loop)
    lspec__loop_retain(loop);
  pthread_mutex_lock(&ctx_lock);
  c = find_ctx(self, 0); /* still there: only this thread's exit frees it */
  old = c->loop;
  c->loop = loop;
  pthread_mutex_unlock(&ctx_lock);
  if (old)
    lspec__loop_release(old);

  /* The Unix policy attaches its watcher, in the main thread only. */
  if (policy_main_thread()) {
    pthread_mutex_lock(&self->watcher_lock);
    w = self->watcher;
    if (w)
      lspec__watcher_retain(w);
    pthread_mutex_unlock(&self->watcher_lock);
  }
  if (w) {
    rc = lspec__watcher_attach_loop(w, loop);
    lspec__watcher_release(w);
  }
  return rc;
}

static int base_get_event_loop(lspec_policy *self, lspec_loop **out) {
  struct ctx *c;
  lspec_loop *loop = NULL, *fresh = NULL;
  int set_called = 0, rc;
  char name[64];

  if (self->base == LSPEC_POLICY_BASE_ABSTRACT)
    return abstract_method();
  pthread_mutex_lock(&ctx_lock);
  c = find_ctx(self, 0);
  if (c) {
    loop = c->loop;
    set_called = c->set_called;
    if (loop)
      lspec__loop_retain(loop);
  }
  pthread_mutex_unlock(&ctx_lock);
  if (LSPEC_PLANTED(LOOP_SET_003) && loop && lspec__loop_is_closed(loop) == 1) {
    lspec__loop_release(loop); /* planted: a closed loop is replaced */
    loop = NULL;
    set_called = 0;
  }
  if (loop) {
    *out = loop;
    return LSPEC_OK;
  }
  if (!set_called && (policy_main_thread() ||
                      LSPEC_PLANTED(LOOP_IMPL_003))) { /* planted: any thread */
    /* 3.12 warns just before it creates the loop. */
    if (lspec__profile() >= LSPEC_PROFILE_3_12)
      lspec__warn(LSPEC_WARN_DEPRECATION, "There is no current event loop");
    /* Through the overridable methods, as CPython does: a custom policy's
     * new_event_loop and set_event_loop take part, and the Unix policy's
     * set_event_loop attaches the watcher. */
    rc = lspec__policy_new_event_loop(self, &fresh);
    if (rc != LSPEC_OK)
      return rc;
    if (LSPEC_PLANTED(LOOP_IMPL_001)) { /* planted: never made current */
      *out = fresh;
      return LSPEC_OK;
    }
    rc = lspec__policy_set_event_loop(self, fresh);
    lspec__loop_release(fresh);
    if (rc != LSPEC_OK)
      return rc;
    pthread_mutex_lock(&ctx_lock);
    c = find_ctx(self, 0);
    loop = c ? c->loop : NULL;
    if (loop)
      lspec__loop_retain(loop);
    pthread_mutex_unlock(&ctx_lock);
    if (loop) {
      *out = loop;
      return LSPEC_OK;
    }
  }
  thread_name(name, sizeof name);
  return lspec__fail(LSPEC_E_RUNTIME,
                     "There is no current event loop in thread '%s'.", name);
}

static int base_get_child_watcher(lspec_policy *self, lspec_watcher **out) {
  struct ctx *c;
  lspec_watcher *w;
  lspec_loop *loop = NULL;
  int profile = lspec__profile(), rc = LSPEC_OK;

  if (self->base == LSPEC_POLICY_BASE_ABSTRACT)
    return abstract_method();
  pthread_mutex_lock(&self->watcher_lock);
  if (self->watcher == NULL) {
    /* _init_watcher: ThreadedChildWatcher, which both versions of the page
     * name as the default.  CPython 3.12 picks PidfdChildWatcher when the
     * kernel has pidfd_open (conflict C2); the reference follows the page. */
    rc = lspec__watcher_new(LSPEC_WATCHER_THREADED, &self->watcher);
    /* 3.8-3.10 also attach the new watcher to the main thread's loop. */
    if (rc == LSPEC_OK && profile <= LSPEC_PROFILE_3_10 &&
        policy_main_thread()) {
      pthread_mutex_lock(&ctx_lock);
      c = find_ctx(self, 0);
      loop = c ? c->loop : NULL;
      if (loop)
        lspec__loop_retain(loop);
      pthread_mutex_unlock(&ctx_lock);
      rc = lspec__watcher_attach_loop(self->watcher, loop);
      if (loop)
        lspec__loop_release(loop);
    }
  }
  w = rc == LSPEC_OK ? self->watcher : NULL;
  if (w)
    lspec__watcher_retain(w);
  pthread_mutex_unlock(&self->watcher_lock);
  if (w == NULL)
    return rc;
  *out = w;
  if (profile >= LSPEC_PROFILE_3_12)
    lspec__warn(LSPEC_WARN_DEPRECATION,
                "'get_child_watcher' is deprecated as of Python 3.12 and "
                "will be removed in Python 3.14.");
  return rc;
}

static int base_set_child_watcher(lspec_policy *self, lspec_watcher *w) {
  lspec_watcher *old;

  if (self->base == LSPEC_POLICY_BASE_ABSTRACT)
    return abstract_method();
  /* A bare assert in CPython, in every version. */
  if (w != NULL && lspec__kind_of(w) != LSPEC__KIND_WATCHER)
    return lspec__fail(LSPEC_E_ASSERTION, "%s", "");
  if (w)
    lspec__watcher_retain(w);
  pthread_mutex_lock(&self->watcher_lock);
  old = self->watcher;
  self->watcher = w;
  pthread_mutex_unlock(&self->watcher_lock);
  /* The old watcher is closed even when it is `w` itself.  Only the user's
   * own close() calls carry the 3.12 deprecation, not this one. */
  if (old) {
    lspec__warn_suppress(LSPEC_WARN_DEPRECATION, 1);
    if (!(LSPEC_PLANTED(CW_SET_002) && old == w)) /* planted: same one open */
      lspec__watcher_close(old);
    lspec__warn_suppress(LSPEC_WARN_DEPRECATION, 0);
    lspec__watcher_release(old);
  }
  if (lspec__profile() >= LSPEC_PROFILE_3_12 &&
      !LSPEC_PLANTED(POL_WATCHDEP_001)) /* planted: no warning */
    lspec__warn(LSPEC_WARN_DEPRECATION,
                "'set_child_watcher' is deprecated as of Python 3.12 and "
                "will be removed in Python 3.14.");
  return LSPEC_OK;
}

/* ------------------------------------------------------------------------ */
/* Dispatch: the policy_* entries call an override when there is one, the   */
/* base otherwise; the policy_super_* entries always call the base.          */
/* ------------------------------------------------------------------------ */

#define CHECK_POLICY_OUT(p, out, entry)                                        \
  do {                                                                         \
    int rc_ = check_policy(p);                                                 \
    if (rc_ == LSPEC_OK)                                                       \
      rc_ = check_out(out, entry);                                             \
    if (rc_ != LSPEC_OK)                                                       \
      return rc_;                                                              \
    *(out) = NULL;                                                             \
  } while (0)

/* Each method, for a method handing out a handle (OUT) or taking one (IN):
 * the dispatching entry and the super entry. */
#define DISPATCH_OUT(name, type)                                               \
  int lspec__policy_##name(lspec_policy *p, type **out) {                      \
    CHECK_POLICY_OUT(p, out, #name);                                           \
    if (p->m.name)                                                             \
      return p->m.name(p->user, p, out);                                       \
    return base_##name(p, out);                                                \
  }                                                                            \
  int lspec__policy_super_##name(lspec_policy *self, type **out) {             \
    CHECK_POLICY_OUT(self, out, "super " #name);                               \
    if (LSPEC_PLANTED(POL_CUSTOM_002)) /* planted: super dispatches again */   \
      return lspec__policy_##name(self, out);                                  \
    return base_##name(self, out);                                             \
  }

#define DISPATCH_IN(name, type)                                                \
  int lspec__policy_##name(lspec_policy *p, type *arg) {                       \
    int rc = check_policy(p);                                                  \
    if (rc != LSPEC_OK)                                                        \
      return rc;                                                               \
    if (p->m.name)                                                             \
      return p->m.name(p->user, p, arg);                                       \
    return base_##name(p, arg);                                                \
  }                                                                            \
  int lspec__policy_super_##name(lspec_policy *self, type *arg) {              \
    int rc = check_policy(self);                                               \
    return rc != LSPEC_OK ? rc : base_##name(self, arg);                       \
  }

DISPATCH_OUT(get_event_loop, lspec_loop)
DISPATCH_IN(set_event_loop, lspec_loop)
DISPATCH_OUT(new_event_loop, lspec_loop)
DISPATCH_OUT(get_child_watcher, lspec_watcher)
DISPATCH_IN(set_child_watcher, lspec_watcher)

/* ------------------------------------------------------------------------ */
/* The process-wide policy and the module-level functions.                   */
/* ------------------------------------------------------------------------ */

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static lspec_policy *global_policy; /* a reference, or NULL = not made yet */

int lspec__get_event_loop_policy(lspec_policy **out) {
  int rc = check_out(out, "get_event_loop_policy");
  if (rc)
    return rc;
  *out = NULL;
  pthread_mutex_lock(&global_lock);
  /* Created lazily, once, under the lock: every caller sees one object. */
  if (global_policy == NULL)
    rc = new_policy(LSPEC_POLICY_BASE_DEFAULT, NULL, NULL, &global_policy);
  if (rc == LSPEC_OK) {
    lspec__policy_retain(global_policy);
    *out = global_policy;
  }
  pthread_mutex_unlock(&global_lock);
  return rc;
}

int lspec__set_event_loop_policy(lspec_policy *policy) {
  lspec_policy *old;

  if (policy != NULL && lspec__kind_of(policy) != LSPEC__KIND_POLICY) {
    if (lspec__profile() <= (LSPEC_PLANTED(POL_SETARG_002) /* 3.11 too */
                                 ? LSPEC_PROFILE_3_11
                                 : LSPEC_PROFILE_3_10))
      return lspec__fail(LSPEC_E_ASSERTION, "%s", "");
    return lspec__fail(LSPEC_E_TYPE,
                       "policy must be an instance of "
                       "AbstractEventLoopPolicy or None, not '%s'",
                       type_name(policy));
  }
  if (policy)
    lspec__policy_retain(policy);
  pthread_mutex_lock(&global_lock);
  old = global_policy;
  if (LSPEC_PLANTED(POL_SET_003) && policy == NULL && old != NULL &&
      old->base == LSPEC_POLICY_BASE_DEFAULT && old->m.get_event_loop == NULL) {
    /* Planted: "the default is in force already", and it is kept. */
    pthread_mutex_unlock(&global_lock);
    return LSPEC_OK;
  }
  global_policy = policy; /* NULL: the next get makes a fresh default */
  pthread_mutex_unlock(&global_lock);
  /* The old policy's loops and watcher are left alone, only unreferenced. */
  if (old)
    lspec__policy_release(old);
  return LSPEC_OK;
}

int lspec__get_running_loop(lspec_loop **out) {
  lspec_loop *loop;
  int rc = check_out(out, "get_running_loop");
  if (rc)
    return rc;
  *out = NULL;
  loop = lspec__loop_running();
  if (loop == NULL)
    return lspec__fail(LSPEC_E_RUNTIME, "no running event loop");
  lspec__loop_retain(loop);
  *out = loop;
  return LSPEC_OK;
}

int lspec__get_event_loop(lspec_loop **out) {
  lspec_policy *p;
  lspec_loop *running;
  int rc = check_out(out, "get_event_loop");
  if (rc)
    return rc;
  *out = NULL;
  /* A running loop wins; the policy is not consulted then. */
  running = LSPEC_PLANTED(LOOP_MODGET_001) ? NULL /* planted: policy first */
                                           : lspec__loop_running();
  if (running) {
    lspec__loop_retain(running);
    *out = running;
    return LSPEC_OK;
  }
  rc = lspec__get_event_loop_policy(&p);
  if (rc)
    return rc;
  rc = lspec__policy_get_event_loop(p, out);
  lspec__policy_release(p);
  return rc;
}

/* The other module-level functions call the same-named method of the
 * current policy, holding a reference to it for the duration of the call. */
#define DELEGATE_OUT(name, type)                                               \
  int lspec__##name(type **out) {                                              \
    lspec_policy *p;                                                           \
    int rc = check_out(out, #name);                                            \
    if (rc != LSPEC_OK)                                                        \
      return rc;                                                               \
    *out = NULL;                                                               \
    if ((rc = lspec__get_event_loop_policy(&p)) != LSPEC_OK)                   \
      return rc;                                                               \
    rc = lspec__policy_##name(p, out);                                         \
    lspec__policy_release(p);                                                  \
    return rc;                                                                 \
  }

#define DELEGATE_IN(name, type)                                                \
  int lspec__##name(type *arg) {                                               \
    lspec_policy *p;                                                           \
    int rc = lspec__get_event_loop_policy(&p);                                 \
    if (rc != LSPEC_OK)                                                        \
      return rc;                                                               \
    rc = lspec__policy_##name(p, arg);                                         \
    lspec__policy_release(p);                                                  \
    return rc;                                                                 \
  }

DELEGATE_IN(set_event_loop, lspec_loop)
DELEGATE_OUT(new_event_loop, lspec_loop)
DELEGATE_OUT(get_child_watcher, lspec_watcher)
DELEGATE_IN(set_child_watcher, lspec_watcher)

/* ------------------------------------------------------------------------ */
/* Fork.                                                                     */
/*                                                                            */
/* The policy's locks are taken around fork() so that the child never        */
/* inherits one held by a thread that does not exist there.  In the child:   */
/* the forking thread has no running loop (every version); from 3.12 the     */
/* process-wide policy forgets every thread's context, as CPython's          */
/* register_at_fork hook gives it a fresh _local, so the child's main thread */
/* makes its own loop; before 3.12 the child keeps the parent's current      */
/* loop objects.                                                             */
/* ------------------------------------------------------------------------ */

static int fork_from_main; /* prepare's view of the forking thread */

static void fork_prepare(void) {
  pthread_mutex_lock(&global_lock);
  pthread_mutex_lock(&ctx_lock);
  /* Under the locks: threads forking at once each set it in turn. */
  fork_from_main = lspec__is_main_thread();
  lspec__subprocess_fork_prepare(); /* taken last: a loop's close takes it */
}

static void fork_parent(void) {
  lspec__subprocess_fork_release();
  pthread_mutex_unlock(&ctx_lock);
  pthread_mutex_unlock(&global_lock);
}

static void fork_child(void) {
  /* The child's only thread is the one that forked and owns every lock;
   * all are given back before the child closes any loop below (one
   * handler for all, so that their order is ours, not the order in which
   * separate handlers happened to be registered). */
  lspec__subprocess_fork_release();
  pthread_mutex_unlock(&ctx_lock);
  pthread_mutex_unlock(&global_lock);
  if (!fork_from_main)
    forked_from_non_main = 1;
  lspec__loop_after_fork_child();
  if (global_policy != NULL && lspec__profile() >= LSPEC_PROFILE_3_12)
    free_contexts(take_policy_contexts(global_policy));
}

/* Registered once, when the library is loaded. */
__attribute__((constructor)) static void register_fork_handlers(void) {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}
