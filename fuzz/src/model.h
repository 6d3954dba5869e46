/* model.h - the oracle: a small model of the clauses that says, for each
 * operation of a program, which statuses the implementation may answer and
 * which child callbacks (registration, pid, returncode, thread) may, must
 * or must not arrive.
 *
 * The model is written from spec/clauses (watcher.toml, policy.toml,
 * subprocess.toml, loop.toml), following the page where it and CPython
 * disagree (--follow doc), for profiles 3.11 and 3.12.  It never calls an
 * implementation.  Where the clauses leave a race open it keeps a set of
 * outcomes: a registration that may fire but need not ("uncertain"), with
 * the returncodes it may carry; or two outcomes told apart by what the
 * implementation answered (remove_child_handler's 1 or 0).
 */
#ifndef LSPEC_FUZZ_MODEL_H
#define LSPEC_FUZZ_MODEL_H

#include <stdint.h>

#include "program.h"

#define LSPEC_FUZZ_MAX_OBJ 24 /* loops or watchers made in one program */
#define LSPEC_FUZZ_MAX_REGS 64

/* Allowed statuses: bit (-status), so OK is bit 0. */
#define LSPEC_FUZZ_ST(status) (UINT32_C(1) << (-(status)))

enum lspec_fuzz_child_state {
  LSPEC_FUZZ_CHILD_NONE,      /* slot empty */
  LSPEC_FUZZ_CHILD_ALIVE,     /* running (an exec child may end any time) */
  LSPEC_FUZZ_CHILD_ENDED,     /* ended, not reaped by us */
  LSPEC_FUZZ_CHILD_REAPED_US, /* we reaped it */
  LSPEC_FUZZ_CHILD_REAPED_W   /* an implementation reaped it */
};

enum lspec_fuzz_reg_state {
  LSPEC_FUZZ_REG_PENDING, /* may still fire */
  LSPEC_FUZZ_REG_FIRED,
  LSPEC_FUZZ_REG_DEAD /* must never fire */
};

/* Returncode sets of a registration. */
#define LSPEC_FUZZ_RC_REAL 1u /* the child's own status */
#define LSPEC_FUZZ_RC_255 2u  /* "reaped elsewhere" */

struct lspec_fuzz_mloop {
  int used, owner, closed, gone;
  int ours, ctx_refs, attach_refs; /* who holds it */
};

struct lspec_fuzz_mwatcher {
  int used, kind, closed, gone;
  int attached;   /* model loop, or -1 */
  int forks;      /* Fast: enter depth */
  int ours;       /* our references */
  int policy;     /* held by the current policy */
  uint32_t zombies; /* Fast: child slots it reaped inside enter, unclaimed */
};

struct lspec_fuzz_mchild {
  int state; /* enum lspec_fuzz_child_state */
  int pid, fate, exec;
  int registered; /* some watcher was ever given it */
};

struct lspec_fuzz_mreg {
  int used, w, child; /* child slot, or -1 for the foreign pid */
  int pid;
  int loop;     /* model loop that delivers it, or -1: the watcher's own */
  unsigned rcs; /* LSPEC_FUZZ_RC_* that may arrive; 0: never fires */
  int certain;  /* must fire once deliverable (else it only may) */
  int state;
  int sync_due; /* must have fired by the end of the current operation */
  const char *dead_clause; /* why it is dead */
};

