/* libfuzzer.c - the libFuzzer entry: a finding is reported and aborts, so
 * libFuzzer keeps the input as a crash artifact (and -minimize_crash=1
 * shrinks it). */
#include <stdlib.h>

#include "target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  lspec_fuzz_init();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct lspec_fuzz_finding finding;
  if (lspec_fuzz_one(data, size, NULL, &finding)) {
    lspec_fuzz_report(stderr, data, size, &finding);
    abort();
  }
  return 0;
}
