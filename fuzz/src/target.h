/* target.h - the fuzz target shared by every driver (libFuzzer, AFL++,
 * the replay tool): loads the implementation named by LSPEC_FUZZ_IMPL,
 * sets the profile named by LSPEC_FUZZ_PROFILE, and runs one input.
 */
#ifndef LSPEC_FUZZ_TARGET_H
#define LSPEC_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "exec.h"

/* Loads and checks the implementation once.  Exits the process with status
 * 2 and one line on stderr when it cannot be used. */
void lspec_fuzz_init(void);

/* Runs one input; returns 0, or 1 with *finding filled.  `trace` may be
 * NULL. */
int lspec_fuzz_one(const uint8_t *data, size_t size, FILE *trace,
                   struct lspec_fuzz_finding *finding);

/* Prints a finding and the program that produced it. */
void lspec_fuzz_report(FILE *f, const uint8_t *data, size_t size,
                       const struct lspec_fuzz_finding *finding);

#endif /* LSPEC_FUZZ_TARGET_H */
