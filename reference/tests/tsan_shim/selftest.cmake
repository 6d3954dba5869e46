# tsan_shim/selftest.cmake - checks what the shim's runner reports for
# selftest.c: run as `cmake -DSELFTEST=<executable> -P selftest.cmake`.
# Every test's name says its expected outcome (pass_*, fail_*, crash_*,
# skip_*); each must be reported once, as that, and the synthesis, the skip
# messages, the failed assertion's place and message (carried from the
# test's process to the runner), the teardown after a failure and the exit
# status must match.
if(NOT SELFTEST)
  message(FATAL_ERROR "usage: cmake -DSELFTEST=<executable> -P selftest.cmake")
endif()

execute_process(COMMAND ${SELFTEST} --verbose -j2
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc
                TIMEOUT 120)
set(all "${out}${err}")
set(problems "")

# Expected outcomes, from selftest.c's test names.
file(STRINGS ${CMAKE_CURRENT_LIST_DIR}/selftest.c defs
     REGEX "^Test\\(shim_selftest, ")
set(n 0)
foreach(def IN LISTS defs)
  string(REGEX REPLACE "^Test\\(shim_selftest, ([a-z_]+).*" "\\1" name "${def}")
  string(REGEX REPLACE "_.*" "" kind "${name}")
  if(kind STREQUAL "pass")
    set(tag "PASS")
  elseif(kind STREQUAL "skip")
    set(tag "SKIP")
  elseif(kind STREQUAL "fail" OR kind STREQUAL "crash")
    set(tag "FAIL")
  else()
    message(FATAL_ERROR "selftest.c: ${name} does not say what it expects")
  endif()
  string(REGEX MATCHALL "\\[(PASS|FAIL|SKIP)\\] shim_selftest::${name}(:[^\n]*)?\n"
         lines "${all}")
  list(LENGTH lines count)
  if(NOT count EQUAL 1)
    list(APPEND problems "${name}: reported ${count} times")
  elseif(NOT lines MATCHES "^\\[${tag}\\]")
    list(APPEND problems "${name}: expected [${tag}], got ${lines}")
  elseif(kind STREQUAL "crash" AND NOT lines MATCHES "(CRASH|Timed out)")
    list(APPEND problems "${name}: expected a crash or a timeout, got ${lines}")
  endif()
  math(EXPR n "${n} + 1")
endforeach()
if(n LESS 10)
  list(APPEND problems "found only ${n} tests in selftest.c")
endif()

foreach(want
    "Synthesis: Tested: 16 \\| Passing: 5 \\| Failing: 11 \\| Crashing: 3 \\| Skipped: 4"
    "skip_with_message: skipped on purpose 42"
    "skip_cr_skip_with_message: UNSUPPORTED: cap=SIGNALS\n"
    "\\[FAIL\\] shim_selftest::fail_assert_with_message: selftest[.]c:[0-9]+: one is not two\n"
    "\\[FAIL\\] shim_selftest::fail_assert_without_message: selftest[.]c:[0-9]+: eq\\(int, 1, 2\\)\n"
    "\\[FAIL\\] shim_selftest::fail_assert_in_another_thread: selftest[.]c:[0-9]+: from another thread\n"
    "skip_disabled: Test is disabled"
    "shim-selftest: fini ran after the failure"
    "selftest.c:[0-9]+: Assertion Failed"
    "one is not two"
    "from another thread")
  if(NOT all MATCHES "${want}")
    list(APPEND problems "missing from the output: ${want}")
  endif()
endforeach()
if(NOT rc EQUAL 1)
  list(APPEND problems "exit status ${rc}, expected 1 (tests failed)")
endif()

if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "the shim's runner misreports:\n  ${text}\n--- output:\n${all}")
endif()
message(STATUS "the shim's runner reports ${n} self-tests as expected")
