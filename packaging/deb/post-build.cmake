# CPACK_POST_BUILD_SCRIPTS: run by cpack on the packages it made, before it copies them out.
# Fixes what CPack 3.25 cannot write or writes wrong, then rebuilds each package with dpkg-deb:
# - Multi-Arch (CPACK_BUTTER_<COMPONENT>_MULTIARCH), which CPack has no variable for; a -dbgsym
#   package of a Multi-Arch: same package is "same" too, as debhelper makes it;
# - a package with a shared library under /usr/lib gets from CPack a postinst and a postrm that
#   run ldconfig: a package activating libc-bin's ldconfig trigger (a `triggers` file in
#   CPACK_DEBIAN_<COMPONENT>_PACKAGE_CONTROL_EXTRA, as dh_makeshlibs writes) needs neither, and
#   lintian warns about them (maintscript-calls-ldconfig). They go, once checked to do nothing
#   else;
# - a -dbgsym package gets /usr/share/doc/PACKAGE-dbgsym -> PACKAGE (which it depends on: the
#   copyright and changelog are there, as debhelper does it) and its .debug files mode 644;
# - md5sums is written anew from the files: CPack's for a -dbgsym package names them by their
#   absolute paths in the staging directory.
if(NOT CPACK_GENERATOR STREQUAL "DEB")
    return()
endif()
find_program(BUTTER_DPKG_DEB dpkg-deb REQUIRED)

foreach(component IN LISTS CPACK_COMPONENTS_ALL)
    string(TOUPPER ${component} upper)
    set(component_of_${CPACK_DEBIAN_${upper}_PACKAGE_NAME} ${upper})
endforeach()

foreach(deb IN LISTS CPACK_PACKAGE_FILES)
    get_filename_component(name ${deb} NAME)
    if(NOT name MATCHES "^([^_]+)_[^_]+_[^_]+\\.d?deb$")
        message(FATAL_ERROR "post-build.cmake: ${name} is no .deb or .ddeb")
    endif()
    set(package ${CMAKE_MATCH_1})
    set(parent "")
    if(package MATCHES "^(.+)-dbgsym$")
        set(parent ${CMAKE_MATCH_1})
        set(upper ${component_of_${parent}})
    else()
        set(upper ${component_of_${package}})
    endif()
    if(NOT upper)
        message(FATAL_ERROR "post-build.cmake: ${name} is no component's package")
    endif()
    set(tree ${deb}.tree)
    file(REMOVE_RECURSE ${tree})
    execute_process(COMMAND ${BUTTER_DPKG_DEB} --raw-extract ${deb} ${tree} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "dpkg-deb --raw-extract ${deb} failed")
    endif()

    file(READ ${tree}/DEBIAN/control control)
    set(multiarch ${CPACK_BUTTER_${upper}_MULTIARCH})
    if(parent AND NOT multiarch STREQUAL "same")
        set(multiarch "")
    endif()
    if(multiarch AND NOT control MATCHES "(^|\n)Multi-Arch:")
        string(REGEX REPLACE "(^|\n)(Architecture: [^\n]*\n)" "\\1\\2Multi-Arch: ${multiarch}\n"
               control "${control}")
        file(WRITE ${tree}/DEBIAN/control "${control}")
    endif()

    if(EXISTS ${tree}/DEBIAN/triggers)
        file(READ ${tree}/DEBIAN/triggers triggers)
        if(triggers MATCHES "(^|\n)activate-noawait ldconfig\n")
            foreach(script postinst postrm)
                set(path ${tree}/DEBIAN/${script})
                if(NOT EXISTS ${path})
                    continue()
                endif()
                file(STRINGS ${path} lines)
                set(if_arg "if \\[ \"\\$1\" = \"(configure|remove)\" \\]; then")
                list(FILTER lines EXCLUDE REGEX "^(#!/bin/sh|set -e|${if_arg}|[ \t]*ldconfig|fi|)$")
                if(lines)
                    message(FATAL_ERROR "${name}: ${script} does more than run ldconfig: ${lines}")
                endif()
                file(REMOVE ${path})
            endforeach()
        endif()
    endif()

    if(parent)
        if(NOT IS_DIRECTORY ${tree}/usr/share/doc)
            file(MAKE_DIRECTORY ${tree}/usr/share/doc)
            file(CHMOD ${tree}/usr/share ${tree}/usr/share/doc PERMISSIONS OWNER_READ OWNER_WRITE
                 OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
        endif()
        file(CREATE_LINK ${parent} ${tree}/usr/share/doc/${package} SYMBOLIC)
        file(GLOB_RECURSE debug_files LIST_DIRECTORIES false ${tree}/usr/lib/debug/*.debug)
        foreach(f IN LISTS debug_files)
            file(CHMOD ${f} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
        endforeach()
    endif()

    file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE ${tree} ${tree}/*)
    list(FILTER files EXCLUDE REGEX "^DEBIAN/")
    list(SORT files)
    set(md5sums "")
    foreach(f IN LISTS files)
        if(NOT IS_SYMLINK ${tree}/${f})
            file(MD5 ${tree}/${f} sum)
            string(APPEND md5sums "${sum}  ${f}\n")
        endif()
    endforeach()
    file(WRITE ${tree}/DEBIAN/md5sums "${md5sums}")
    file(CHMOD ${tree}/DEBIAN/md5sums PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

    execute_process(COMMAND ${BUTTER_DPKG_DEB} --root-owner-group --build ${tree} ${deb}
                    RESULT_VARIABLE rc OUTPUT_QUIET)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "dpkg-deb --build ${tree} ${deb} failed")
    endif()
    file(REMOVE_RECURSE ${tree})
endforeach()
