/* model.c - the oracle's rules: per watcher kind and profile, what each
 * call answers and which callbacks it arranges (see model.h).
 *
 * Clause ids in the comments are spec/clauses' (doc side of every
 * page-vs-CPython conflict).  The model is deliberately plain: objects are
 * small records, and every rule is one switch on the kind.
 */
#include "model.h"

#include <stdio.h>
#include <string.h>

#include <loopspec/abi.h>

#define T LSPEC_WATCHER_THREADED
#define M LSPEC_WATCHER_MULTILOOP
#define S LSPEC_WATCHER_SAFE
#define F LSPEC_WATCHER_FAST
#define P LSPEC_WATCHER_PIDFD

void lspec_fuzz_model_init(struct lspec_fuzz_model *m, int profile) {
  memset(m, 0, sizeof *m);
  m->profile = profile;
  for (int i = 0; i < LSPEC_FUZZ_LOOPS; i++)
    m->loop_slot[i] = -1;
  for (int i = 0; i < LSPEC_FUZZ_WATCHERS; i++)
    m->watcher_slot[i] = -1;
  m->pol_watcher = -1;
  for (int i = 0; i < LSPEC_FUZZ_THREADS; i++)
    m->pol_loop[i] = -1;
}

/* Pidfd in 3.9-3.11 works through its attached loop; in 3.12 through the
 * caller's running loop (CW-PIDFD-005/006/007). */
static int pidfd_attached_mode(const struct lspec_fuzz_model *m) {
  return m->profile <= 11;
}

int lspec_fuzz_model_new_loop(struct lspec_fuzz_model *m, int owner) {
  for (int i = 0; i < LSPEC_FUZZ_MAX_OBJ; i++)
    if (!m->loops[i].used) {
      memset(&m->loops[i], 0, sizeof m->loops[i]);
      m->loops[i].used = 1;
      m->loops[i].owner = owner;
      return i;
    }
  return -1;
}

int lspec_fuzz_model_new_watcher(struct lspec_fuzz_model *m, int kind) {
  for (int i = 0; i < LSPEC_FUZZ_MAX_OBJ; i++)
    if (!m->watchers[i].used) {
      memset(&m->watchers[i], 0, sizeof m->watchers[i]);
      m->watchers[i].used = 1;
      m->watchers[i].kind = kind;
      m->watchers[i].attached = -1;
      return i;
    }
  return -1;
}

static int loop_live(const struct lspec_fuzz_model *m, int l) {
  return l >= 0 && !m->loops[l].closed && !m->loops[l].gone;
}

/* A loop was closed: whatever it was to deliver is dropped (LOOP close
 * drops pending callbacks; CW-THR-005: a closed loop's child callback is
 * dropped, the child still reaped). */
void lspec_fuzz_model_loop_closed(struct lspec_fuzz_model *m, int l) {
  if (m->loops[l].closed)
    return;
  m->loops[l].closed = 1;
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    struct lspec_fuzz_mreg *r = &m->regs[i];
    if (!r->used || r->state != LSPEC_FUZZ_REG_PENDING)
      continue;
    if (r->loop == l)
      lspec_fuzz_model_kill_reg(m, i + 1, "CW-THR-005 (delivering loop closed)");
    else if (r->loop < 0 && m->watchers[r->w].attached == l &&
             m->watchers[r->w].kind == P)
      r->certain = 0; /* its reader went with the loop */
  }
}

void lspec_fuzz_model_loop_unref(struct lspec_fuzz_model *m, int l, int *ref) {
  struct lspec_fuzz_mloop *lp = &m->loops[l];
  (*ref)--;
  if (lp->ours + lp->ctx_refs + lp->attach_refs == 0 && !lp->gone) {
    lspec_fuzz_model_loop_closed(m, l); /* the last release closes */
    lp->gone = 1;
  }
}

static void detach(struct lspec_fuzz_model *m, int w) {
  struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  int old = wp->attached;
  if (old < 0)
    return;
  wp->attached = -1;
  if (wp->kind == S || wp->kind == F ||
      (wp->kind == P && pidfd_attached_mode(m)))
    lspec_fuzz_model_loop_unref(m, old, &m->loops[old].attach_refs);
}

