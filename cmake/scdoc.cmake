# cmake -DSCDOC=<scdoc> -DSRC=<page.3.scd> -DDST=<page.3> -DVERSION=<x.y.z> -P scdoc.cmake
#
# One man page: @WORKER_VERSION@ in the source becomes VERSION, then scdoc
# turns it into roff. Run by docs/CMakeLists.txt at build time.
foreach(_v SCDOC SRC DST VERSION)
    if(NOT DEFINED ${_v})
        message(FATAL_ERROR "scdoc.cmake: ${_v} is not set")
    endif()
endforeach()
set(WORKER_VERSION "${VERSION}")
configure_file("${SRC}" "${DST}.scd" @ONLY)
execute_process(COMMAND "${SCDOC}"
    INPUT_FILE "${DST}.scd"
    OUTPUT_FILE "${DST}.tmp"
    RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
    file(REMOVE "${DST}.tmp")
    message(FATAL_ERROR "scdoc failed on ${SRC} (${_rc})")
endif()
file(RENAME "${DST}.tmp" "${DST}")
file(REMOVE "${DST}.scd")
