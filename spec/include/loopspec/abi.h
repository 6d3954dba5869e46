/* loopspec/abi.h - the fixed C ABI, version 1, through which loopspec drives an
 * implementation of asyncio-style event loop policies, event loops and child
 * watchers.
 *
 * This header is the whole contract between a checker (loopspec-conform,
 * loopspec-bench, the fuzzers) and an implementation under test.  It is plain
 * C99, needs no other header than <stddef.h> and <stdint.h>, and is safe to
 * include from C++.  spec/abi.md documents every entry: what it does, each
 * error it returns and when, which thread may call it, who owns what and what
 * a callback may do.  This file gives the short form of each contract.
 *
 * An implementation exports exactly one symbol, lspec_impl_v1(), returning a
 * pointer to a constant struct lspec_impl.  The table starts with its ABI
 * version and its own size and only ever grows at the end: a checker built
 * against a newer header reads `size` and treats every entry past it as
 * absent.  Entries are never removed, reordered or retyped within v1.
 */
#ifndef LOOPSPEC_ABI_H
#define LOOPSPEC_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The major version carried by the entry symbol's name and by the table. */
#define LSPEC_ABI_VERSION 1

/* The name of the one exported entry symbol, for dlsym(). */
#define LSPEC_ENTRY_SYMBOL "lspec_impl_v1"

/* ------------------------------------------------------------------------ */
/* Status codes.                                                            */
/*                                                                          */
/* Every fallible entry returns int: LSPEC_OK, or one negative code naming  */
/* the Python exception class that asyncio (the page, or CPython where the  */
/* page is silent) raises in the same situation.  LSPEC_E_OS carries an     */
/* errno, read with last_errno().  last_error() gives a message.            */
/* ------------------------------------------------------------------------ */

#define LSPEC_STATUS_MAP(XX)                                                   \
  XX(OK, 0, "success")                                                         \
  XX(E_RUNTIME, -1, "RuntimeError")                                            \
  XX(E_VALUE, -2, "ValueError")                                                \
  XX(E_TYPE, -3, "TypeError")                                                  \
  XX(E_NOTIMPL, -4, "NotImplementedError")                                     \
  XX(E_ASSERTION, -5, "AssertionError")                                        \
  XX(E_PROCESS_LOOKUP, -6, "ProcessLookupError")                               \
  XX(E_CHILD_PROCESS, -7, "ChildProcessError")                                 \
  XX(E_OS, -8, "OSError")                                                      \
  XX(E_ATTRIBUTE, -9, "AttributeError")                                        \
  XX(E_KEY, -10, "KeyError")                                                   \
  XX(E_TIMEOUT, -11, "TimeoutError")                                           \
  XX(E_NOMEM, -12, "MemoryError")                                              \
  XX(E_UNSUPPORTED, -20, "unsupported by this implementation")                 \
  XX(E_UNAVAILABLE, -21, "unavailable on this platform")                       \
  XX(E_INTERNAL, -22, "internal error of the implementation")

enum lspec_status {
#define LSPEC_STATUS_ENUM_(name, value, text) LSPEC_##name = value,
  LSPEC_STATUS_MAP(LSPEC_STATUS_ENUM_)
#undef LSPEC_STATUS_ENUM_
  LSPEC_STATUS_MIN_ = -22 /* The lowest code v1 defines. */
};

/* ------------------------------------------------------------------------ */
/* Profiles: the Python version whose behaviour the implementation emulates. */
/* ------------------------------------------------------------------------ */

#define LSPEC_PROFILE(major, minor) (((major) << 8) | (minor))
#define LSPEC_PROFILE_3_8 LSPEC_PROFILE(3, 8)
#define LSPEC_PROFILE_3_9 LSPEC_PROFILE(3, 9)
#define LSPEC_PROFILE_3_10 LSPEC_PROFILE(3, 10)
#define LSPEC_PROFILE_3_11 LSPEC_PROFILE(3, 11)
#define LSPEC_PROFILE_3_12 LSPEC_PROFILE(3, 12)

/* Bit for a 3.x profile in struct lspec_impl.profiles: bit (minor - 8). */
#define LSPEC_PROFILE_BIT(profile) (UINT32_C(1) << (((profile)&0xff) - 8))
#define LSPEC_PROFILES_ALL UINT32_C(0x1f) /* 3.8 ... 3.12 */

