# unplanted.cmake - the ctest reference_unplanted: fails when the reference
# libraries LIB and STATIC carry a planted bug (src/plant.h), which their
# version string shows as "+plant:NAME".  Run as cmake -DLIB=... -DSTATIC=...
# -P unplanted.cmake.
foreach(lib IN ITEMS "${LIB}" "${STATIC}")
  if(NOT EXISTS "${lib}")
    message(FATAL_ERROR "no such library: ${lib}")
  endif()
  file(STRINGS "${lib}" planted REGEX "[0-9]\\+plant:[A-Z0-9_]+")
  if(planted)
    message(FATAL_ERROR "${lib} carries a planted bug (${planted}): "
                        "reconfigure with -DLSPEC_PLANT=")
  endif()
  file(STRINGS "${lib}" loopspec REGEX "loopspec-reference")
  if(NOT loopspec)
    message(FATAL_ERROR "${lib} does not look like the reference")
  endif()
endforeach()
message(STATUS "no planted bug in ${LIB} nor ${STATIC}")