struct lspec_fuzz_model {
  int profile; /* 11 or 12 */
  struct lspec_fuzz_mloop loops[LSPEC_FUZZ_MAX_OBJ];
  struct lspec_fuzz_mwatcher watchers[LSPEC_FUZZ_MAX_OBJ];
  struct lspec_fuzz_mchild children[LSPEC_FUZZ_CHILDREN];
  struct lspec_fuzz_mreg regs[LSPEC_FUZZ_MAX_REGS];
  int loop_slot[LSPEC_FUZZ_LOOPS];       /* model loop or -1 */
  int watcher_slot[LSPEC_FUZZ_WATCHERS]; /* model watcher or -1 */
  /* The current policy. */
  int pol_watcher;                     /* model watcher or -1 */
  int pol_loop[LSPEC_FUZZ_THREADS];    /* each thread's context, or -1 */
  int pol_set[LSPEC_FUZZ_THREADS];     /* set_event_loop was called */
  int sigchld_conflict; /* two SIGCHLD users were alive at once (sticky) */
  int fast_seen;        /* a Fast watcher was attached (sticky) */
};

void lspec_fuzz_model_init(struct lspec_fuzz_model *m, int profile);

/* Object bookkeeping. */
int lspec_fuzz_model_new_loop(struct lspec_fuzz_model *m, int owner);
int lspec_fuzz_model_new_watcher(struct lspec_fuzz_model *m, int kind);
void lspec_fuzz_model_loop_unref(struct lspec_fuzz_model *m, int l,
                                 int *ref);
void lspec_fuzz_model_watcher_unref(struct lspec_fuzz_model *m, int w,
                                    int *ref);
void lspec_fuzz_model_loop_closed(struct lspec_fuzz_model *m, int l);
void lspec_fuzz_model_watcher_closed(struct lspec_fuzz_model *m, int w);
void lspec_fuzz_model_policy_replaced(struct lspec_fuzz_model *m);

/* Registrations.  Returns the new registration's id (1-based), 0 when the
 * table is full. */
int lspec_fuzz_model_reg(struct lspec_fuzz_model *m, int w, int child,
                         int pid, int loop, unsigned rcs, int certain);
int lspec_fuzz_model_pending(const struct lspec_fuzz_model *m, int w, int pid);
void lspec_fuzz_model_kill_reg(struct lspec_fuzz_model *m, int id,
                               const char *clause);

/* Watcher behaviour, per kind and profile. */
int lspec_fuzz_model_active(const struct lspec_fuzz_model *m, int w,
                            int running_loop);
/* attach_loop(w, l): what it answers, and its effects when it succeeds. */
uint32_t lspec_fuzz_model_attach_status(const struct lspec_fuzz_model *m,
                                        int w, int l);
void lspec_fuzz_model_attach(struct lspec_fuzz_model *m, int w, int l);
/* add_child_handler: the statuses allowed; then what it did. */
uint32_t lspec_fuzz_model_add_status(const struct lspec_fuzz_model *m, int w,
                                     int child, int running_loop);
void lspec_fuzz_model_add(struct lspec_fuzz_model *m, int w, int child,
                          int pid, int running_loop, int status, int reg_id);
/* remove_child_handler: allowed answers as a mask of 1 << answer. */
unsigned lspec_fuzz_model_remove_answers(const struct lspec_fuzz_model *m,
                                         int w, int pid);
void lspec_fuzz_model_remove(struct lspec_fuzz_model *m, int w, int pid,
                             int answer);

/* A child ended (END) or was reaped by us (REAP); `echild`: the wait found
 * it already reaped.  Returns a clause id when that is a finding. */
const char *lspec_fuzz_model_child_ended(struct lspec_fuzz_model *m, int c,
                                         int reaped_by_us, int echild);

/* A callback arrived.  Returns NULL, or a finding's clause id with a
 * message in why. */
const char *lspec_fuzz_model_fire(struct lspec_fuzz_model *m, int id, int pid,
                                  int rc, int thread, char *why, size_t n);

/* The registrations (bit id-1) that must fire while the model loops in
 * `running` (bit per model loop) run. */
uint64_t lspec_fuzz_model_required(const struct lspec_fuzz_model *m,
                                   uint32_t running);

/* After every operation: the sticky uncertainties. */
void lspec_fuzz_model_settle(struct lspec_fuzz_model *m);

#endif /* LSPEC_FUZZ_MODEL_H */
