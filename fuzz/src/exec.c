/* exec.c - the executor: runs a program's operations through the ABI in
 * the main thread and two worker threads, spawns and ends the target's own
 * children, records every child callback, and compares each answer and
 * each callback with the model (model.h).  Ends by closing everything and
 * running the leak checks (leaks.c).
 */
#define _GNU_SOURCE 1
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

#define RUN_LIMIT 2.0 /* seconds a RUN waits for the callbacks it needs */

/* --- threads -------------------------------------------------------------- */

static _Thread_local int tls_thread = -1; /* T0, T1, T2; -1: not ours */

struct worker {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void (*job)(void *);
  void *arg;
  int busy, quit, started;
  int index;
};

static void *worker_main(void *p) {
  struct worker *wk = p;
  tls_thread = wk->index;
  pthread_mutex_lock(&wk->mu);
  for (;;) {
    while (!wk->busy && !wk->quit)
      pthread_cond_wait(&wk->cv, &wk->mu);
    if (wk->busy) {
      pthread_mutex_unlock(&wk->mu);
      wk->job(wk->arg);
      pthread_mutex_lock(&wk->mu);
      wk->busy = 0;
      pthread_cond_broadcast(&wk->cv);
      continue;
    }
    break;
  }
  pthread_mutex_unlock(&wk->mu);
  return NULL;
}

/* --- the run's state -------------------------------------------------------- */

struct record {
  int id, pid, rc, thread;
};

struct exec {
  const struct lspec_impl *impl;
  struct lspec_fuzz_model m;
  struct worker workers[LSPEC_FUZZ_THREADS];
  lspec_loop *loop_ptr[LSPEC_FUZZ_MAX_OBJ];
  lspec_watcher *watcher_ptr[LSPEC_FUZZ_MAX_OBJ];
  int child_wfd[LSPEC_FUZZ_CHILDREN];
  lspec_policy *cur_policy; /* the policy in force, with our reference */
  FILE *trace;
  struct lspec_fuzz_finding *finding;
  int found, op;
  /* Callbacks, written from any thread. */
  pthread_mutex_t rec_mu;
  struct record recs[256];
  int nrec, seen;
  _Atomic uint64_t fired;
};

static struct exec *cur; /* callbacks reach the run through this */

static void start_on(struct exec *x, int t, void (*fn)(void *), void *arg) {
  struct worker *wk = &x->workers[t];
  if (!wk->started) {
    pthread_attr_t at;
    wk->index = t;
    pthread_mutex_init(&wk->mu, NULL);
    pthread_cond_init(&wk->cv, NULL);
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * 1024);
    if (pthread_create(&wk->th, &at, worker_main, wk) != 0)
      abort();
    pthread_attr_destroy(&at);
    wk->started = 1;
  }
  pthread_mutex_lock(&wk->mu);
  wk->job = fn;
  wk->arg = arg;
  wk->busy = 1;
  pthread_cond_broadcast(&wk->cv);
  pthread_mutex_unlock(&wk->mu);
}

static void wait_on(struct exec *x, int t) {
  struct worker *wk = &x->workers[t];
  if (!wk->started)
    return;
  pthread_mutex_lock(&wk->mu);
  while (wk->busy)
    pthread_cond_wait(&wk->cv, &wk->mu);
  pthread_mutex_unlock(&wk->mu);
}

/* Runs fn(arg) in thread t and waits for it. */
static void run_on(struct exec *x, int t, void (*fn)(void *), void *arg) {
  if (t == 0) {
    fn(arg);
    return;
  }
  start_on(x, t, fn, arg);
  wait_on(x, t);
}

static void workers_stop(struct exec *x) {
  for (int t = 1; t < LSPEC_FUZZ_THREADS; t++) {
    struct worker *wk = &x->workers[t];
    if (!wk->started)
      continue;
    pthread_mutex_lock(&wk->mu);
    wk->quit = 1;
    pthread_cond_broadcast(&wk->cv);
    pthread_mutex_unlock(&wk->mu);
    pthread_join(wk->th, NULL);
    pthread_mutex_destroy(&wk->mu);
    pthread_cond_destroy(&wk->cv);
    wk->started = 0;
    wk->quit = 0;
  }
}

/* --- findings ------------------------------------------------------------- */

static void find(struct exec *x, const char *clause, const char *fmt, ...) {
  va_list ap;
  if (x->found)
    return;
  x->found = 1;
  x->finding->op = x->op;
  snprintf(x->finding->clause, sizeof x->finding->clause, "%s", clause);
  va_start(ap, fmt);
  vsnprintf(x->finding->text, sizeof x->finding->text, fmt, ap);
  va_end(ap);
}

static const char *status_name(int st) {
  switch (st) {
#define LSPEC_FUZZ_STATUS_CASE_(name, value, text)                             \
  case value:                                                                  \
    return #name;
    LSPEC_STATUS_MAP(LSPEC_FUZZ_STATUS_CASE_)
#undef LSPEC_FUZZ_STATUS_CASE_
  default:
    return "?";
  }
}

static void allowed_text(uint32_t allowed, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i <= 22 && len < n; i++)
    if (allowed & (UINT32_C(1) << i))
      len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "|" : "",
                              status_name(-i));
}

/* Checks one answer against the allowed set. */
static void check_status(struct exec *x, const char *what, int st,
                         uint32_t allowed, const char *clause) {
  char buf[200];
  if (x->trace)
    fprintf(x->trace, " -> %s", status_name(st));
  if (st <= 0 && st >= -22 && (allowed & LSPEC_FUZZ_ST(st)))
    return;
  allowed_text(allowed, buf, sizeof buf);
  find(x, clause, "%s answered %s (%d: %s); the model allows %s", what,
       status_name(st), st, st < 0 ? x->impl->last_error() : "", buf);
}

/* --- callbacks ------------------------------------------------------------ */