/* close() (CW-CLOSE-001, CW-CLOSE-004, CW-PIDFD-008): Safe, Fast and Pidfd
 * drop every pending handler.  Threaded and MultiLoop drop the handler of a
 * child still running; one that already ended may have been reaped and
 * queued for its loop before the close, so it may still arrive. */
void lspec_fuzz_model_watcher_closed(struct lspec_fuzz_model *m, int w) {
  struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  if (wp->closed)
    return;
  wp->closed = 1;
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    struct lspec_fuzz_mreg *r = &m->regs[i];
    if (!r->used || r->w != w || r->state != LSPEC_FUZZ_REG_PENDING)
      continue;
    if ((wp->kind == T || wp->kind == M) &&
        (r->child < 0 || m->children[r->child].exec ||
         m->children[r->child].state != LSPEC_FUZZ_CHILD_ALIVE))
      r->certain = 0;
    else
      lspec_fuzz_model_kill_reg(m, i + 1, "CW-CLOSE-001 (closed watcher)");
  }
  wp->zombies = 0;
  /* Safe, Fast (BaseChildWatcher.close) and Pidfd 3.9-3.11 detach. */
  if (wp->kind == S || wp->kind == F || wp->kind == P)
    detach(m, w);
}

void lspec_fuzz_model_watcher_unref(struct lspec_fuzz_model *m, int w,
                                    int *ref) {
  struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  (*ref)--;
  if (wp->ours + wp->policy == 0 && !wp->gone) {
    lspec_fuzz_model_watcher_closed(m, w); /* the last release closes */
    wp->gone = 1;
  }
}

/* The process-wide policy was replaced: the old one is dropped, with the
 * references it held (POL-SET-004: nothing is closed by the switch itself;
 * only objects nobody else holds go). */
void lspec_fuzz_model_policy_replaced(struct lspec_fuzz_model *m) {
  for (int t = 0; t < LSPEC_FUZZ_THREADS; t++) {
    int l = m->pol_loop[t];
    m->pol_loop[t] = -1;
    m->pol_set[t] = 0;
    if (l >= 0)
      lspec_fuzz_model_loop_unref(m, l, &m->loops[l].ctx_refs);
  }
  if (m->pol_watcher >= 0) {
    int w = m->pol_watcher;
    m->pol_watcher = -1;
    lspec_fuzz_model_watcher_unref(m, w, &m->watchers[w].policy);
  }
}

int lspec_fuzz_model_reg(struct lspec_fuzz_model *m, int w, int child, int pid,
                         int loop, unsigned rcs, int certain) {
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++)
    if (!m->regs[i].used) {
      struct lspec_fuzz_mreg *r = &m->regs[i];
      memset(r, 0, sizeof *r);
      r->used = 1;
      r->w = w;
      r->child = child;
      r->pid = pid;
      r->loop = loop;
      r->rcs = rcs;
      r->certain = certain;
      r->state = LSPEC_FUZZ_REG_PENDING;
      if (child >= 0)
        m->children[child].registered = 1;
      return i + 1;
    }
  return 0;
}

int lspec_fuzz_model_pending(const struct lspec_fuzz_model *m, int w, int pid) {
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    const struct lspec_fuzz_mreg *r = &m->regs[i];
    if (r->used && r->w == w && r->pid == pid &&
        r->state == LSPEC_FUZZ_REG_PENDING)
      return i + 1;
  }
  return 0;
}

void lspec_fuzz_model_kill_reg(struct lspec_fuzz_model *m, int id,
                               const char *clause) {
  struct lspec_fuzz_mreg *r = &m->regs[id - 1];
  r->state = LSPEC_FUZZ_REG_DEAD;
  r->dead_clause = clause;
  r->sync_due = 0;
}

/* is_active (CW-ACTIVE-001 doc side, CW-ACTIVE-003, CW-ACTIVE-004).
 * `running_loop`: the model loop running in the calling thread, or -1. */