/* ------------------------------------------------------------------------ */
/* Capabilities.  Bits say what an implementation offers; valued            */
/* capabilities (custom_child_watchers) pick one of the behaviours the page */
/* allows.  Declared here, never in an expectations file.                   */
/* ------------------------------------------------------------------------ */

#define LSPEC_CAP_POLICIES UINT64_C(0x1)           /* policy entries work */
#define LSPEC_CAP_CUSTOM_POLICY UINT64_C(0x2)      /* policy_new_custom */
#define LSPEC_CAP_LOOP UINT64_C(0x4)               /* loop entries work */
#define LSPEC_CAP_LOOP_BACKEND_POLL UINT64_C(0x8)  /* loop_new(POLL) */
#define LSPEC_CAP_READERS UINT64_C(0x10)           /* add/remove_reader */
#define LSPEC_CAP_SIGNALS UINT64_C(0x20)           /* add/remove_signal_handler */
#define LSPEC_CAP_CHILD_WATCHERS UINT64_C(0x40)    /* watcher entries work */
#define LSPEC_CAP_SUBPROCESS UINT64_C(0x80)        /* loop_subprocess_exec */
#define LSPEC_CAP_THREAD_CHECKS UINT64_C(0x100)    /* wrong-thread use detected */
#define LSPEC_CAP_KNOWN_ALL UINT64_C(0x1ff)        /* every bit v1 defines */

/* Values of struct lspec_impl.custom_child_watchers: what set_child_watcher
 * does with a watcher the caller chose.  The page says third-party loops
 * "might" prohibit it or ignore it; each branch is tested. */
enum lspec_custom_watchers {
  LSPEC_CUSTOM_WATCHERS_SUPPORTED = 1,  /* stored and used */
  LSPEC_CUSTOM_WATCHERS_PROHIBITED = 2, /* set_child_watcher fails */
  LSPEC_CUSTOM_WATCHERS_IGNORED = 3     /* succeeds, changes nothing */
};

/* Child watcher kinds (watcher_new, struct lspec_impl.watcher_kinds). */
enum lspec_watcher_kind {
  LSPEC_WATCHER_THREADED = 1,  /* ThreadedChildWatcher */
  LSPEC_WATCHER_MULTILOOP = 2, /* MultiLoopChildWatcher */
  LSPEC_WATCHER_SAFE = 3,      /* SafeChildWatcher */
  LSPEC_WATCHER_FAST = 4,      /* FastChildWatcher */
  LSPEC_WATCHER_PIDFD = 5,     /* PidfdChildWatcher */
  LSPEC_WATCHER_NATIVE = 6     /* a third-party loop's own mechanism */
};
#define LSPEC_WATCHER_KIND_BIT(kind) (UINT32_C(1) << (kind))

/* Loop backends (loop_new). */
enum lspec_loop_backend {
  LSPEC_BACKEND_DEFAULT = 0, /* what new_event_loop() would make */
  LSPEC_BACKEND_EPOLL = 1,
  LSPEC_BACKEND_POLL = 2
};

/* Warning categories delivered to the warnings hook. */
enum lspec_warning_category {
  LSPEC_WARN_DEPRECATION = 1, /* DeprecationWarning */
  LSPEC_WARN_RUNTIME = 2,     /* RuntimeWarning */
  LSPEC_WARN_RESOURCE = 3,    /* ResourceWarning */
  LSPEC_WARN_LOG_WARNING = 4, /* logger 'asyncio', level WARNING */
  LSPEC_WARN_LOG_ERROR = 5,   /* logger 'asyncio' ERROR, or the loop's
                                 exception handler */
  LSPEC_WARN_LOG_DEBUG = 6    /* logger 'asyncio', level DEBUG */
};

/* ------------------------------------------------------------------------ */
/* Handles and callbacks.                                                   */
/*                                                                          */
/* Handles are opaque and reference counted.  Every entry that hands out a  */
/* handle through an `out` parameter gives the caller one new reference,    */
/* to be dropped with the matching *_release.  Entries that take a handle   */
/* borrow it; anything that keeps it (a policy keeping a loop) takes its    */
/* own reference.  Two handles are the same object iff the pointers are     */
/* equal.  Passing a handle of another kind of the same implementation      */
/* where one kind is expected (a loop as a policy) is the "wrong type"      */
/* case, answered as CPython answers a wrong Python type.                   */
/* ------------------------------------------------------------------------ */

typedef struct lspec_policy lspec_policy;
typedef struct lspec_loop lspec_loop;
typedef struct lspec_watcher lspec_watcher;