static void on_child(int pid, int returncode, void *arg) {
  struct exec *x = cur;
  int id = (int)(uintptr_t)arg;
  pthread_mutex_lock(&x->rec_mu);
  if (x->nrec < (int)(sizeof x->recs / sizeof x->recs[0]))
    x->recs[x->nrec++] = (struct record){id, pid, returncode, tls_thread};
  pthread_mutex_unlock(&x->rec_mu);
  if (id >= 1 && id <= 64)
    atomic_fetch_or(&x->fired, UINT64_C(1) << (id - 1));
}

/* Hands every new callback to the model. */
static void drain(struct exec *x) {
  char why[300];
  for (;;) {
    struct record r;
    pthread_mutex_lock(&x->rec_mu);
    if (x->seen >= x->nrec) {
      pthread_mutex_unlock(&x->rec_mu);
      break;
    }
    r = x->recs[x->seen++];
    pthread_mutex_unlock(&x->rec_mu);
    if (x->trace)
      fprintf(x->trace, "\n      callback #%d pid %d returncode %d in T%d", r.id,
              r.pid, r.rc, r.thread);
    const char *clause =
        lspec_fuzz_model_fire(&x->m, r.id, r.pid, r.rc, r.thread, why, sizeof why);
    if (clause)
      find(x, clause, "%s", why);
  }
}

/* Registrations that had to fire inside the operation (synchronous
 * delivery: CW-SAFE-002, CW-ATTACH-005, CW-FAST-003). */
static void check_sync(struct exec *x) {
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    struct lspec_fuzz_mreg *r = &x->m.regs[i];
    if (!r->used || !r->sync_due)
      continue;
    r->sync_due = 0;
    if (r->state == LSPEC_FUZZ_REG_PENDING)
      find(x, "CW-SAFE-002/CW-ATTACH-005/CW-FAST-003",
           "registration %d (pid %d) was due synchronously inside the call "
           "and did not arrive", i + 1, r->pid);
  }
}

/* --- running inside a loop ------------------------------------------------- */

struct in_loop {
  struct exec *x;
  lspec_loop *loop;
  void (*fn)(struct in_loop *);
  int done, status, run_status;
  /* The operation's own arguments and results. */
  int w, child, pid, id, mloop, answer;
  const char *const *argv;
  lspec_watcher *out;
};

static int pred_done(void *arg) { return ((struct in_loop *)arg)->done; }

static void trampoline(void *arg) {
  struct in_loop *il = arg;
  il->fn(il);
  il->done = 1;
}

static void in_loop_thread(void *arg) {
  struct in_loop *il = arg;
  const struct lspec_impl *I = il->x->impl;
  int rc = I->loop_call_soon(il->loop, trampoline, il, NULL);
  if (rc == LSPEC_OK)
    rc = I->loop_run_until(il->loop, pred_done, il, RUN_LIMIT);
  il->run_status = rc;
}

/* Runs il->fn inside the loop of model loop `ml`, in its owner thread. */
static int inside(struct exec *x, int ml, struct in_loop *il) {
  il->x = x;
  il->loop = x->loop_ptr[ml];
  il->mloop = ml;
  run_on(x, x->m.loops[ml].owner, in_loop_thread, il);
  if (il->run_status != LSPEC_OK)
    find(x, "LOOP-RUN", "running a loop for one callback answered %s (%s)",
         status_name(il->run_status), x->impl->last_error());
  return il->run_status == LSPEC_OK && il->done;
}

/* --- children -------------------------------------------------------------- */

/* The child only makes raw system calls: it may have been made by a raw
 * clone (below), where libc's per-thread state is the parent's. */
static void child_main(int rfd, int fate) {
  char c;
  while (read(rfd, &c, 1) < 0 && errno == EINTR)
    ;
  if (fate >= 0)
    _exit(fate);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigaction(-fate, &sa, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, -fate);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  syscall(SYS_kill, syscall(SYS_getpid), -fate);
  _exit(127);
}

/* How the target makes its own children: a raw clone by default, which
 * runs no pthread_atfork handler; LSPEC_FUZZ_SPAWN=fork uses fork(), so an
 * implementation's fork handlers run in each child too (fuzz/findings/). */
static pid_t make_child(void) {
  static int use_fork = -1;
  if (use_fork < 0) {
    const char *e = getenv("LSPEC_FUZZ_SPAWN");
    use_fork = e != NULL && strcmp(e, "fork") == 0;
  }
  if (use_fork)
    return fork();
  return (pid_t)syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
}

static int spawn_child(struct exec *x, int c, int fate) {
  int p[2];
  pid_t pid;
  if (pipe2(p, O_CLOEXEC) < 0)
    return -1;
  pid = make_child();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) {
    close(p[1]);
    child_main(p[0], fate);
  }
  close(p[0]);
  x->child_wfd[c] = p[1];
  return pid;
}

static void release_child(struct exec *x, int c) {
  if (x->child_wfd[c] >= 0) {
    ssize_t r;
    do
      r = write(x->child_wfd[c], "x", 1);
    while (r < 0 && errno == EINTR);
    close(x->child_wfd[c]);
    x->child_wfd[c] = -1;
  }
}

static int status_of(int st) {
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  if (WIFSIGNALED(st))
    return -WTERMSIG(st);
  return -1000;
}

/* --- the operations ------------------------------------------------------- */

#define MODEL (&x->m)

static int slot_loop(struct exec *x, int slot) {
  return slot == LSPEC_FUZZ_NONE ? -1 : x->m.loop_slot[slot];
}

static int slot_watcher(struct exec *x, int slot) {
  return slot == LSPEC_FUZZ_NONE ? -1 : x->m.watcher_slot[slot];
}

static int custom_get_child_watcher(void *user, lspec_policy *self,
                                    lspec_watcher **out) {
  (void)user;
  return cur->impl->policy_super_get_child_watcher(self, out);
}

static const struct lspec_policy_methods custom_methods = {
    .size = sizeof custom_methods,
    .get_child_watcher = custom_get_child_watcher};

/* Thread jobs for the loop operations. */
struct loop_job {
  struct exec *x;
  int slot, ml, status;
  lspec_loop *out;
};

static void job_new_loop(void *arg) {
  struct loop_job *j = arg;
  j->status = j->x->impl->new_event_loop(&j->out);
}

