/*--- test: ghost_case clauses: [LOOP-NOPE-001] ---*/
LH_TEST(loop, ghost_case) {
}

/*--- test: retired_case clauses: [LOOP-REAL-001, LOOP-OLD-001] ---*/
LH_TEST(loop, retired_case) {
}
