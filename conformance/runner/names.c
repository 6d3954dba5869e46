/* names.c - the names only loopspec-conform prints: results, profiles and
 * report formats.
 * One table each, so the text and JSON reports and the messages always
 * agree.  The ABI's names (capabilities, custom-watcher values, watcher
 * kinds, statuses) are the harness's, in conformance/harness/names.c. */
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

const char *lr_report_format_name(enum lr_report_format format) {
  switch (format) {
  case LR_REPORT_JSON:
    return "JSON";
  case LR_REPORT_JUNIT:
    return "JUnit";
  case LR_REPORT_TAP:
    return "TAP";
  }
  return "?";
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