static void job_set_loop(void *arg) {
  struct loop_job *j = arg;
  j->status = j->x->impl->set_event_loop(j->ml >= 0 ? j->x->loop_ptr[j->ml] : NULL);
}

static void job_get_loop(void *arg) {
  struct loop_job *j = arg;
  j->status = j->x->impl->get_event_loop(&j->out);
}

static void job_close_loop(void *arg) {
  struct loop_job *j = arg;
  j->status = j->x->impl->loop_close(j->x->loop_ptr[j->ml]);
}

struct attach_job {
  struct exec *x;
  int w, ml, status;
};

static void job_attach(void *arg) {
  struct attach_job *j = arg;
  j->status = j->x->impl->watcher_attach_loop(
      j->x->watcher_ptr[j->w], j->ml >= 0 ? j->x->loop_ptr[j->ml] : NULL);
}

/* The policy's watcher attached to loop ml by set_event_loop in the main
 * thread (CW-SET-005): the attach's status, and its effects. */
static uint32_t policy_attach_status(struct exec *x, int ml) {
  int w = x->m.pol_watcher;
  if (w < 0)
    return LSPEC_FUZZ_ST(LSPEC_OK);
  return lspec_fuzz_model_attach_status(MODEL, w, ml);
}

static int policy_watcher_blocks(struct exec *x, int ml) {
  int w = x->m.pol_watcher;
  if (w < 0)
    return 0;
  if (x->m.watchers[w].closed)
    return 1; /* a closed watcher's attach: the page leaves it open */
  return x->m.watchers[w].kind == LSPEC_WATCHER_PIDFD && x->m.profile <= 11 &&
         ml >= 0 && x->m.loops[ml].closed;
}

static void op_loop_set(struct exec *x, const struct lspec_fuzz_op *op) {
  int ml = slot_loop(x, op->a);
  int t = op->a == LSPEC_FUZZ_NONE ? op->b : (ml >= 0 ? x->m.loops[ml].owner : -1);
  struct loop_job j = {x, op->a, ml, 0, NULL};
  uint32_t allowed = LSPEC_FUZZ_ST(LSPEC_OK);
  if (op->a != LSPEC_FUZZ_NONE && ml < 0)
    return;
  if (t == 0 && policy_watcher_blocks(x, ml))
    return;
  if (t == 0)
    allowed = policy_attach_status(x, ml);
  run_on(x, t, job_set_loop, &j);
  check_status(x, "set_event_loop", j.status, allowed, "LOOP-SET-001/CW-SET-005");
  /* The context takes the loop even when the attach fails. */
  int old = x->m.pol_loop[t];
  if (ml >= 0)
    x->m.loops[ml].ctx_refs++;
  x->m.pol_loop[t] = ml;
  x->m.pol_set[t] = 1;
  if (old >= 0)
    lspec_fuzz_model_loop_unref(MODEL, old, &x->m.loops[old].ctx_refs);
  if (t == 0 && x->m.pol_watcher >= 0 && j.status == LSPEC_OK)
    lspec_fuzz_model_attach(MODEL, x->m.pol_watcher, ml);
}

static void op_loop_get(struct exec *x, const struct lspec_fuzz_op *op) {
  int t = op->b, ctx = x->m.pol_loop[t];
  struct loop_job j = {x, op->a, -1, 0, NULL};
  uint32_t allowed;
  int creates = 0;
  if (x->m.loop_slot[op->a] >= 0)
    return;
  if (ctx >= 0)
    allowed = LSPEC_FUZZ_ST(LSPEC_OK);
  else if (t == 0 && !x->m.pol_set[0]) {
    if (policy_watcher_blocks(x, -1))
      return;
    creates = 1; /* the main thread's first get makes and sets a loop */
    allowed = LSPEC_FUZZ_ST(LSPEC_OK);
  } else
    allowed = LSPEC_FUZZ_ST(LSPEC_E_RUNTIME); /* no current loop */
  run_on(x, t, job_get_loop, &j);
  check_status(x, "get_event_loop", j.status, allowed, "LOOP-GET");
  if (j.status != LSPEC_OK) {
    if (j.out)
      find(x, "ABI 2", "a failing get_event_loop handed out a loop");
    return;
  }
  if (j.out == NULL) {
    find(x, "ABI 3", "get_event_loop answered OK with no loop");
    return;
  }
  if (creates) {
    int ml = lspec_fuzz_model_new_loop(MODEL, 0);
    if (ml < 0) {
      x->impl->loop_release(j.out);
      return;
    }
    x->loop_ptr[ml] = j.out;
    x->m.loops[ml].ours = 1;
    x->m.loops[ml].ctx_refs = 1;
    x->m.pol_loop[0] = ml;
    x->m.pol_set[0] = 1;
    x->m.loop_slot[op->a] = ml;
    if (x->m.pol_watcher >= 0)
      lspec_fuzz_model_attach(MODEL, x->m.pol_watcher, ml);
    return;
  }
  if (x->loop_ptr[ctx] == NULL)
    x->loop_ptr[ctx] = j.out; /* we held no reference: learn it again */
  if (x->loop_ptr[ctx] != j.out)
    find(x, "LOOP-SET-001", "get_event_loop in T%d gave another loop than "
         "the one the context holds", t);
  x->m.loops[ctx].ours++;
  x->m.loop_slot[op->a] = ctx;
  if (x->loop_ptr[ctx] != j.out)
    x->impl->loop_release(j.out), x->m.loops[ctx].ours--,
        x->m.loop_slot[op->a] = -1;
}

static void drop_loop_slot(struct exec *x, int slot) {
  int ml = x->m.loop_slot[slot];
  lspec_loop *p = x->loop_ptr[ml];
  lspec_fuzz_model_loop_unref(MODEL, ml, &x->m.loops[ml].ours);
  for (int s = 0; s < LSPEC_FUZZ_LOOPS; s++)
    if (x->m.loop_slot[s] == ml && x->m.loops[ml].ours == 0)
      x->m.loop_slot[s] = -1;
  /* Identity holds only while we hold a reference (abi.md 3): an
   * implementation may give the same object a new handle later. */
  if (x->m.loops[ml].ours == 0)
    x->loop_ptr[ml] = NULL;
  x->impl->loop_release(p);
}

