/* plant.h - negative controls: the known bugs that a build of the reference
 * can carry on purpose, one at a time, so that ci/negative-controls can
 * check that the conformance suite catches each of them.
 *
 * A bug is selected at configure time (cmake -DLSPEC_PLANT=NAME), which
 * compiles the reference with LSPEC_PLANT_SELECTED=LSPEC_PLANT_NAME and
 * gives the implementation the version "X.Y.Z+plant:NAME".  At each site the
 * wrong behaviour sits behind
 *
 *     if (LSPEC_PLANTED(NAME)) { ...the bug... }
 *
 * LSPEC_PLANTED(NAME) is an integer constant expression: 0 in every build
 * that selects no bug (the default), so the compiler drops the branch and
 * the normal reference is unchanged.  A site naming a bug that is not listed
 * below does not compile.
 *
 * Each bug is named after the clause it violates (CW-FAST-003 gives
 * CW_FAST_003).  ci/negative-controls.toml describes each one: the clauses,
 * what the bug does, and the exact tests that must fail.  Adding a bug:
 * list it here, plant it, and describe it there.
 */
#ifndef LSPEC_REFERENCE_PLANT_H
#define LSPEC_REFERENCE_PLANT_H

enum lspec__plant {
  LSPEC_PLANT_NONE = 0,
  /* Policies. */
  LSPEC_PLANT_POL_SET_003,
  LSPEC_PLANT_POL_SETARG_002,
  LSPEC_PLANT_POL_ABC_002,
  LSPEC_PLANT_POL_CUSTOM_002,
  LSPEC_PLANT_POL_WATCHDEP_001,
  /* Event loops, and the policy's loop methods. */
  LSPEC_PLANT_LOOP_IMPL_001,
  LSPEC_PLANT_LOOP_IMPL_003,
  LSPEC_PLANT_LOOP_IMPL_006,
  LSPEC_PLANT_LOOP_SET_003,
  LSPEC_PLANT_LOOP_MODGET_001,
  LSPEC_PLANT_LOOP_STOP_001,
  LSPEC_PLANT_LOOP_CLOSE_002,
  LSPEC_PLANT_LOOP_READER_003,
  /* Child watchers. */
  LSPEC_PLANT_CW_SET_002,
  LSPEC_PLANT_CW_RC_001,
  LSPEC_PLANT_CW_THR_003,
  LSPEC_PLANT_CW_ML_004,
  LSPEC_PLANT_CW_SAFE_002,
  LSPEC_PLANT_CW_REMOVE_002,
  LSPEC_PLANT_CW_ACTIVE_003,
  LSPEC_PLANT_CW_CLOSE_004,
  LSPEC_PLANT_CW_FAST_003,
  LSPEC_PLANT_CW_PIDFD_002,
  /* Subprocesses. */
  LSPEC_PLANT_SUB_INACTIVE_001,
  LSPEC_PLANT_SUB_EXEC_003,
  LSPEC_PLANT_SUB_WATCHER_001
};

#ifndef LSPEC_PLANT_SELECTED
#define LSPEC_PLANT_SELECTED LSPEC_PLANT_NONE
#endif

/* 1 when the build plants bug NAME, else 0; a compile-time constant. */
#define LSPEC_PLANTED(name) (LSPEC_PLANT_SELECTED == LSPEC_PLANT_##name)

#endif /* LSPEC_REFERENCE_PLANT_H */
