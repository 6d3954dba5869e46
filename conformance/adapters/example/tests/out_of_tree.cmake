# out_of_tree.cmake - run by ctest (example_adapter_out_of_tree): what
# ci/github-workflow.yml does in a user's repository, with nothing but an
# installed loopspec: install the build tree into a scratch prefix, build the
# example adapter as a project of its own through find_package(loopspec),
# and run the installed loopspec-conform on it with the example's
# expectations file and a JUnit report.  loopspec's own check; a copy of the
# example does not need this directory.
# Variables: SRC (loopspec's source tree), BIN (its build tree), WORK (a
# scratch directory), GEN (the CMake generator), SAN (LSPEC_SANITIZE).
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
run(${CMAKE_COMMAND} --install ${BIN} --prefix ${WORK}/prefix)
set(sanflags "")
if(SAN)
  set(sanflags "-fsanitize=${SAN}")
endif()
run(${CMAKE_COMMAND} -S ${SRC}/conformance/adapters/example
    -B ${WORK}/build-adapter -G ${GEN} -DCMAKE_PREFIX_PATH=${WORK}/prefix
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS=${sanflags}"
    "-DCMAKE_MODULE_LINKER_FLAGS=${sanflags}")
run(${CMAKE_COMMAND} --build ${WORK}/build-adapter)
# The adapter must open the installed reference, not the build tree's.
file(STRINGS ${WORK}/build-adapter/libloopspec_example.so refs
     REGEX "libloopspec-reference[.]so")
if(NOT refs MATCHES "${WORK}/prefix/")
  message(FATAL_ERROR "the adapter does not name the installed reference: ${refs}")
endif()
run(${WORK}/prefix/bin/loopspec-conform -j2
    --impl ${WORK}/build-adapter/libloopspec_example.so
    --follow cpython --filter CW-REMOVE-004
    --expect ${SRC}/conformance/adapters/example/expectations.toml
    --report junit:${WORK}/conformance.xml)
file(READ ${WORK}/conformance.xml junit)
if(NOT junit MATCHES "<property name=\"implementation\" value=\"loopspec-example\"/>"
   OR NOT junit MATCHES "<skipped message=\"expected failure: forwards to the reference")
  message(FATAL_ERROR "the JUnit report is not the example's run:\n${junit}")
endif()
