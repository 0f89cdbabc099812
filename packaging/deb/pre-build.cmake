# CPACK_PRE_BUILD_SCRIPTS: run by cpack once every component is installed in its staging tree,
# before the packages are made. Adds what Debian wants in a .deb and `cmake --install` has no
# business installing: /usr/share/doc/PACKAGE/{copyright,changelog.gz} in each package, man
# pages compressed with gzip -9n, lintian overrides (deb/PACKAGE.lintian-overrides). Moves
# butter-dev's example to butter-dev's own doc directory. Strips the debug info off the static
# libraries, as dh_strip does: CPack splits that of executables and shared libraries into the
# -dbgsym packages, which have no place for an archive's.
if(NOT CPACK_GENERATOR STREQUAL "DEB")
    return()
endif()

find_program(BUTTER_STRIP strip REQUIRED)
set(perm_file OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
set(perm_dir OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
    WORLD_EXECUTE)

function(butter_gzip file)
    execute_process(COMMAND gzip -9nf ${file} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "gzip -9nf ${file} failed")
    endif()
endfunction()

# A directory and its parents below `root`, mode 755 whatever the umask.
function(butter_mkdir root rel)
    set(at ${root})
    string(REPLACE "/" ";" parts "${rel}")
    foreach(part IN LISTS parts)
        set(at ${at}/${part})
        if(NOT IS_DIRECTORY ${at})
            file(MAKE_DIRECTORY ${at})
            file(CHMOD ${at} PERMISSIONS ${perm_dir})
        endif()
    endforeach()
endfunction()

foreach(component IN LISTS CPACK_COMPONENTS_ALL)
    string(TOUPPER ${component} upper)
    set(package ${CPACK_DEBIAN_${upper}_PACKAGE_NAME})
    set(root ${CPACK_TEMPORARY_DIRECTORY}/${component})
    if(NOT IS_DIRECTORY ${root}${CPACK_PACKAGING_INSTALL_PREFIX})
        message(FATAL_ERROR "pre-build.cmake: no ${root}${CPACK_PACKAGING_INSTALL_PREFIX}")
    endif()
    set(usr ${CPACK_PACKAGING_INSTALL_PREFIX})
    string(REGEX REPLACE "^/" "" usr "${usr}")

    set(doc ${usr}/share/doc/${package})
    # Docs installed under the project's name that belong to another package (butter-dev's
    # example) move to that package's own directory.
    set(project_doc ${root}/${usr}/share/doc/${CPACK_PACKAGE_NAME})
    if(NOT package STREQUAL CPACK_PACKAGE_NAME AND IS_DIRECTORY ${project_doc})
        file(RENAME ${project_doc} ${root}/${doc})
    endif()
    butter_mkdir(${root} ${doc})
    file(COPY ${CPACK_BUTTER_DEB_DIR}/copyright DESTINATION ${root}/${doc}
         FILE_PERMISSIONS ${perm_file})
    # A native package (no Debian revision): its Debian changelog is changelog.gz.
    file(COPY ${CPACK_BUTTER_DEB_DIR}/changelog DESTINATION ${root}/${doc}
         FILE_PERMISSIONS ${perm_file})
    butter_gzip(${root}/${doc}/changelog)

    file(GLOB_RECURSE archives LIST_DIRECTORIES false ${root}/${usr}/lib/*.a)
    foreach(archive IN LISTS archives)
        execute_process(COMMAND ${BUTTER_STRIP} --strip-debug --remove-section=.comment
                                --remove-section=.note --enable-deterministic-archives ${archive}
                        RESULT_VARIABLE rc)
        if(NOT rc EQUAL 0)
            message(FATAL_ERROR "strip --strip-debug ${archive} failed")
        endif()
    endforeach()

    file(GLOB_RECURSE manpages LIST_DIRECTORIES false ${root}/${usr}/share/man/*)
    foreach(page IN LISTS manpages)
        if(NOT page MATCHES "\\.gz$")
            butter_gzip(${page})
        endif()
    endforeach()

    if(EXISTS ${CPACK_BUTTER_DEB_DIR}/${package}.lintian-overrides)
        butter_mkdir(${root} ${usr}/share/lintian/overrides)
        file(COPY_FILE ${CPACK_BUTTER_DEB_DIR}/${package}.lintian-overrides
             ${root}/${usr}/share/lintian/overrides/${package})
        file(CHMOD ${root}/${usr}/share/lintian/overrides/${package} PERMISSIONS ${perm_file})
    endif()
endforeach()