static void drop_watcher_slot(struct exec *x, int slot) {
  int w = x->m.watcher_slot[slot];
  lspec_watcher *p = x->watcher_ptr[w];
  lspec_fuzz_model_watcher_unref(MODEL, w, &x->m.watchers[w].ours);
  for (int s = 0; s < LSPEC_FUZZ_WATCHERS; s++)
    if (x->m.watcher_slot[s] == w && x->m.watchers[w].ours == 0)
      x->m.watcher_slot[s] = -1;
  if (x->m.watchers[w].ours == 0)
    x->watcher_ptr[w] = NULL; /* as for loops */
  x->impl->watcher_release(p);
}

static void fn_add(struct in_loop *il) {
  struct exec *x = il->x;
  il->status = x->impl->watcher_add_child_handler(
      x->watcher_ptr[il->w], il->pid, on_child, (void *)(uintptr_t)il->id);
}

static void fn_is_active(struct in_loop *il) {
  il->answer = il->x->impl->watcher_is_active(il->x->watcher_ptr[il->w]);
}

static void fn_exec(struct in_loop *il) {
  struct exec *x = il->x;
  il->status = x->impl->loop_subprocess_exec(il->loop, il->argv, on_child,
                                             (void *)(uintptr_t)il->id, &il->pid);
}

static void op_add(struct exec *x, const struct lspec_fuzz_op *op) {
  int w = slot_watcher(x, op->a);
  int c = op->b == LSPEC_FUZZ_FOREIGN ? -1 : op->b;
  int ml = slot_loop(x, op->c);
  if (w < 0 || x->m.watchers[w].closed)
    return;
  if (c >= 0 && (x->m.children[c].state == LSPEC_FUZZ_CHILD_NONE ||
                 x->m.children[c].exec))
    return;
  if (op->c != LSPEC_FUZZ_NONE && (ml < 0 || x->m.loops[ml].closed))
    return;
  if (x->m.watchers[w].kind == LSPEC_WATCHER_PIDFD && x->m.profile <= 11 &&
      x->m.watchers[w].attached >= 0 &&
      x->m.loops[x->m.watchers[w].attached].closed)
    return; /* a reader on a closed loop: not modelled */
  int pid = c < 0 ? 1 : x->m.children[c].pid;
  uint32_t allowed = lspec_fuzz_model_add_status(MODEL, w, c, ml);
  int id = lspec_fuzz_model_reg(MODEL, w, c, pid, -1, LSPEC_FUZZ_RC_REAL, 1);
  if (!id)
    return;
  struct in_loop il = {.w = w, .child = c, .pid = pid, .id = id};
  if (ml >= 0) {
    il.fn = fn_add;
    if (!inside(x, ml, &il))
      return;
  } else {
    il.x = x;
    fn_add(&il);
  }
  check_status(x, "add_child_handler", il.status, allowed,
               "CW-THR-002/CW-FAST-002/CW-PIDFD-004/005/007/CW-SAFE-003");
  if (x->found)
    return;
  lspec_fuzz_model_add(MODEL, w, c, pid, ml, il.status, id);
}

static void op_remove(struct exec *x, const struct lspec_fuzz_op *op) {
  int w = slot_watcher(x, op->a);
  int c = op->b == LSPEC_FUZZ_FOREIGN ? -1 : op->b;
  if (w < 0 || x->m.watchers[w].closed)
    return;
  if (c >= 0 && x->m.children[c].state == LSPEC_FUZZ_CHILD_NONE)
    return;
  int pid = c < 0 ? 1 : x->m.children[c].pid;
  unsigned answers = lspec_fuzz_model_remove_answers(MODEL, w, pid);
  int r = x->impl->watcher_remove_child_handler(x->watcher_ptr[w], pid);
  if (x->trace)
    fprintf(x->trace, " -> %d", r);
  if (r < 0 || r > 1 || !(answers & (1u << r))) {
    find(x, answers == 1 ? "CW-REMOVE-002" : "CW-REMOVE-001",
         "remove_child_handler(pid %d) answered %d; the model allows %s", pid, r,
         answers == 3 ? "0 or 1" : answers == 2 ? "1" : "0");
    return;
  }
  lspec_fuzz_model_remove(MODEL, w, pid, r);
}

static void op_exec(struct exec *x, const struct lspec_fuzz_op *op) {
  int ml = slot_loop(x, op->a), c = op->c;
  if (ml < 0 || x->m.loops[ml].closed ||
      x->m.children[c].state != LSPEC_FUZZ_CHILD_NONE)
    return;
  int pw = x->m.pol_watcher;
  if (pw >= 0 && x->m.watchers[pw].closed)
    return;
  int fate = lspec_fuzz_fate(op->b);
  char cmd[40];
  if (fate >= 0)
    snprintf(cmd, sizeof cmd, "exit %d", fate);
  else
    snprintf(cmd, sizeof cmd, "kill -%d $$", -fate);
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  /* The spawn asks the policy for its watcher, which makes the default
   * one if there is none yet (SUB-WATCHER-001, CW-DEFAULT-001/002). */
  if (pw < 0) {
    pw = lspec_fuzz_model_new_watcher(MODEL, LSPEC_WATCHER_THREADED);
    if (pw < 0)
      return;
    x->m.watchers[pw].policy = 1;
    x->m.pol_watcher = pw;
    x->watcher_ptr[pw] = NULL; /* learnt at the next GET_CHILD_WATCHER */
  }
  int active = lspec_fuzz_model_active(MODEL, pw, ml);
  int id = lspec_fuzz_model_reg(MODEL, pw, -1, 0, ml, LSPEC_FUZZ_RC_REAL, 1);
  if (!id)
    return;
  struct in_loop il = {.fn = fn_exec, .id = id, .argv = argv};
  if (!inside(x, ml, &il))
    return;
  check_status(x, "subprocess_exec", il.status,
               active ? LSPEC_FUZZ_ST(LSPEC_OK) : LSPEC_FUZZ_ST(LSPEC_E_RUNTIME),
               "SUB-INACTIVE-001/SUB-EXEC-001");
  if (il.status != LSPEC_OK) {
    lspec_fuzz_model_kill_reg(MODEL, id, "SUB-INACTIVE-001 (nothing spawned)");
    return;
  }
  struct lspec_fuzz_mchild *ch = &x->m.children[c];
  memset(ch, 0, sizeof *ch);
  ch->state = LSPEC_FUZZ_CHILD_ALIVE;
  ch->pid = il.pid;
  ch->fate = fate;
  ch->exec = 1;
  ch->registered = 1;
  struct lspec_fuzz_mreg *r = &x->m.regs[id - 1];
  r->child = c;
  r->pid = il.pid;
  /* Delivered in the spawning loop's thread (SUB-EXEC-003); through a
   * loop-bound watcher only while it stays attached (model_attach). */
  if (x->m.watchers[pw].kind == LSPEC_WATCHER_FAST)
    r->certain = 0; /* its SIGCHLD may come before the registration */
}

