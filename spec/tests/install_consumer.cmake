# install_consumer.cmake - run by ctest: install the build tree into a scratch
# prefix, then build and run a consumer through find_package(loopspec) and
# through pkg-config, with nothing but the installed files.
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
run(${CMAKE_COMMAND} --install ${BIN} --prefix ${WORK}/prefix)
# A sanitizer build installs instrumented libraries: the consumer needs the
# same runtime to link against them.
set(sanflags "")
if(SAN)
  set(sanflags "-fsanitize=${SAN}")
endif()
run(${CMAKE_COMMAND} -S ${SRC}/spec/tests/consumer -B ${WORK}/build -G ${GEN}
    -DCMAKE_PREFIX_PATH=${WORK}/prefix -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_C_FLAGS=${sanflags}" "-DCMAKE_EXE_LINKER_FLAGS=${sanflags}")
run(${CMAKE_COMMAND} --build ${WORK}/build)
run(${WORK}/build/consumer_shared)
run(${WORK}/build/consumer_static)
# pkg-config, against the same installed tree.
find_program(PKGCONF pkg-config REQUIRED)
file(GLOB_RECURSE pcfile ${WORK}/prefix/*/loopspec.pc)
get_filename_component(pcdir "${pcfile}" DIRECTORY)
execute_process(COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pcdir}
    ${PKGCONF} --cflags --libs loopspec
  RESULT_VARIABLE rc OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0 OR flags STREQUAL "")
  message(FATAL_ERROR "pkg-config does not know loopspec (${rc})")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
find_program(CC NAMES cc gcc REQUIRED)
run(${CC} -std=c11 ${sanflags} ${SRC}/spec/tests/consumer/consumer.c ${flags} -o ${WORK}/consumer_pc)
get_filename_component(libdir "${pcdir}" DIRECTORY)
run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${WORK}/consumer_pc)
