/* names.c - the names loopspec-conform prints: results, capabilities, child
 * watcher kinds, custom-watcher values and profiles.  One table each, so the
 * text and JSON reports and the messages always agree. */
#include "runner.h"

#include <stdlib.h>
#include <string.h>

static const char *const result_names[LR_NRESULTS] = {
    [LR_UNTESTED] = "UNTESTED",     [LR_PASS] = "PASS",
    [LR_XFAIL] = "XFAIL",           [LR_UNSUPPORTED] = "UNSUPPORTED",
    [LR_UNRESOLVED] = "UNRESOLVED", [LR_FAIL] = "FAIL",
    [LR_XPASS] = "XPASS",           [LR_TIMEOUT] = "TIMEOUT",
    [LR_CRASH] = "CRASH",
};

static const char *const result_keys[LR_NRESULTS] = {
    [LR_UNTESTED] = "untested",     [LR_PASS] = "pass",
    [LR_XFAIL] = "xfail",           [LR_UNSUPPORTED] = "unsupported",
    [LR_UNRESOLVED] = "unresolved", [LR_FAIL] = "fail",
    [LR_XPASS] = "xpass",           [LR_TIMEOUT] = "timeout",
    [LR_CRASH] = "crash",
};

bool lr_result_fails(enum lr_result r) {
  return r == LR_FAIL || r == LR_XPASS || r == LR_TIMEOUT || r == LR_CRASH;
}

const char *lr_result_name(enum lr_result r) {
  return (unsigned)r < LR_NRESULTS ? result_names[r] : "?";
}

const char *lr_result_key(enum lr_result r) {
  return (unsigned)r < LR_NRESULTS ? result_keys[r] : "?";
}

/* Named after the LSPEC_CAP_ macros, without the prefix. */
const struct lr_bit_name lr_cap_names[] = {
    {LSPEC_CAP_POLICIES, "POLICIES"},
    {LSPEC_CAP_CUSTOM_POLICY, "CUSTOM_POLICY"},
    {LSPEC_CAP_LOOP, "LOOP"},
    {LSPEC_CAP_LOOP_BACKEND_POLL, "LOOP_BACKEND_POLL"},
    {LSPEC_CAP_READERS, "READERS"},
    {LSPEC_CAP_SIGNALS, "SIGNALS"},
    {LSPEC_CAP_CHILD_WATCHERS, "CHILD_WATCHERS"},
    {LSPEC_CAP_SUBPROCESS, "SUBPROCESS"},
    {LSPEC_CAP_THREAD_CHECKS, "THREAD_CHECKS"},
};
const size_t lr_ncap_names = sizeof lr_cap_names / sizeof lr_cap_names[0];

const char *lr_custom_watchers_name(uint32_t value) {
  switch (value) {
  case LSPEC_CUSTOM_WATCHERS_SUPPORTED:
    return "SUPPORTED";
  case LSPEC_CUSTOM_WATCHERS_PROHIBITED:
    return "PROHIBITED";
  case LSPEC_CUSTOM_WATCHERS_IGNORED:
    return "IGNORED";
  default:
    return "?";
  }
}

const char *lr_watcher_kind_name(int kind) {
  switch (kind) {
  case LSPEC_WATCHER_THREADED:
    return "THREADED";
  case LSPEC_WATCHER_MULTILOOP:
    return "MULTILOOP";
  case LSPEC_WATCHER_SAFE:
    return "SAFE";
  case LSPEC_WATCHER_FAST:
    return "FAST";
  case LSPEC_WATCHER_PIDFD:
    return "PIDFD";
  case LSPEC_WATCHER_NATIVE:
    return "NATIVE";
  default:
    return NULL;
  }
}

const char *lr_profile_text(int profile, char *buf, size_t len) {
  snprintf(buf, len, "%d.%d", (profile >> 8) & 0xff, profile & 0xff);
  return buf;
}

int lr_profile_parse(const char *text) {
  static const char *const known[] = {"3.8", "3.9", "3.10", "3.11", "3.12"};
  size_t i;
  for (i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(text, known[i]) == 0)
      return LSPEC_PROFILE(3, 8 + (int)i);
  return 0;
}