/* RUN: each selected loop runs in its owner thread (one per thread), all at
 * once, until every callback the model requires has arrived and the
 * minimum time has passed, or RUN_LIMIT. */
struct runner {
  struct exec *x;
  lspec_loop *loop;
  lspec_handle_id tick;
  uint64_t need;
  double min_end;
  int status;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tick(void *arg) {
  struct runner *r = arg;
  r->x->impl->loop_call_later(r->loop, 0.001, tick, r, &r->tick);
}

static int pred_run(void *arg) {
  struct runner *r = arg;
  uint64_t fired = atomic_load(&r->x->fired);
  return (fired & r->need) == r->need && now_s() >= r->min_end;
}

static void job_run(void *arg) {
  struct runner *r = arg;
  const struct lspec_impl *I = r->x->impl;
  r->tick = 0;
  I->loop_call_later(r->loop, 0.001, tick, r, &r->tick);
  r->status = I->loop_run_until(r->loop, pred_run, r, RUN_LIMIT);
  if (r->tick)
    I->loop_cancel(r->loop, r->tick);
}

static void op_run(struct exec *x, const struct lspec_fuzz_op *op) {
  struct runner rs[LSPEC_FUZZ_THREADS];
  int by_thread[LSPEC_FUZZ_THREADS] = {-1, -1, -1};
  uint32_t running = 0;
  static const int min_ms[4] = {0, 1, 5, 20};
  for (int s = 0; s < LSPEC_FUZZ_LOOPS; s++) {
    int ml = x->m.loop_slot[s];
    if (!(op->a & (1u << s)) || ml < 0 || x->m.loops[ml].closed)
      continue;
    int t = x->m.loops[ml].owner;
    if (by_thread[t] >= 0)
      continue;
    by_thread[t] = ml;
    running |= 1u << ml;
  }
  if (!running)
    return;
  uint64_t need = lspec_fuzz_model_required(MODEL, running);
  double min_end = now_s() + min_ms[op->b & 3] / 1000.0;
  for (int t = 0; t < LSPEC_FUZZ_THREADS; t++) {
    if (by_thread[t] < 0)
      continue;
    rs[t] = (struct runner){x, x->loop_ptr[by_thread[t]], 0, need, min_end, 0};
    if (t != 0)
      start_on(x, t, job_run, &rs[t]);
  }
  if (by_thread[0] >= 0)
    job_run(&rs[0]);
  for (int t = 1; t < LSPEC_FUZZ_THREADS; t++)
    if (by_thread[t] >= 0)
      wait_on(x, t);
  drain(x);
  for (int t = 0; t < LSPEC_FUZZ_THREADS; t++)
    if (by_thread[t] >= 0 && rs[t].status != LSPEC_OK &&
        rs[t].status != LSPEC_E_TIMEOUT)
      find(x, "LOOP-RUN", "loop_run_until in T%d answered %s", t,
           status_name(rs[t].status));
  uint64_t missing = need & ~atomic_load(&x->fired);
  for (int i = 0; i < 64 && missing; i++)
    if (missing & (UINT64_C(1) << i)) {
      const struct lspec_fuzz_mreg *r = &x->m.regs[i];
      find(x, "CW-ADD-001/CW-RACE-003/SUB-EXEC-001",
           "registration %d (pid %d, watcher kind %d) did not arrive within "
           "%.0f s of running its loop", i + 1, r->pid, x->m.watchers[r->w].kind,
           RUN_LIMIT);
      break;
    }
}

static void op_watcher(struct exec *x, const struct lspec_fuzz_op *op) {
  const struct lspec_impl *I = x->impl;
  int w = slot_watcher(x, op->a);
  if (w < 0)
    return;
  lspec_watcher *p = x->watcher_ptr[w];
  struct lspec_fuzz_mwatcher *wp = &x->m.watchers[w];
  int st;
  switch (op->code) {
  case LSPEC_FUZZ_OP_WATCHER_ATTACH: {
    int ml = slot_loop(x, op->b);
    if (wp->closed || (op->b != LSPEC_FUZZ_NONE && ml < 0))
      return;
    if (wp->kind == LSPEC_WATCHER_PIDFD && x->m.profile <= 11 && ml >= 0 &&
        x->m.loops[ml].closed)
      return;
    struct attach_job j = {x, w, ml, 0};
    uint32_t allowed = lspec_fuzz_model_attach_status(MODEL, w, ml);
    run_on(x, ml >= 0 ? x->m.loops[ml].owner : 0, job_attach, &j);
    check_status(x, "attach_loop", j.status, allowed, "CW-ATTACH-006/CW-ATTACH-001");
    if (j.status == LSPEC_OK)
      lspec_fuzz_model_attach(MODEL, w, ml);
    break;
  }
  case LSPEC_FUZZ_OP_WATCHER_ENTER: {
    lspec_watcher *out = NULL;
    if (wp->closed)
      return;
    st = I->watcher_enter(p, &out);
    check_status(x, "enter", st, LSPEC_FUZZ_ST(LSPEC_OK), "CW-ENTER-001");
    if (st == LSPEC_OK) {
      if (out != p)
        find(x, "CW-ENTER-001", "enter gave another object than the watcher");
      I->watcher_release(out);
      wp->forks++;
    }
    break;
  }
  case LSPEC_FUZZ_OP_WATCHER_EXIT:
    if (wp->closed || wp->forks == 0)
      return; /* exit without enter: the page leaves it open */
    st = I->watcher_exit(p);
    check_status(x, "exit", st, LSPEC_FUZZ_ST(LSPEC_OK), "CW-ENTER-001");
    if (--wp->forks == 0)
      wp->zombies = 0; /* CW-FAST-005 */
    break;
  case LSPEC_FUZZ_OP_WATCHER_CLOSE:
    st = I->watcher_close(p);
    check_status(x, "close", st, LSPEC_FUZZ_ST(LSPEC_OK), "CW-CLOSE-003");
    lspec_fuzz_model_watcher_closed(MODEL, w);
    break;
  case LSPEC_FUZZ_OP_WATCHER_RETAIN:
    I->watcher_retain(p);
    wp->ours++;
    break;
  case LSPEC_FUZZ_OP_WATCHER_RELEASE:
    drop_watcher_slot(x, op->a);
    break;
  case LSPEC_FUZZ_OP_WATCHER_IS_ACTIVE: {
    int ml = slot_loop(x, op->b);
    if (wp->closed || (op->b != LSPEC_FUZZ_NONE && (ml < 0 || x->m.loops[ml].closed)))
      return;
    int want = lspec_fuzz_model_active(MODEL, w, ml);
    struct in_loop il = {.w = w, .fn = fn_is_active};
    if (ml >= 0) {
      if (!inside(x, ml, &il))
        return;
    } else {
      il.x = x;
      fn_is_active(&il);
    }
    if (x->trace)
      fprintf(x->trace, " -> %d", il.answer);
    if (il.answer != want)
      find(x, "CW-ACTIVE-001/003/004", "is_active answered %d; the model says %d",
           il.answer, want);
    break;
  }
  default:
    break;
  }
}

static void op_one(struct exec *x, const struct lspec_fuzz_op *op) {
  const struct lspec_impl *I = x->impl;
  int st;
  switch (op->code) {
  case LSPEC_FUZZ_OP_POLICY_SET_DEFAULT:
  case LSPEC_FUZZ_OP_POLICY_SET_CUSTOM: {
    lspec_policy *p = NULL;
    if (op->code == LSPEC_FUZZ_OP_POLICY_SET_DEFAULT)
      st = I->policy_new_default(&p);
    else
      st = I->policy_new_custom(LSPEC_POLICY_BASE_DEFAULT, &custom_methods,
                                NULL, &p);
    if (st == LSPEC_E_UNSUPPORTED &&
        !(I->capabilities & LSPEC_CAP_CUSTOM_POLICY))
      return;
    check_status(x, "policy_new", st, LSPEC_FUZZ_ST(LSPEC_OK), "POL-CUSTOM-001");
    if (st != LSPEC_OK)
      return;
    st = I->set_event_loop_policy(p);
    check_status(x, "set_event_loop_policy", st, LSPEC_FUZZ_ST(LSPEC_OK),
                 "POL-SET-001");
    if (st != LSPEC_OK) {
      I->policy_release(p);
      break;
    }
    /* Our reference keeps the handle (and so its identity) while it is in
     * force; the old one's is dropped, so the old policy goes. */
    I->policy_release(x->cur_policy);
    x->cur_policy = p;
    lspec_fuzz_model_policy_replaced(MODEL);
    break;
  }
  case LSPEC_FUZZ_OP_POLICY_SET_NULL:
    st = I->set_event_loop_policy(NULL);
    check_status(x, "set_event_loop_policy(NULL)", st, LSPEC_FUZZ_ST(LSPEC_OK),
                 "POL-SET-002");
    I->policy_release(x->cur_policy);
    x->cur_policy = NULL;
    lspec_fuzz_model_policy_replaced(MODEL);
    break;
  case LSPEC_FUZZ_OP_POLICY_GET: {
    lspec_policy *a = NULL, *b = NULL;
    st = I->get_event_loop_policy(&a);
    check_status(x, "get_event_loop_policy", st, LSPEC_FUZZ_ST(LSPEC_OK), "POL-GET-001");
    if (st == LSPEC_OK && I->get_event_loop_policy(&b) == LSPEC_OK) {
      if (a != b)
        find(x, "POL-GET-001", "two gets gave two policies");
      if (x->cur_policy && a != x->cur_policy)
        find(x, "POL-SET-001", "get gave another policy than the one set");
      if (x->cur_policy == NULL) {
        x->cur_policy = a; /* keep it, for identity */
        a = NULL;
      }
    }
    I->policy_release(a);
    I->policy_release(b);
    break;
  }
  case LSPEC_FUZZ_OP_LOOP_NEW: {
    struct loop_job j = {x, op->a, -1, 0, NULL};
    if (x->m.loop_slot[op->a] >= 0)
      return;
    run_on(x, op->b, job_new_loop, &j);
    check_status(x, "new_event_loop", j.status, LSPEC_FUZZ_ST(LSPEC_OK), "LOOP-NEW");
    if (j.status != LSPEC_OK)
      return;
    int ml = lspec_fuzz_model_new_loop(MODEL, op->b);
    if (ml < 0) {
      I->loop_close(j.out);
      I->loop_release(j.out);
      return;
    }
    x->loop_ptr[ml] = j.out;
    x->m.loops[ml].ours = 1;
    x->m.loop_slot[op->a] = ml;
    break;
  }
  case LSPEC_FUZZ_OP_LOOP_SET:
    op_loop_set(x, op);
    break;
  case LSPEC_FUZZ_OP_LOOP_GET:
    op_loop_get(x, op);
    break;
  case LSPEC_FUZZ_OP_LOOP_CLOSE: {
    int ml = x->m.loop_slot[op->a];
    struct loop_job j = {x, op->a, ml, 0, NULL};
    if (ml < 0)
      return;
    run_on(x, x->m.loops[ml].owner, job_close_loop, &j);
    check_status(x, "loop_close", j.status, LSPEC_FUZZ_ST(LSPEC_OK), "LOOP-CLOSE");
    lspec_fuzz_model_loop_closed(MODEL, ml);
    break;
  }
  case LSPEC_FUZZ_OP_LOOP_RETAIN: {
    int ml = x->m.loop_slot[op->a];
    if (ml < 0)
      return;
    I->loop_retain(x->loop_ptr[ml]);
    x->m.loops[ml].ours++;
    break;
  }
  case LSPEC_FUZZ_OP_LOOP_RELEASE:
    if (x->m.loop_slot[op->a] < 0)
      return;
    drop_loop_slot(x, op->a);
    break;
  case LSPEC_FUZZ_OP_WATCHER_NEW: {
    lspec_watcher *w = NULL;
    if (x->m.watcher_slot[op->a] >= 0)
      return;
    st = I->watcher_new(op->b, &w);
    int offered = (I->watcher_kinds & LSPEC_WATCHER_KIND_BIT(op->b)) != 0;
    if (st == LSPEC_E_UNAVAILABLE)
      return; /* no pidfd on this kernel: not the implementation's fault */
    check_status(x, "watcher_new", st,
                 offered ? LSPEC_FUZZ_ST(LSPEC_OK) : LSPEC_FUZZ_ST(LSPEC_E_UNSUPPORTED),
                 "CW-KINDS-001");
    if (st != LSPEC_OK)
      return;
    int mw = lspec_fuzz_model_new_watcher(MODEL, op->b);
    if (mw < 0) {
      I->watcher_close(w);
      I->watcher_release(w);
      return;
    }
    if (I->watcher_kind(w) != op->b)
      find(x, "CW-KINDS-001", "a new watcher reports kind %d, not %d",
           I->watcher_kind(w), op->b);
    x->watcher_ptr[mw] = w;
    x->m.watchers[mw].ours = 1;
    x->m.watcher_slot[op->a] = mw;
    break;
  }
  case LSPEC_FUZZ_OP_SET_CHILD_WATCHER: {
    int w = slot_watcher(x, op->a);
    if (I->custom_child_watchers != LSPEC_CUSTOM_WATCHERS_SUPPORTED)
      return;
    if (op->a != LSPEC_FUZZ_NONE && w < 0)
      return;
    st = I->set_child_watcher(w >= 0 ? x->watcher_ptr[w] : NULL);
    check_status(x, "set_child_watcher", st, LSPEC_FUZZ_ST(LSPEC_OK), "CW-SET-001");
    if (st != LSPEC_OK)
      return;
    /* CW-SET-002: the one it replaces is closed, even when it is w. */
    int old = x->m.pol_watcher;
    if (w >= 0)
      x->m.watchers[w].policy++;
    x->m.pol_watcher = w;
    if (old >= 0) {
      lspec_fuzz_model_watcher_closed(MODEL, old);
      lspec_fuzz_model_watcher_unref(MODEL, old, &x->m.watchers[old].policy);
    }
    break;
  }
  case LSPEC_FUZZ_OP_GET_CHILD_WATCHER: {
    lspec_watcher *w = NULL;
    if (x->m.watcher_slot[op->a] >= 0)
      return;
    st = I->get_child_watcher(&w);
    check_status(x, "get_child_watcher", st, LSPEC_FUZZ_ST(LSPEC_OK), "CW-GET-001");
    if (st != LSPEC_OK)
      return;
    int pw = x->m.pol_watcher;
    if (pw < 0) {
      /* CW-DEFAULT-001/002: a ThreadedChildWatcher, made now. */
      if (I->watcher_kind(w) != LSPEC_WATCHER_THREADED)
        find(x, "CW-DEFAULT-001/002", "the default watcher has kind %d",
             I->watcher_kind(w));
      pw = lspec_fuzz_model_new_watcher(MODEL, LSPEC_WATCHER_THREADED);
      if (pw < 0) {
        I->watcher_release(w);
        return;
      }
      x->m.watchers[pw].policy = 1;
      x->m.pol_watcher = pw;
      x->watcher_ptr[pw] = w;
    } else if (x->watcher_ptr[pw] == NULL) {
      x->watcher_ptr[pw] = w; /* made earlier by a spawn */
    } else if (x->watcher_ptr[pw] != w) {
      find(x, "CW-GET-002/CW-SET-001", "get_child_watcher gave another "
           "watcher than the policy's");
      I->watcher_release(w);
      return;
    }
    x->m.watchers[pw].ours++;
    x->m.watcher_slot[op->a] = pw;
    break;
  }
  case LSPEC_FUZZ_OP_SPAWN: {
    struct lspec_fuzz_mchild *ch = &x->m.children[op->a];
    if (ch->state != LSPEC_FUZZ_CHILD_NONE)
      return;
    int fate = lspec_fuzz_fate(op->b);
    int pid = spawn_child(x, op->a, fate);
    if (pid < 0)
      return;
    memset(ch, 0, sizeof *ch);
    ch->state = LSPEC_FUZZ_CHILD_ALIVE;
    ch->pid = pid;
    ch->fate = fate;
    if (x->trace)
      fprintf(x->trace, " -> pid %d", pid);
    break;
  }
  case LSPEC_FUZZ_OP_END:
  case LSPEC_FUZZ_OP_REAP: {
    struct lspec_fuzz_mchild *ch = &x->m.children[op->a];
    int reap = op->code == LSPEC_FUZZ_OP_REAP, echild = 0, got = 0;
    if (ch->exec || (ch->state != LSPEC_FUZZ_CHILD_ALIVE &&
                     !(reap && ch->state == LSPEC_FUZZ_CHILD_ENDED)))
      return;
    release_child(x, op->a);
    if (reap) {
      int s = 0, r;
      do
        r = waitpid(ch->pid, &s, 0);
      while (r < 0 && errno == EINTR);
      echild = r < 0;
      got = r == ch->pid;
      if (got && status_of(s) != ch->fate)
        find(x, "harness", "child %d ended with %d, not its fate %d", ch->pid,
             status_of(s), ch->fate);
    } else {
      siginfo_t si;
      int r;
      do
        r = waitid(P_PID, (id_t)ch->pid, &si, WEXITED | WNOWAIT);
      while (r < 0 && errno == EINTR);
      echild = r < 0;
    }
    if (x->trace)
      fprintf(x->trace, " -> %s", echild ? "already reaped" : reap ? "reaped" : "ended");
    const char *clause = lspec_fuzz_model_child_ended(MODEL, op->a, got, echild);
    if (clause)
      find(x, clause, "child C%u (pid %d), given to no watcher, was reaped by "
           "the implementation", op->a, ch->pid);
    break;
  }
  case LSPEC_FUZZ_OP_ADD:
    op_add(x, op);
    break;
  case LSPEC_FUZZ_OP_REMOVE:
    op_remove(x, op);
    break;
  case LSPEC_FUZZ_OP_EXEC:
    op_exec(x, op);
    break;
  case LSPEC_FUZZ_OP_RUN:
    op_run(x, op);
    break;
  default:
    op_watcher(x, op);
    break;
  }
}

/* --- the end of a program ---------------------------------------------------- */

static void job_close_loop_ptr(void *arg) {
  struct loop_job *j = arg;
  j->x->impl->loop_close(j->out);
}

static void cleanup(struct exec *x, const struct lspec_fuzz_baseline *base) {
  const struct lspec_impl *I = x->impl;
  char why[300];

  /* Watchers: close and drop our references. */
  for (int w = 0; w < LSPEC_FUZZ_MAX_OBJ; w++) {
    if (!x->m.watchers[w].used || x->m.watchers[w].ours <= 0)
      continue;
    I->watcher_close(x->watcher_ptr[w]);
    while (x->m.watchers[w].ours-- > 0)
      I->watcher_release(x->watcher_ptr[w]);
  }
  /* Loops: close in their threads, drop our references. */
  for (int l = 0; l < LSPEC_FUZZ_MAX_OBJ; l++) {
    if (!x->m.loops[l].used || x->m.loops[l].ours <= 0)
      continue;
    struct loop_job j = {x, 0, l, 0, x->loop_ptr[l]};
    run_on(x, x->m.loops[l].owner, job_close_loop_ptr, &j);
    while (x->m.loops[l].ours-- > 0)
      I->loop_release(x->loop_ptr[l]);
  }
  I->set_event_loop_policy(NULL);
  I->policy_release(x->cur_policy);
  x->cur_policy = NULL;
  workers_stop(x); /* their policy contexts go with them */
  drain(x);

  /* CW-REAP-001 / SUB-REAP-001: a child whose exit was reported with its
   * own status is reaped. */
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS && !x->found; i++) {
    const struct lspec_fuzz_mreg *r = &x->m.regs[i];
    siginfo_t si;
    if (!r->used || r->state != LSPEC_FUZZ_REG_FIRED || r->child < 0)
      continue;
    const struct lspec_fuzz_mchild *ch = &x->m.children[r->child];
    if (ch->state == LSPEC_FUZZ_CHILD_REAPED_US)
      continue;
    si.si_pid = 0;
    if (waitid(P_PID, (id_t)ch->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == ch->pid)
      find(x, ch->exec ? "SUB-REAP-001" : "CW-REAP-001",
           "pid %d is still a zombie after its callback ran", ch->pid);
  }

  /* Our own children: end and reap whatever is left; exec children end by
   * themselves. */
  for (int c = 0; c < LSPEC_FUZZ_CHILDREN; c++) {
    struct lspec_fuzz_mchild *ch = &x->m.children[c];
    if (ch->state == LSPEC_FUZZ_CHILD_NONE || ch->state == LSPEC_FUZZ_CHILD_REAPED_US)
      continue;
    release_child(x, c);
    int r;
    do
      r = waitpid(ch->pid, NULL, 0);
    while (r < 0 && errno == EINTR);
  }
  /* A Threaded watcher closed while its child still ran may keep that
   * child's descriptor in process-wide state until the next Threaded
   * watcher operation (the reference documents this; fuzz/README.md,
   * finding F2).  One watcher made and closed gives it that chance before
   * the descriptors are counted (LSPEC_FUZZ_NO_SETTLE=1: not). */
  if ((I->watcher_kinds & LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_THREADED)) &&
      getenv("LSPEC_FUZZ_NO_SETTLE") == NULL) {
    lspec_watcher *w = NULL;
    if (I->watcher_new(LSPEC_WATCHER_THREADED, &w) == LSPEC_OK) {
      I->watcher_close(w);
      I->watcher_release(w);
    }
  }
  x->op = -1;
  const char *clause = lspec_fuzz_leak_check(base, why, sizeof why);
  if (clause)
    find(x, clause, "%s", why);
}