int lspec_fuzz_model_active(const struct lspec_fuzz_model *m, int w,
                            int running_loop) {
  const struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  switch (wp->kind) {
  case T:
  case M:
    return 1;
  case P:
    if (!pidfd_attached_mode(m))
      return 1;
    /* fall through */
  default: /* Safe, Fast, Pidfd 3.9-3.11: the attached loop runs */
    return wp->attached >= 0 && wp->attached == running_loop &&
           loop_live(m, running_loop);
  }
}

/* attach_loop runs in the loop's owner thread (the main thread for NULL). */
uint32_t lspec_fuzz_model_attach_status(const struct lspec_fuzz_model *m,
                                        int w, int l) {
  const struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  if (l < 0)
    return LSPEC_FUZZ_ST(LSPEC_OK);
  if (wp->kind == S || wp->kind == F) {
    /* CW-ATTACH-006: only from the main thread; a closed loop cannot take
     * the SIGCHLD handler (LOOP: add_signal_handler on a closed loop). */
    if (m->loops[l].owner != 0 || m->loops[l].closed)
      return LSPEC_FUZZ_ST(LSPEC_E_RUNTIME);
  }
  return LSPEC_FUZZ_ST(LSPEC_OK); /* CW-THR-006 and the rest */
}

/* Safe's poll of its registered pids (attach, CW-ATTACH-005). */
static void safe_poll(struct lspec_fuzz_model *m, int w) {
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    struct lspec_fuzz_mreg *r = &m->regs[i];
    if (!r->used || r->w != w || r->state != LSPEC_FUZZ_REG_PENDING)
      continue;
    int ended = r->child < 0 ||
                (!m->children[r->child].exec &&
                 m->children[r->child].state != LSPEC_FUZZ_CHILD_ALIVE);
    if (ended && r->certain && r->rcs)
      r->sync_due = 1;
    if (r->child >= 0 && m->children[r->child].state == LSPEC_FUZZ_CHILD_ENDED)
      m->children[r->child].state = LSPEC_FUZZ_CHILD_REAPED_W;
  }
}

/* Fast's waitpid(-1) at attach: every ended child of ours is reaped. */
static void fast_poll(struct lspec_fuzz_model *m, int w) {
  struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  for (int c = 0; c < LSPEC_FUZZ_CHILDREN; c++) {
    struct lspec_fuzz_mchild *ch = &m->children[c];
    if (ch->state != LSPEC_FUZZ_CHILD_ENDED)
      continue;
    int id = lspec_fuzz_model_pending(m, w, ch->pid);
    if (id) {
      struct lspec_fuzz_mreg *r = &m->regs[id - 1];
      if (r->certain && r->rcs)
        r->sync_due = 1; /* CW-ATTACH-005 */
    } else if (wp->forks > 0 && !ch->registered) {
      wp->zombies |= 1u << c; /* CW-FAST-003: kept for a later add */
    }
    ch->state = LSPEC_FUZZ_CHILD_REAPED_W; /* CW-FAST-001 */
  }
}

void lspec_fuzz_model_attach(struct lspec_fuzz_model *m, int w, int l) {
  struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  int kind = wp->kind;
  if (kind == T || kind == M || (kind == P && !pidfd_attached_mode(m)))
    return; /* nothing to attach (CW-THR-006; MultiLoop ignores it) */
  if (wp->attached == l)
    ; /* re-attach to the same loop */
  else {
    detach(m, w);
    if (l >= 0) {
      wp->attached = l;
      m->loops[l].attach_refs++;
    }
  }
  if (l < 0)
    return;
  /* Subprocess registrations rode on the old attachment. */
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    struct lspec_fuzz_mreg *r = &m->regs[i];
    if (r->used && r->w == w && r->child >= 0 && m->children[r->child].exec)
      r->certain = 0;
  }
  if (kind == S)
    safe_poll(m, w);
  else if (kind == F)
    fast_poll(m, w);
}

/* The state of the child a registration is about, with "may already have
 * been reaped by a watcher" folded in. */
static int child_gone(const struct lspec_fuzz_model *m, int c) {
  int st = m->children[c].state;
  return st == LSPEC_FUZZ_CHILD_REAPED_US || st == LSPEC_FUZZ_CHILD_REAPED_W;
}

