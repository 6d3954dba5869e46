/* interp.c - the embedded interpreter: started once in the process (in the
 * main thread, from lspec_impl_v1), made visible to Debian's extension
 * modules, left without the GIL so that any thread can take it; threads that
 * call in stay attached to Python until they exit (so threading.local, the
 * default policy's per-thread state, survives between calls); a fork made by
 * C code is announced to Python as os.fork() would announce it.
 */
#include "adapter.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "glue_py.h" /* generated from glue.py: ls_glue_source[] */

static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static int start_status = -1; /* 0 once started */
static char start_why[512] = "not started";
static PyObject *glue;           /* the module _loopspec_glue */
static pthread_key_t detach_key; /* set in threads attached by ls_enter */

static __thread int tl_attached;  /* this thread has a lasting tstate */
static __thread int tl_fork_ours; /* the fork handlers took the GIL */
static __thread PyGILState_STATE tl_fork_state;

const char *ls_start_error(void) { return start_why; }
PyObject *ls_glue(void) { return glue; }

/* Debian builds its extension modules (lib-dynload/_asyncio*.so, ...)
 * without a link to libpython: they find its symbols in the global scope.
 * The runner loads this object RTLD_LOCAL, which keeps libpython (loaded as
 * our dependency) out of that scope; reopening it RTLD_GLOBAL|RTLD_NOLOAD
 * puts it there without loading anything new. */
static int promote_libpython(void) {
  Dl_info info;
  void *self;
  if (dladdr((void *)&Py_InitializeFromConfig, &info) == 0 ||
      info.dli_fname == NULL) {
    snprintf(start_why, sizeof start_why, "cannot find libpython: %s",
             dlerror());
    return -1;
  }
  self = dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  if (self == NULL) {
    snprintf(start_why, sizeof start_why, "cannot reopen %s globally: %s",
             info.dli_fname, dlerror());
    return -1;
  }
  /* The handle is kept: libpython stays loaded and global for good. */
  return 0;
}

/* Thread exit: drop the thread state ls_enter() kept, which clears the
 * thread's threading.local values (a policy's loop of this thread). */
static void detach_thread(void *unused) {
  PyThreadState *ts;
  (void)unused;
  ts = PyGILState_GetThisThreadState();
  if (ts == NULL)
    return;
  PyEval_RestoreThread(ts);
  PyGILState_Release(PyGILState_UNLOCKED);
}

/* A fork made by C code (the test, its harness) without the GIL is, for
 * Python, os.fork(): the before/after hooks run and the child's Python knows
 * it is alone (and which thread is its main thread).  A fork made by Python
 * itself (subprocess, os.fork, uvloop's spawn) holds the GIL: left alone. */
static void fork_prepare(void) {
  tl_fork_ours = 0;
  if (start_status != 0 || PyGILState_Check())
    return;
  tl_fork_state = ls_enter();
  PyOS_BeforeFork();
  tl_fork_ours = 1;
}

static void fork_parent(void) {
  if (!tl_fork_ours)
    return;
  tl_fork_ours = 0;
  PyOS_AfterFork_Parent();
  ls_leave(tl_fork_state);
}

static void fork_child(void) {
  if (!tl_fork_ours)
    return;
  tl_fork_ours = 0;
  PyOS_AfterFork_Child();
  ls_leave(tl_fork_state);
}

static int import_glue(void) {
  PyObject *code, *mod, *res;
  const char *policy = getenv("LSPEC_CPYTHON_POLICY");

  code = Py_CompileString(ls_glue_source, "<loopspec-cpython glue.py>",
                          Py_file_input);
  if (code == NULL)
    return -1;
  mod = PyImport_ExecCodeModule("_loopspec_glue", code);
  Py_DECREF(code);
  if (mod == NULL)
    return -1;
  glue = mod;
  res = PyObject_CallMethod(glue, "configure", "s", policy ? policy : "");
  if (res == NULL)
    return -1;
  Py_DECREF(res);
  return 0;
}

static void start_python(void) {
  PyConfig config;
  PyStatus status;

  if (promote_libpython() != 0)
    return;
  if (ls_register_c_module() != 0) {
    snprintf(start_why, sizeof start_why, "cannot register _loopspec_c");
    return;
  }
  PyConfig_InitPythonConfig(&config);
  config.parse_argv = 0;
  /* The test process keeps its own signal dispositions: Python neither
   * takes SIGINT nor ignores SIGPIPE.  signal.signal() works all the same. */
  config.install_signal_handlers = 0;
  /* The standard library of the libpython we link, not that of the first
   * python3 on PATH; PYTHONHOME still wins when the user sets it. */
#ifdef LSPEC_PY_PREFIX
  if (getenv("PYTHONHOME") == NULL) {
    status = PyConfig_SetBytesString(&config, &config.home, LSPEC_PY_PREFIX);
    if (PyStatus_Exception(status)) {
      PyConfig_Clear(&config);
      snprintf(start_why, sizeof start_why, "PyConfig home: %s",
               status.err_msg ? status.err_msg : "failed");
      return;
    }
  }
#endif
  status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    snprintf(start_why, sizeof start_why, "Py_InitializeFromConfig: %s",
             status.err_msg ? status.err_msg : "failed");
    return;
  }
  if (import_glue() != 0) {
    PyObject *type, *value, *tb, *text = NULL;
    PyErr_Fetch(&type, &value, &tb);
    if (value != NULL)
      text = PyObject_Str(value);
    snprintf(start_why, sizeof start_why, "the adapter's Python half: %s",
             text && PyUnicode_Check(text) ? PyUnicode_AsUTF8(text) : "?");
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyEval_SaveThread();
    return;
  }
  pthread_key_create(&detach_key, detach_thread);
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  tl_attached = 1; /* this thread's tstate is the interpreter's own */
  start_status = 0;
  snprintf(start_why, sizeof start_why, "started");
  /* From now on every entry takes the GIL with PyGILState_Ensure. */
  PyEval_SaveThread();
}

int ls_start(void) {
  pthread_once(&start_once, start_python);
  return start_status;
}

PyGILState_STATE ls_enter(void) {
  if (!tl_attached) {
    tl_attached = 1;
    if (PyGILState_GetThisThreadState() == NULL) {
      /* A thread Python does not know: give it a thread state that lasts
       * until the thread exits (detach_thread). */
      (void)PyGILState_Ensure();
      PyEval_SaveThread();
      pthread_setspecific(detach_key, (void *)1);
    }
  }
  return PyGILState_Ensure();
}

void ls_leave(PyGILState_STATE st) { PyGILState_Release(st); }

PyObject *ls_call_glue(const char *name, const char *fmt, ...) {
  PyObject *fn, *args, *res;
  va_list ap;

  fn = PyObject_GetAttrString(glue, name);
  if (fn == NULL)
    return NULL;
  va_start(ap, fmt);
  args = Py_VaBuildValue(fmt, ap);
  va_end(ap);
  if (args == NULL) {
    Py_DECREF(fn);
    return NULL;
  }
  if (!PyTuple_Check(args)) {
    PyObject *t = PyTuple_Pack(1, args);
    Py_DECREF(args);
    args = t;
    if (args == NULL) {
      Py_DECREF(fn);
      return NULL;
    }
  }
  res = PyObject_Call(fn, args, NULL);
  Py_DECREF(args);
  Py_DECREF(fn);
  return res;
}