/* --- the entry ------------------------------------------------------------- */

int lspec_fuzz_execute(const struct lspec_impl *impl, int profile,
                       const struct lspec_fuzz_program *prog, FILE *trace,
                       struct lspec_fuzz_finding *finding) {
  static struct exec xs; /* large: not on the stack */
  struct exec *x = &xs;
  struct lspec_fuzz_baseline base;

  memset(x, 0, sizeof *x);
  x->impl = impl;
  x->trace = trace;
  x->finding = finding;
  memset(finding, 0, sizeof *finding);
  pthread_mutex_init(&x->rec_mu, NULL);
  for (int c = 0; c < LSPEC_FUZZ_CHILDREN; c++)
    x->child_wfd[c] = -1;
  lspec_fuzz_model_init(MODEL, profile);
  tls_thread = 0;
  cur = x;
  lspec_fuzz_baseline_take(&base);

  for (unsigned i = 0; i < prog->n && !x->found; i++) {
    x->op = (int)i;
    if (trace) {
      fprintf(trace, "  %2u: ", i);
      lspec_fuzz_op_print(trace, &prog->ops[i]);
    }
    op_one(x, &prog->ops[i]);
    drain(x);
    check_sync(x);
    lspec_fuzz_model_settle(MODEL);
    if (trace)
      fputc('\n', trace);
  }
  cleanup(x, &base);
  pthread_mutex_destroy(&x->rec_mu);
  cur = NULL;
  return x->found;
}