static int child_maybe_gone(const struct lspec_fuzz_model *m, int c) {
  const struct lspec_fuzz_mchild *ch = &m->children[c];
  return ch->state == LSPEC_FUZZ_CHILD_ENDED && (ch->registered || m->fast_seen);
}

uint32_t lspec_fuzz_model_add_status(const struct lspec_fuzz_model *m, int w,
                                     int c, int running) {
  const struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  int pid = c < 0 ? 1 : m->children[c].pid;
  int gone = c >= 0 && child_gone(m, c);
  int maybe = c >= 0 && child_maybe_gone(m, c);
  int existing = lspec_fuzz_model_pending(m, w, pid);
  switch (wp->kind) {
  case T: /* CW-THR-002 */
  case M: /* CW-ML-003: through the loop running at registration */
    return running >= 0 ? LSPEC_FUZZ_ST(LSPEC_OK)
                        : LSPEC_FUZZ_ST(LSPEC_E_RUNTIME);
  case S:
    /* CW-SAFE-003: no loop and the child already ended: AttributeError. */
    if (c >= 0 && wp->attached < 0 && !gone &&
        m->children[c].state == LSPEC_FUZZ_CHILD_ENDED)
      return maybe ? LSPEC_FUZZ_ST(LSPEC_E_ATTRIBUTE) | LSPEC_FUZZ_ST(LSPEC_OK)
                   : LSPEC_FUZZ_ST(LSPEC_E_ATTRIBUTE);
    return LSPEC_FUZZ_ST(LSPEC_OK);
  case F: /* CW-FAST-002 */
    return wp->forks > 0 ? LSPEC_FUZZ_ST(LSPEC_OK)
                         : LSPEC_FUZZ_ST(LSPEC_E_ASSERTION);
  case P:
    if (pidfd_attached_mode(m)) {
      if (wp->attached < 0) { /* CW-PIDFD-005; the page orders nothing */
        uint32_t st = LSPEC_FUZZ_ST(LSPEC_E_ATTRIBUTE);
        if (!existing && (gone || maybe))
          st |= LSPEC_FUZZ_ST(LSPEC_E_PROCESS_LOOKUP);
        return st;
      }
    } else if (running < 0) {
      return LSPEC_FUZZ_ST(LSPEC_E_RUNTIME); /* CW-PIDFD-007 */
    }
    if (existing)
      return LSPEC_FUZZ_ST(LSPEC_OK); /* CW-ADD-002: the pidfd stays */
    if (gone)
      return LSPEC_FUZZ_ST(LSPEC_E_PROCESS_LOOKUP); /* CW-PIDFD-004 */
    if (maybe)
      return LSPEC_FUZZ_ST(LSPEC_OK) | LSPEC_FUZZ_ST(LSPEC_E_PROCESS_LOOKUP);
    return LSPEC_FUZZ_ST(LSPEC_OK);
  default:
    return 0;
  }
}

/* Marks every pending registration of child c uncertain: two watchers (or
 * a Fast one) may both try to reap it, and the loser reports 255 or, for
 * Fast, nothing (CW-RC-002, CW-FAST-004). */
static void contest_child(struct lspec_fuzz_model *m, int c) {
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    struct lspec_fuzz_mreg *r = &m->regs[i];
    if (r->used && r->child == c && r->state == LSPEC_FUZZ_REG_PENDING) {
      r->certain = 0;
      if (m->watchers[r->w].kind != F)
        r->rcs |= LSPEC_FUZZ_RC_255;
    }
  }
}

