/*--- test: cw_bad_kind_tag clauses: [CW-DSL-001] kinds: [THREADED, FORK] ---*/
LH_TEST(cw, cw_bad_kind_tag) {}
