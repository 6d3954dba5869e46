LH_TEST(loop, untagged) {
}

/*--- test: other_name clauses: [LOOP-TAG-001] ---*/
LH_TEST(loop, mismatched) {
}

/*--- test: floating clauses: [LOOP-TAG-001] ---*/
static int x;

/*--- test: no_clauses ---*/
LH_TEST(loop, no_clauses) {
}

/*--- test: bad_key clauses: [LOOP-TAG-001] colour: blue ---*/
LH_TEST(loop, bad_key) {
}