/* A plain callback run by a loop: call_soon, call_later, readers, signals. */
typedef void (*lspec_callback)(void *arg);

/* A child exit callback: returncode is the exit status, -signal for a death
 * by signal, or 255 when the status was reaped elsewhere. */
typedef void (*lspec_child_callback)(int pid, int returncode, void *arg);

/* A run_until predicate, checked after each loop iteration: nonzero stops. */
typedef int (*lspec_predicate)(void *arg);

/* The warnings hook.  May be called from any thread, so it must be
 * thread-safe.  `text` is valid only during the call. */
typedef void (*lspec_warning_hook)(void *user, int category, const char *text);

/* Identifies a scheduled callback, for loop_cancel.  0 is never used. */
typedef uint64_t lspec_handle_id;

/* Custom policy methods.  A NULL method inherits the base's.  A method
 * reaches its base ("super") with the policy_super_* entries on `self`.
 * Every method follows the contract of the entry of the same name.
 * `destroy` runs once, when the policy's last reference is dropped. */
struct lspec_policy_methods {
  size_t size; /* sizeof(struct lspec_policy_methods) as compiled */
  int (*get_event_loop)(void *user, lspec_policy *self, lspec_loop **out);
  int (*set_event_loop)(void *user, lspec_policy *self, lspec_loop *loop);
  int (*new_event_loop)(void *user, lspec_policy *self, lspec_loop **out);
  int (*get_child_watcher)(void *user, lspec_policy *self,
                           lspec_watcher **out);
  int (*set_child_watcher)(void *user, lspec_policy *self,
                           lspec_watcher *watcher);
  void (*destroy)(void *user);
};

/* Bases a custom policy can derive from. */
enum lspec_policy_base {
  LSPEC_POLICY_BASE_ABSTRACT = 1, /* AbstractEventLoopPolicy: all raise */
  LSPEC_POLICY_BASE_DEFAULT = 2   /* DefaultEventLoopPolicy */
};

/* ------------------------------------------------------------------------ */
/* The table.                                                               */
/* ------------------------------------------------------------------------ */

struct lspec_impl {
  /* Header: fixed for every version of v1. */
  uint32_t abi_version;          /* LSPEC_ABI_VERSION */
  uint32_t size;                 /* sizeof(struct lspec_impl) as built */
  const char *name;              /* e.g. "loopspec-reference" */
  const char *version;           /* the implementation's own version */
  uint64_t capabilities;         /* LSPEC_CAP_* bits */
  uint32_t custom_child_watchers; /* enum lspec_custom_watchers */
  uint32_t profiles;             /* LSPEC_PROFILE_BIT() of each profile */
  uint32_t watcher_kinds;        /* LSPEC_WATCHER_KIND_BIT() of each kind */
  uint32_t reserved;             /* zero */

  /* Process set-up.  Any thread. */
  int (*set_profile)(int profile);            /* before first use only */
  int (*get_profile)(void);                   /* the profile in force */
  void (*set_warning_hook)(lspec_warning_hook hook, void *user);
  const char *(*last_error)(void);            /* this thread's last message */
  int (*last_errno)(void);                    /* errno of the last E_OS */

  /* Process-wide policy and module-level functions. */
  int (*get_event_loop_policy)(lspec_policy **out);
  int (*set_event_loop_policy)(lspec_policy *policy); /* NULL: default */
  int (*get_event_loop)(lspec_loop **out);
  int (*get_running_loop)(lspec_loop **out);
  int (*set_event_loop)(lspec_loop *loop);
  int (*new_event_loop)(lspec_loop **out);
  int (*get_child_watcher)(lspec_watcher **out);
  int (*set_child_watcher)(lspec_watcher *watcher);

  /* Policy objects. */
  int (*policy_new_default)(lspec_policy **out);
  int (*policy_new_windows_selector)(lspec_policy **out);
  int (*policy_new_windows_proactor)(lspec_policy **out);
  int (*policy_new_custom)(int base, const struct lspec_policy_methods *m,
                           void *user, lspec_policy **out);
  int (*policy_get_event_loop)(lspec_policy *p, lspec_loop **out);
  int (*policy_set_event_loop)(lspec_policy *p, lspec_loop *loop);
  int (*policy_new_event_loop)(lspec_policy *p, lspec_loop **out);
  int (*policy_get_child_watcher)(lspec_policy *p, lspec_watcher **out);
  int (*policy_set_child_watcher)(lspec_policy *p, lspec_watcher *w);
  int (*policy_super_get_event_loop)(lspec_policy *self, lspec_loop **out);
  int (*policy_super_set_event_loop)(lspec_policy *self, lspec_loop *loop);
  int (*policy_super_new_event_loop)(lspec_policy *self, lspec_loop **out);
  int (*policy_super_get_child_watcher)(lspec_policy *self,
                                        lspec_watcher **out);
  int (*policy_super_set_child_watcher)(lspec_policy *self,
                                        lspec_watcher *w);
  void (*policy_retain)(lspec_policy *p);
  void (*policy_release)(lspec_policy *p);

