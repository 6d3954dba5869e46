/* consumer.c - calls the installed reference through the ABI: checks the
 * table's header and creates, runs and closes a loop. */
#include <loopspec/abi.h>
#include <stdio.h>
#include <string.h>

static void on_soon(void *arg) { *(int *)arg += 1; }
static int done(void *arg) { return *(int *)arg > 0; }

int main(void) {
  const struct lspec_impl *impl = lspec_impl_v1();
  lspec_loop *loop = NULL;
  int hits = 0;
  if (impl->abi_version != LSPEC_ABI_VERSION || impl->size < LSPEC_IMPL_V1_MIN_SIZE ||
      strcmp(impl->name, "loopspec-reference") != 0) {
    fprintf(stderr, "consumer: bad table\n");
    return 1;
  }
  if (impl->new_event_loop(&loop) != LSPEC_OK ||
      impl->loop_call_soon(loop, on_soon, &hits, NULL) != LSPEC_OK ||
      impl->loop_run_until(loop, done, &hits, 5.0) != LSPEC_OK ||
      impl->loop_close(loop) != LSPEC_OK) {
    fprintf(stderr, "consumer: %s\n", impl->last_error());
    return 1;
  }
  impl->loop_release(loop);
  printf("consumer: %s %s ok (%d)\n", impl->name, impl->version, hits);
  return hits == 1 ? 0 : 1;
}
