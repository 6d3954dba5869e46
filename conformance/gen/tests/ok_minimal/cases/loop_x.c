/*--- test: reader_case clauses: [LOOP-OK-002, LOOP-OK-001] caps: [signals] timeout: 3 ---*/
LH_TEST(loop, reader_case) {
}
