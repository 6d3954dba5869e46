/* tsan_shim/criterion/criterion.h - a stand-in for the part of Criterion
 * 2.4's API that reference/tests use, for ThreadSanitizer builds only.
 *
 * Criterion cannot start under ThreadSanitizer: BoxFort looks for room for
 * its inheritable arena inside address ranges TSan reserves, and aborts
 * with "Could not initialize inheritable arena" (Snaipe/Criterion#274,
 * open).  So the tsan build compiles the same test sources against this
 * header instead, and runner.c runs every test in a forked child with a
 * timeout, as Criterion runs each in its own worker.  The conformance
 * suite (its generated tests, hand-written cases and harness) is compiled
 * against it too, into loopspec-conform-tsan (conformance/CMakeLists.txt).
 *
 * Supported, with Criterion's meaning:
 *   - Test() and TestSuite() with .init, .fini, .timeout, .disabled,
 *     .signal, .exit_code and .description;
 *   - cr_assert(cond) and cr_assert(cond, "format", ...): a failure fails
 *     the test and ends it; on the test's own thread the fixtures' .fini
 *     still run, as Criterion's longjmp to the teardown does;
 *   - cr_skip_test() and cr_skip_test("format", ...), and cr_skip("format",
 *     ...): ends the test, which is reported as skipped (not passed) with
 *     the message; .fini does not run, as in Criterion, whose skip exits
 *     the worker;
 *   - cr_log_info/cr_log_warn/cr_log_error("format", ...);
 *   - the typed comparisons of <criterion/new/assert.h>.
 * Messages are printf formats and must be string literals (the macros
 * paste them after one).  Anything else (parameterized tests, theories,
 * cr_expect, the old cr_assert_eq family) fails to compile, which is the
 * point: extend the shim rather than have a test silently mean something
 * else here.
 */
#ifndef LSPEC_TSAN_SHIM_CRITERION_H
#define LSPEC_TSAN_SHIM_CRITERION_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Options of a suite or a test (Criterion's field names). */
struct lt_shim_options {
  void (*init)(void); /* runs before the test, in its process */
  void (*fini)(void); /* runs after the test, unless it skipped or crashed */
  double timeout;     /* seconds; 0 = the runner's default */
  int disabled;       /* reported as skipped, not run */
  int signal;         /* the test must die of this signal */
  int exit_code;      /* the test must exit with this status */
  const char *description;
};

struct lt_shim_test {
  const char *suite;              /* suite name */
  const char *name;               /* test name */
  void (*fn)(void);               /* the body */
  struct lt_shim_options options; /* the test's own options */
  struct lt_shim_test *next;      /* registration list */
};

struct lt_shim_suite {
  const char *name;               /* suite name */
  struct lt_shim_options options; /* the suite's options */
  struct lt_shim_suite *next;     /* registration list */
};

void lt_shim_register_test(struct lt_shim_test *t);
void lt_shim_register_suite(struct lt_shim_suite *s);

/* The formats below always start with one padding space, which the macros
 * put in front of the caller's (possibly absent) message; the functions
 * drop it.  This keeps printf format checking on the caller's literal. */
void lt_shim_fail(const char *file, int line, const char *expr, const char *fmt,
                  ...) __attribute__((noreturn, format(printf, 4, 5)));
void lt_shim_skip(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
void lt_shim_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define TestSuite(suite, ...)                                                  \
  static struct lt_shim_suite lt_shim_suite_##suite = {                        \
      #suite, {__VA_ARGS__}, NULL};                                            \
  __attribute__((constructor)) static void lt_shim_suite_ctor_##suite(void) {  \
    lt_shim_register_suite(&lt_shim_suite_##suite);                            \
  }                                                                            \
  extern int lt_shim_semicolon_##suite

#define Test(suite, name, ...)                                                 \
  static void lt_shim_fn_##suite##_##name(void);                               \
  static struct lt_shim_test lt_shim_test_##suite##_##name = {                 \
      #suite, #name, lt_shim_fn_##suite##_##name, {__VA_ARGS__}, NULL};        \
  __attribute__((constructor)) static void lt_shim_ctor_##suite##_##name(      \
      void) {                                                                  \
    lt_shim_register_test(&lt_shim_test_##suite##_##name);                     \
  }                                                                            \
  static void lt_shim_fn_##suite##_##name(void)

/* cr_assert(condition) or cr_assert(condition, "format", ...). */
#define cr_assert(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond))                                                               \
      lt_shim_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                \
  } while (0)

/* cr_skip_test() or cr_skip_test("format", ...). */
#define cr_skip_test(...) lt_shim_skip(" " __VA_ARGS__)
/* cr_skip("format", ...): Criterion's skip with a message. */
#define cr_skip(...) lt_shim_skip(" " __VA_ARGS__)

#define cr_log_info(...) lt_shim_log("----", " " __VA_ARGS__)
#define cr_log_warn(...) lt_shim_log("WARN", " " __VA_ARGS__)
#define cr_log_error(...) lt_shim_log("ERR ", " " __VA_ARGS__)

#endif /* LSPEC_TSAN_SHIM_CRITERION_H */
