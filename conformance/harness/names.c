/* names.c - the names of names.h, one table each, shared by the harness and
 * loopspec-conform's reports. */
#include "names.h"

#include <stdio.h>

/* --- statuses: from abi.h's LSPEC_STATUS_MAP ------------------------------ */

const char *lh_status_name(int status) {
  static _Thread_local char unknown[32];
  switch (status) {
#define LH_STATUS_NAME_(name, value, text)                                     \
  case value:                                                                  \
    return "LSPEC_" #name;
    LSPEC_STATUS_MAP(LH_STATUS_NAME_)
#undef LH_STATUS_NAME_
  default:
    snprintf(unknown, sizeof unknown, "status %d", status);
    return unknown;
  }
}

const char *lh_status_class(int status) {
  switch (status) {
#define LH_STATUS_CLASS_(name, value, text)                                    \
  case value:                                                                  \
    return text;
    LSPEC_STATUS_MAP(LH_STATUS_CLASS_)
#undef LH_STATUS_CLASS_
  default:
    return status > 0 ? "a positive value" : "an undefined status";
  }
}

/* --- capabilities --------------------------------------------------------- */

/* XX(macro name without LSPEC_CAP_, harness name), in bit order. */
#define LH_CAPS(XX)                                                            \
  XX(POLICIES, "policies")                                                     \
  XX(CUSTOM_POLICY, "custom_policy")                                           \
  XX(LOOP, "loop")                                                             \
  XX(LOOP_BACKEND_POLL, "loop_backend_poll")                                   \
  XX(READERS, "readers")                                                       \
  XX(SIGNALS, "signals")                                                       \
  XX(CHILD_WATCHERS, "child_watchers")                                         \
  XX(SUBPROCESS, "subprocess")                                                 \
  XX(THREAD_CHECKS, "thread_checks")

/* A bit added to abi.h without a name here breaks the build. */
#define LH_CAP_BIT_(macro, name) | LSPEC_CAP_##macro
_Static_assert((0 LH_CAPS(LH_CAP_BIT_)) == LSPEC_CAP_KNOWN_ALL,
               "LH_CAPS must name every capability bit of abi.h");
#undef LH_CAP_BIT_

const struct lh_cap_name lh_cap_names[] = {
#define LH_CAP_ENTRY_(macro, name) {LSPEC_CAP_##macro, #macro, name},
    LH_CAPS(LH_CAP_ENTRY_)
#undef LH_CAP_ENTRY_
};
const size_t lh_ncap_names = sizeof lh_cap_names / sizeof lh_cap_names[0];

const char *lh_cap_name(uint64_t bit) {
  for (size_t i = 0; i < lh_ncap_names; i++)
    if (lh_cap_names[i].bit == bit)
      return lh_cap_names[i].name;
  return "unknown capability";
}

/* --- custom_child_watchers values and watcher kinds ----------------------- */

static const char *const custom_watchers_names[] = {
    [LSPEC_CUSTOM_WATCHERS_SUPPORTED] = "SUPPORTED",
    [LSPEC_CUSTOM_WATCHERS_PROHIBITED] = "PROHIBITED",
    [LSPEC_CUSTOM_WATCHERS_IGNORED] = "IGNORED",
};

static const char *const watcher_kind_names[] = {
    [LSPEC_WATCHER_THREADED] = "THREADED",
    [LSPEC_WATCHER_MULTILOOP] = "MULTILOOP",
    [LSPEC_WATCHER_SAFE] = "SAFE",
    [LSPEC_WATCHER_FAST] = "FAST",
    [LSPEC_WATCHER_PIDFD] = "PIDFD",
    [LSPEC_WATCHER_NATIVE] = "NATIVE",
};

/* table[value], or NULL where the table (of n entries) has none. */
static const char *lookup(const char *const *table, size_t n, long long value) {
  return value >= 0 && (unsigned long long)value < n ? table[value] : NULL;
}
#define LH_LOOKUP_(table, value)                                               \
  lookup(table, sizeof table / sizeof table[0], value)

const char *lh_custom_watchers_name(uint32_t value) {
  return LH_LOOKUP_(custom_watchers_names, value);
}

const char *lh_watcher_kind_name(int kind) {
  return LH_LOOKUP_(watcher_kind_names, kind);
}

/* --- warning categories --------------------------------------------------- */

static const char *const warning_names[] = {
    [LSPEC_WARN_DEPRECATION] = "DeprecationWarning",
    [LSPEC_WARN_RUNTIME] = "RuntimeWarning",
    [LSPEC_WARN_RESOURCE] = "ResourceWarning",
    [LSPEC_WARN_LOG_WARNING] = "asyncio log WARNING",
    [LSPEC_WARN_LOG_ERROR] = "asyncio log ERROR",
    [LSPEC_WARN_LOG_DEBUG] = "asyncio log DEBUG",
};

const char *lh_warning_name(int category) {
  const char *name = LH_LOOKUP_(warning_names, category);
  return name != NULL ? name : "unknown warning category";
}
