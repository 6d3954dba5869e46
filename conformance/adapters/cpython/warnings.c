/* warnings.c - the ABI's warnings hook: set from any thread, called from any
 * thread (glue.py forwards warnings.showwarning and the 'asyncio' logger's
 * records here).  The GIL is dropped while the hook runs, so the hook may
 * take its own locks and call back into the ABI.
 */
#include "adapter.h"

#include <pthread.h>

static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static lspec_warning_hook hook_fn;
static void *hook_user;

void ls_set_warning_hook(lspec_warning_hook hook, void *user) {
  pthread_mutex_lock(&hook_lock);
  hook_fn = hook;
  hook_user = user;
  pthread_mutex_unlock(&hook_lock);
}

void ls_emit_warning(int category, const char *text) {
  lspec_warning_hook fn;
  void *user;

  pthread_mutex_lock(&hook_lock);
  fn = hook_fn;
  user = hook_user;
  pthread_mutex_unlock(&hook_lock);
  if (fn == NULL)
    return;
  Py_BEGIN_ALLOW_THREADS fn(user, category, text);
  Py_END_ALLOW_THREADS
}