void lspec_fuzz_model_add(struct lspec_fuzz_model *m, int w, int c, int pid,
                          int running, int status, int id) {
  struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  struct lspec_fuzz_mreg *r = &m->regs[id - 1];
  int existing = 0, others = 0;
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    struct lspec_fuzz_mreg *o = &m->regs[i];
    if (i == id - 1 || !o->used || o->pid != pid ||
        o->state != LSPEC_FUZZ_REG_PENDING)
      continue;
    if (o->w == w)
      existing = i + 1;
    else if (c >= 0)
      others = 1;
  }

  if (status != LSPEC_OK && status != LSPEC_E_ATTRIBUTE) {
    /* Failure has no effect (abi.md 2); a Pidfd add that found the pid
     * gone tells us it was reaped. */
    lspec_fuzz_model_kill_reg(m, id, "ABI 2 (failed call)");
    if (status == LSPEC_E_PROCESS_LOOKUP && c >= 0 &&
        m->children[c].state == LSPEC_FUZZ_CHILD_ENDED)
      m->children[c].state = LSPEC_FUZZ_CHILD_REAPED_W;
    return;
  }
  if (status == LSPEC_E_ATTRIBUTE && wp->kind != S) {
    lspec_fuzz_model_kill_reg(m, id, "ABI 2 (failed call)");
    return;
  }

  int alive = c >= 0 && m->children[c].state == LSPEC_FUZZ_CHILD_ALIVE &&
              !m->children[c].exec;
  int ended_unknown = c >= 0 && child_maybe_gone(m, c);
  int gone = c >= 0 && child_gone(m, c);

  /* CW-ADD-002: a second registration replaces the first.  Where the
   * watcher reaps asynchronously (Threaded, MultiLoop) and the child has
   * ended, the first may already have been taken: then it fires and the
   * second finds the pid reaped (255). */
  if (existing) {
    struct lspec_fuzz_mreg *e = &m->regs[existing - 1];
    if ((wp->kind == T || wp->kind == M) && !alive) {
      e->certain = 0;
      r->rcs |= LSPEC_FUZZ_RC_255;
    } else {
      lspec_fuzz_model_kill_reg(m, existing, "CW-ADD-002 (replaced)");
    }
  }

  r->loop = -1;
  switch (wp->kind) {
  case T:
  case M:
    r->loop = running; /* CW-THR-003, CW-ML-003 */
    if (c < 0 || gone)
      r->rcs = LSPEC_FUZZ_RC_255; /* CW-RC-002, CW-RC-003 */
    else if (ended_unknown)
      r->rcs |= LSPEC_FUZZ_RC_255;
    break;
  case S:
    if (status == LSPEC_E_ATTRIBUTE) {
      /* CW-SAFE-003: reaped, kept, and reported 255 at the next attach. */
      r->rcs = LSPEC_FUZZ_RC_255;
      m->children[c].state = LSPEC_FUZZ_CHILD_REAPED_W;
      if (ended_unknown)
        r->certain = 0;
      break;
    }
    if (c < 0 || gone) {
      r->rcs = LSPEC_FUZZ_RC_255; /* CW-RC-002/003, synchronously */
      r->sync_due = r->certain;
    } else if (!alive && !m->children[c].exec) {
      /* CW-SAFE-002: an ended child is reported inside add. */
      if (ended_unknown) {
        r->rcs |= LSPEC_FUZZ_RC_255;
        r->certain = 0;
      } else {
        r->sync_due = 1;
      }
      m->children[c].state = LSPEC_FUZZ_CHILD_REAPED_W;
    }
    break;
  case F:
    if (c >= 0 && (wp->zombies & (1u << c))) {
      wp->zombies &= ~(1u << c); /* CW-FAST-003 */
      r->sync_due = r->certain;
    } else if (c < 0 || gone) {
      r->rcs = 0; /* CW-FAST-004: never reported */
    } else if (!alive) {
      r->certain = 0; /* ended: reaped at some later SIGCHLD, or lost */
    }
    break;
  case P:
    if (!pidfd_attached_mode(m))
      r->loop = running; /* CW-PIDFD-007 */
    if (c < 0)
      r->rcs = 0; /* pid 1 never ends */
    else if (gone)
      r->rcs = LSPEC_FUZZ_RC_255; /* replaced registration, pid reaped */
    else if (ended_unknown)
      r->rcs |= LSPEC_FUZZ_RC_255;
    break;
  default:
    break;
  }
  if (others)
    contest_child(m, c);
  if (c >= 0)
    m->children[c].registered = 1;
}

