/* main.c - loopspec-bench: measures child-watching strategies through the
 * loopspec ABI against the kernel's spawn + waitpid limit.  The same
 * program is the orchestrator (plan.c) and, re-executed with --worker, the
 * process that measures one configuration (worker.c).  bench/README.md
 * describes the scenarios and the method. */
#include "bench.h"

int main(int argc, char **argv) {
  static struct lb_options o;
  int rc = lb_parse_options(argc, argv, &o);

  if (rc == 1)
    return 0;
  if (rc != 0)
    return 2;
  if (o.worker)
    return lb_worker_main(&o);
  return lb_plan_main(&o, argc, argv);
}
