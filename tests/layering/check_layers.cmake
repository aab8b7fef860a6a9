# The layering rule of lib/, checked by compiling: for every layer, each
# internal header of that layer or of a layer below must compile with that
# layer's include path (headers stand alone), and each header of a layer
# above must NOT compile with it (an include that points up is refused).
# Also: no include in lib/ names another folder by a relative path, which
# would get around the include path.
#
#   cmake -DCC=<compiler> -DROOT=<source dir> -DLAYERS="base;mem;..." -DWORK=<dir>
#         -DGENERATED=<build dir>/include -P check_layers.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var CC ROOT LAYERS WORK GENERATED)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "check_layers.cmake: -D${var}=... is missing")
    endif()
endforeach()

file(MAKE_DIRECTORY "${WORK}")
set(failures 0)
set(refused 0)
set(compiled 0)

# Returns in ${out} TRUE when `header` compiles with the include path of
# the layers `dirs`.
function(header_compiles header dirs out)
    get_filename_component(name "${header}" NAME)
    set(probe "${WORK}/probe.c")
    file(WRITE "${probe}" "#include \"${name}\"\nint layering_probe;\n")
    set(flags -std=gnu11 -fsyntax-only -Wall -Werror -DWORKER_BUILDING -I${ROOT}/include -I${GENERATED})
    foreach(d IN LISTS dirs)
        list(APPEND flags "-I${d}")
    endforeach()
    execute_process(COMMAND "${CC}" ${flags} "${probe}"
        RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
    if(rc EQUAL 0)
        set(${out} TRUE PARENT_SCOPE)
    else()
        set(${out} FALSE PARENT_SCOPE)
        set(last_error "${err}" PARENT_SCOPE)
    endif()
endfunction()

set(dirs "")
set(position 0)
list(LENGTH LAYERS layer_count)
foreach(layer IN LISTS LAYERS)
    list(PREPEND dirs "${ROOT}/lib/${layer}")
    math(EXPR position "${position} + 1")
    # Headers of this layer and below: must compile.
    foreach(d IN LISTS dirs)
        file(GLOB headers "${d}/*.h")
        foreach(h IN LISTS headers)
            header_compiles("${h}" "${dirs}" ok)
            if(ok)
                math(EXPR compiled "${compiled} + 1")
            else()
                message(SEND_ERROR "${h} does not compile with the include path of "
                                   "lib/${layer}:\n${last_error}")
                math(EXPR failures "${failures} + 1")
            endif()
        endforeach()
    endforeach()
    # Headers of the layers above: must be refused.
    if(position LESS layer_count)
        list(SUBLIST LAYERS ${position} -1 above)
        foreach(upper IN LISTS above)
            file(GLOB headers "${ROOT}/lib/${upper}/*.h")
            foreach(h IN LISTS headers)
                header_compiles("${h}" "${dirs}" ok)
                if(ok)
                    message(SEND_ERROR "${h} (layer ${upper}) compiles from lib/${layer}: "
                                       "an upward include would not be refused")
                    math(EXPR failures "${failures} + 1")
                else()
                    math(EXPR refused "${refused} + 1")
                endif()
            endforeach()
        endforeach()
    endif()
endforeach()

# No include reaches another folder by a relative path.
file(GLOB_RECURSE sources "${ROOT}/lib/*.c" "${ROOT}/lib/*.h")
foreach(src IN LISTS sources)
    file(STRINGS "${src}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"]*/")
    if(lines)
        message(SEND_ERROR "${src}: an include with a path: ${lines}")
        math(EXPR failures "${failures} + 1")
    endif()
endforeach()

# lib/nats (libworker-actor-nats) is built on the public API alone: none of
# its files includes an internal header of the core's layers (its include
# path has only include/, so such an include would not compile either).
file(GLOB _core_headers "${ROOT}/lib/*/wk_*.h")
file(GLOB nats_sources "${ROOT}/lib/nats/*.c" "${ROOT}/lib/nats/*.h")
foreach(h IN LISTS _core_headers)
    get_filename_component(hdir "${h}" DIRECTORY)
    get_filename_component(hname "${h}" NAME)
    if(hdir STREQUAL "${ROOT}/lib/nats")
        continue()
    endif()
    foreach(src IN LISTS nats_sources)
        file(STRINGS "${src}" lines REGEX "#[ \t]*include[ \t]*[\"<]${hname}[\">]")
        if(lines)
            message(SEND_ERROR "${src} includes the core's internal ${hname}: lib/nats uses "
                               "only include/worker/*.h")
            math(EXPR failures "${failures} + 1")
        endif()
    endforeach()
endforeach()

message(STATUS "layering: ${compiled} header compiles as expected, ${refused} upward includes refused, ${failures} failures")
if(failures GREATER 0 OR refused EQUAL 0 OR compiled EQUAL 0)
    message(FATAL_ERROR "layering check failed")
endif()