unsigned lspec_fuzz_model_remove_answers(const struct lspec_fuzz_model *m,
                                         int w, int pid) {
  const struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
  int id = lspec_fuzz_model_pending(m, w, pid);
  if (!id)
    return 1u << 0; /* CW-REMOVE-002 */
  const struct lspec_fuzz_mreg *r = &m->regs[id - 1];
  int alive = r->child >= 0 && !m->children[r->child].exec &&
              m->children[r->child].state == LSPEC_FUZZ_CHILD_ALIVE;
  /* Threaded and MultiLoop reap in their own thread: an ended child may
   * already be taken (its callback then still arrives). */
  if ((wp->kind == T || wp->kind == M) && !alive)
    return (1u << 0) | (1u << 1);
  if (!r->certain && r->rcs)
    return (1u << 0) | (1u << 1);
  return 1u << 1; /* CW-REMOVE-001 */
}

void lspec_fuzz_model_remove(struct lspec_fuzz_model *m, int w, int pid,
                             int answer) {
  int id = lspec_fuzz_model_pending(m, w, pid);
  if (!id)
    return;
  /* 1: removed, never to be called.  0 (Threaded, MultiLoop: the exit was
   * taken before the removal): it stays pending and must still arrive. */
  if (answer == 1)
    lspec_fuzz_model_kill_reg(m, id, "CW-REMOVE-001 (removed)");
}

const char *lspec_fuzz_model_child_ended(struct lspec_fuzz_model *m, int c,
                                         int reaped_by_us, int echild) {
  struct lspec_fuzz_mchild *ch = &m->children[c];
  int was_alive = ch->state == LSPEC_FUZZ_CHILD_ALIVE;
  const char *finding = NULL;

  if (echild) {
    /* Someone reaped it: only a watcher it was given, or Fast, may
     * (CW-POLL-001, CW-PIDFD-002). */
    if (!ch->registered && !m->fast_seen)
      finding = "CW-POLL-001";
    ch->state = LSPEC_FUZZ_CHILD_REAPED_W;
  } else if (reaped_by_us) {
    ch->state = LSPEC_FUZZ_CHILD_REAPED_US;
    /* The watchers find it gone: 255 (CW-RC-002), Fast nothing
     * (CW-FAST-004). */
    for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
      struct lspec_fuzz_mreg *r = &m->regs[i];
      if (!r->used || r->child != c || r->state != LSPEC_FUZZ_REG_PENDING)
        continue;
      r->rcs = m->watchers[r->w].kind == F ? 0 : LSPEC_FUZZ_RC_255;
    }
  } else if (was_alive) {
    ch->state = LSPEC_FUZZ_CHILD_ENDED;
  }
  /* A Fast watcher reaps every child on its loop's next SIGCHLD: ours
   * become uncertain for everyone but that Fast watcher. */
  return finding;
}

