/* target.c - the fuzz target: implementation and profile selection, and
 * one input run through the decoder, the executor and the model.
 *
 * LSPEC_FUZZ_IMPL: empty or "reference" for the reference linked in, or
 * the path of a shared object exporting lspec_impl_v1 (as loopspec-conform
 * --impl).  LSPEC_FUZZ_PROFILE: "3.11" or "3.12" (default 3.12).
 */
#include "target.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "impl_load.h"
#include "program.h"

static const struct lspec_impl *impl;
static int profile_minor;

void lspec_fuzz_init(void) {
  const char *path = getenv("LSPEC_FUZZ_IMPL");
  const char *prof = getenv("LSPEC_FUZZ_PROFILE");
  char why[256];
  int rc;

  if (impl)
    return;
  if (path && strcmp(path, "reference") == 0)
    path = NULL;
  if (lh_load_impl(path, &impl, why, sizeof why) != 0) {
    fprintf(stderr, "loopspec-fuzz: %s: %s\n", path ? path : "reference", why);
    exit(2);
  }
  profile_minor = 12;
  if (prof && *prof) {
    if (strcmp(prof, "3.11") == 0)
      profile_minor = 11;
    else if (strcmp(prof, "3.12") != 0) {
      fprintf(stderr, "loopspec-fuzz: LSPEC_FUZZ_PROFILE=%s: the model knows "
                      "3.11 and 3.12\n", prof);
      exit(2);
    }
  }
  rc = impl->set_profile(LSPEC_PROFILE(3, profile_minor));
  if (rc != LSPEC_OK) {
    fprintf(stderr, "loopspec-fuzz: %s cannot take profile 3.%d: %s\n",
            impl->name, profile_minor, impl->last_error());
    exit(2);
  }
  /* A child killed by SIGPIPE must not take us with it. */
  signal(SIGPIPE, SIG_IGN);
  /* One empty program first: an implementation that sets itself up on
   * first use (an embedded interpreter opening descriptors, starting
   * threads) does so outside every measured program. */
  {
    static struct lspec_fuzz_program empty;
    struct lspec_fuzz_finding ignored;
    (void)lspec_fuzz_execute(impl, profile_minor, &empty, NULL, &ignored);
  }
}

int lspec_fuzz_one(const uint8_t *data, size_t size, FILE *trace,
                   struct lspec_fuzz_finding *finding) {
  static struct lspec_fuzz_program prog;
  lspec_fuzz_init();
  lspec_fuzz_decode(data, size, &prog);
  return lspec_fuzz_execute(impl, profile_minor, &prog, trace, finding);
}

void lspec_fuzz_report(FILE *f, const uint8_t *data, size_t size,
                       const struct lspec_fuzz_finding *finding) {
  static struct lspec_fuzz_program prog;
  lspec_fuzz_decode(data, size, &prog);
  fprintf(f, "loopspec-fuzz: FINDING against %s %s, profile 3.%d\n",
          impl ? impl->name : "?", impl ? impl->version : "?", profile_minor);
  fprintf(f, "  clause: %s\n  at: %s%d\n  what: %s\n  program:\n",
          finding->clause, finding->op < 0 ? "end-of-program checks " : "operation ",
          finding->op < 0 ? 0 : finding->op, finding->text);
  for (unsigned i = 0; i < prog.n; i++) {
    fprintf(f, "    %2u: ", i);
    lspec_fuzz_op_print(f, &prog.ops[i]);
    fputc('\n', f);
  }
}
