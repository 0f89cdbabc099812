# CPACK_PROJECT_CONFIG_FILE: read by cpack before each generator, with CPACK_GENERATOR set to it.
if(NOT CPACK_GENERATOR STREQUAL "DEB")
    return()
endif()
# The packages install under /usr; butter's profile directory and butter(1) come from the
# prefix the tree was configured with: the two must agree.
if(NOT CPACK_BUTTER_INSTALL_PREFIX STREQUAL "/usr")
    message(FATAL_ERROR
        "butter's .deb packages install under /usr, but this tree is configured with "
        "CMAKE_INSTALL_PREFIX=${CPACK_BUTTER_INSTALL_PREFIX}, which butter would look in for "
        "its profiles. Build the packages from a tree configured with "
        "-DCMAKE_INSTALL_PREFIX=/usr (e.g. BUTTER_BUILD_DIR=build-deb "
        "BUTTER_CMAKE_ARGS=-DCMAKE_INSTALL_PREFIX=/usr packaging/setup).")
endif()
if(NOT CPACK_BUTTER_CHANGELOG_VERSION STREQUAL CPACK_PACKAGE_VERSION)
    message(FATAL_ERROR
        "packaging/deb/changelog's latest entry is for ${CPACK_BUTTER_CHANGELOG_VERSION}, the "
        "packages are ${CPACK_PACKAGE_VERSION}: add an entry for ${CPACK_PACKAGE_VERSION}.")
endif()
# Each package's description starts with its own synopsis: CPack 3.25 would put this summary,
# the same for all, in front of it.
unset(CPACK_PACKAGE_DESCRIPTION_SUMMARY)