const char *lspec_fuzz_model_fire(struct lspec_fuzz_model *m, int id, int pid,
                                  int rc, int thread, char *why, size_t n) {
  if (id < 1 || id > LSPEC_FUZZ_MAX_REGS || !m->regs[id - 1].used) {
    snprintf(why, n, "callback with an argument nobody registered (%d)", id);
    return "ABI 8";
  }
  struct lspec_fuzz_mreg *r = &m->regs[id - 1];
  const struct lspec_fuzz_mwatcher *wp = &m->watchers[r->w];
  if (pid != r->pid) {
    snprintf(why, n, "registration %d for pid %d called with pid %d", id,
             r->pid, pid);
    return "CW-ADD-001";
  }
  if (r->state == LSPEC_FUZZ_REG_FIRED) {
    snprintf(why, n, "registration %d (pid %d) called a second time", id, pid);
    return "CW-ONCE-001";
  }
  if (r->state == LSPEC_FUZZ_REG_DEAD) {
    snprintf(why, n, "registration %d (pid %d, rc %d) called after it was "
             "dropped: %s", id, pid, rc, r->dead_clause);
    return r->dead_clause;
  }
  int real = r->child >= 0 ? m->children[r->child].fate : -1000;
  int ok = ((r->rcs & LSPEC_FUZZ_RC_REAL) && rc == real) ||
           ((r->rcs & LSPEC_FUZZ_RC_255) && rc == 255);
  if (!ok) {
    snprintf(why, n, "registration %d (pid %d) called with returncode %d; "
             "allowed:%s%s%s", id, pid, rc,
             r->rcs & LSPEC_FUZZ_RC_REAL ? " the child's status" : "",
             r->rcs & LSPEC_FUZZ_RC_255 ? " 255" : "",
             r->rcs ? "" : " no call at all");
    return r->rcs == 0 ? "CW-FAST-004" : (rc == 255 ? "CW-RC-002" : "CW-ADD-001");
  }
  /* The delivering thread: the loop's owner (CW-THR-003, CW-ML-003,
   * CW-PIDFD-006/007, SUB-EXEC-003). */
  int loop = r->loop;
  if (loop < 0 && wp->kind == P)
    loop = wp->attached;
  if ((r->loop >= 0 || wp->kind == P) && loop >= 0 &&
      thread != m->loops[loop].owner) {
    snprintf(why, n, "registration %d (pid %d) called in thread T%d, not in "
             "T%d of the loop that delivers it", id, pid, thread,
             m->loops[loop].owner);
    return "CW-THR-003";
  }
  r->state = LSPEC_FUZZ_REG_FIRED;
  r->sync_due = 0;
  if (r->child >= 0 && rc != 255 &&
      m->children[r->child].state != LSPEC_FUZZ_CHILD_REAPED_US)
    m->children[r->child].state = LSPEC_FUZZ_CHILD_REAPED_W;
  return NULL;
}

uint64_t lspec_fuzz_model_required(const struct lspec_fuzz_model *m,
                                   uint32_t running) {
  uint64_t need = 0;
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    const struct lspec_fuzz_mreg *r = &m->regs[i];
    if (!r->used || r->state != LSPEC_FUZZ_REG_PENDING || !r->certain ||
        !r->rcs)
      continue;
    const struct lspec_fuzz_mwatcher *wp = &m->watchers[r->w];
    int ended = r->child < 0 || m->children[r->child].exec ||
                m->children[r->child].state != LSPEC_FUZZ_CHILD_ALIVE;
    if (!ended)
      continue;
    int loop = r->loop >= 0 ? r->loop : wp->attached;
    if (loop < 0 || !loop_live(m, loop) || !(running & (1u << loop)))
      continue;
    if (r->loop < 0 && wp->closed)
      continue;
    need |= UINT64_C(1) << i;
  }
  return need;
}

void lspec_fuzz_model_settle(struct lspec_fuzz_model *m) {
  int users = 0, fast = 0;
  for (int w = 0; w < LSPEC_FUZZ_MAX_OBJ; w++) {
    const struct lspec_fuzz_mwatcher *wp = &m->watchers[w];
    if (!wp->used || wp->closed || wp->gone)
      continue;
    if (wp->kind == M)
      users++;
    if ((wp->kind == S || wp->kind == F) && loop_live(m, wp->attached)) {
      users++;
      fast |= wp->kind == F;
    }
  }
  /* One SIGCHLD disposition for the process: with two users at once, one
   * of them may miss exits (LOOP: one loop owns a signal at a time). */
  if (users >= 2)
    m->sigchld_conflict = 1;
  if (fast)
    m->fast_seen = 1;
  for (int i = 0; i < LSPEC_FUZZ_MAX_REGS; i++) {
    struct lspec_fuzz_mreg *r = &m->regs[i];
    if (!r->used || r->state != LSPEC_FUZZ_REG_PENDING)
      continue;
    int kind = m->watchers[r->w].kind;
    if (m->sigchld_conflict && (kind == S || kind == F || kind == M)) {
      r->certain = 0;
      if (kind != F)
        r->rcs |= r->rcs ? LSPEC_FUZZ_RC_255 : 0;
    }
    /* CW-FAST-001: Fast reaps every child, so other watchers may find
     * theirs gone (255) (the page: Fast breaks other waiters). */
    if (m->fast_seen && kind != F && r->child >= 0) {
      r->certain = 0;
      r->rcs |= r->rcs ? LSPEC_FUZZ_RC_255 : 0;
    }
  }
}