  /* Event loops. */
  int (*loop_new)(int backend, lspec_loop **out);
  int (*loop_run_forever)(lspec_loop *loop);
  int (*loop_run_until)(lspec_loop *loop, lspec_predicate pred, void *arg,
                        double timeout);
  int (*loop_stop)(lspec_loop *loop);
  int (*loop_close)(lspec_loop *loop);
  int (*loop_is_running)(lspec_loop *loop);   /* 1, 0, or a status */
  int (*loop_is_closed)(lspec_loop *loop);    /* 1, 0, or a status */
  double (*loop_time)(lspec_loop *loop);      /* seconds, monotonic */
  int (*loop_call_soon)(lspec_loop *loop, lspec_callback cb, void *arg,
                        lspec_handle_id *out);
  int (*loop_call_soon_threadsafe)(lspec_loop *loop, lspec_callback cb,
                                   void *arg, lspec_handle_id *out);
  int (*loop_call_later)(lspec_loop *loop, double delay, lspec_callback cb,
                         void *arg, lspec_handle_id *out);
  int (*loop_cancel)(lspec_loop *loop, lspec_handle_id id);
  int (*loop_add_reader)(lspec_loop *loop, int fd, lspec_callback cb,
                         void *arg);
  int (*loop_remove_reader)(lspec_loop *loop, int fd); /* 1, 0, or status */
  int (*loop_add_signal_handler)(lspec_loop *loop, int sig, lspec_callback cb,
                                 void *arg);
  int (*loop_remove_signal_handler)(lspec_loop *loop, int sig); /* 1/0/st */
  int (*loop_subprocess_exec)(lspec_loop *loop, const char *const *argv,
                              lspec_child_callback cb, void *arg, int *pid);
  void (*loop_retain)(lspec_loop *loop);
  void (*loop_release)(lspec_loop *loop);

  /* Child watchers. */
  int (*watcher_new)(int kind, lspec_watcher **out);
  int (*watcher_kind)(lspec_watcher *w);            /* kind, or a status */
  int (*watcher_add_child_handler)(lspec_watcher *w, int pid,
                                   lspec_child_callback cb, void *arg);
  int (*watcher_remove_child_handler)(lspec_watcher *w, int pid); /* 1/0/st */
  int (*watcher_attach_loop)(lspec_watcher *w, lspec_loop *loop);
  int (*watcher_is_active)(lspec_watcher *w);       /* 1, 0, or a status */
  int (*watcher_close)(lspec_watcher *w);
  int (*watcher_enter)(lspec_watcher *w, lspec_watcher **out);
  int (*watcher_exit)(lspec_watcher *w);
  void (*watcher_retain)(lspec_watcher *w);
  void (*watcher_release)(lspec_watcher *w);

  /* New entries go here, and only here. */
};

/* The size of the table as this header defines it. */
#define LSPEC_IMPL_V1_SIZE ((uint32_t)sizeof(struct lspec_impl))

/* The smallest table a checker accepts: everything up to watcher_release. */
#define LSPEC_IMPL_V1_MIN_SIZE                                                 \
  ((uint32_t)(offsetof(struct lspec_impl, watcher_release) +                   \
              sizeof(void (*)(lspec_watcher *))))

/* True when `impl` (of `impl->size` bytes) has the entry `field`. */
#define LSPEC_IMPL_HAS(impl, field)                                            \
  ((impl)->size >= offsetof(struct lspec_impl, field) + sizeof((impl)->field))

/* The one exported entry symbol.  Returns the implementation's table, which
 * stays valid and unchanged until the object is unloaded.  Never fails. */
typedef const struct lspec_impl *(*lspec_entry_fn)(void);
const struct lspec_impl *lspec_impl_v1(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LOOPSPEC_ABI_H */
