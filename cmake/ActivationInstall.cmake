# Install rules: headers, both libraries, the CMake package (activationConfig.cmake with its version
# file and exported targets) and the pkg-config file. Included from the top CMakeLists.txt after
# the libraries are defined, when ACTIVATION_INSTALL is ON.
#
#   find_package(activation)                    -> activation::activation (shared)
#   find_package(activation COMPONENTS static)  -> also activation::activation_static
#   pkg-config --cflags --libs activation       (add --static for the static library)

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(ACTIVATION_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/activation"
    CACHE STRING "Folder, below the install prefix, of activationConfig.cmake")

# The public headers include <fmt/format.h>, and Logger::log() instantiates fmt's formatting, so
# every consumer of the installed libraries needs fmt.
target_link_libraries(activation INTERFACE "$<INSTALL_INTERFACE:fmt::fmt>")
target_link_libraries(activation_static INTERFACE "$<INSTALL_INTERFACE:fmt::fmt>")

# The static library's link interface names activation_phonenumber, an INTERFACE target that exists
# only in this build (libphonenumber ships no CMake package). Installed, it becomes the plain
# library name, and protobuf's imported target when the build linked protobuf.
get_target_property(activation_static_links activation_static INTERFACE_LINK_LIBRARIES)
set(activation_installed_links)
foreach(item IN LISTS activation_static_links)
  if(item MATCHES "activation_phonenumber")
    list(APPEND activation_installed_links "$<BUILD_INTERFACE:${item}>")
  else()
    list(APPEND activation_installed_links "${item}")
  endif()
endforeach()
list(APPEND activation_installed_links "$<INSTALL_INTERFACE:$<LINK_ONLY:phonenumber>>")
set(ACTIVATION_USES_PROTOBUF OFF)
if(Protobuf_FOUND)
  set(ACTIVATION_USES_PROTOBUF ON)
  list(APPEND activation_installed_links "$<INSTALL_INTERFACE:$<LINK_ONLY:protobuf::libprotobuf>>")
endif()
set_property(TARGET activation_static PROPERTY INTERFACE_LINK_LIBRARIES "${activation_installed_links}")

# Headers: the C++ API, the generated version header and the C header as <activation.h>.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/activation" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        COMPONENT development FILES_MATCHING PATTERN "*.hpp")
install(FILES "${PROJECT_BINARY_DIR}/generated/activation/version.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/activation" COMPONENT development)
install(FILES "${PROJECT_SOURCE_DIR}/c_api/include/activation.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT development)

install(TARGETS activation EXPORT activationTargets
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT runtime NAMELINK_COMPONENT development
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS activation_static EXPORT activationStaticTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT development
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
if(TARGET activate)
  install(TARGETS activate RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT runtime)
endif()

install(EXPORT activationTargets NAMESPACE activation:: DESTINATION "${ACTIVATION_INSTALL_CMAKEDIR}"
        COMPONENT development)
install(EXPORT activationStaticTargets NAMESPACE activation:: DESTINATION "${ACTIVATION_INSTALL_CMAKEDIR}"
        COMPONENT development)

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/activationConfig.cmake.in"
                              "${PROJECT_BINARY_DIR}/activationConfig.cmake"
                              INSTALL_DESTINATION "${ACTIVATION_INSTALL_CMAKEDIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/activationConfigVersion.cmake"
                                 VERSION "${PROJECT_VERSION}" COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/activationConfig.cmake" "${PROJECT_BINARY_DIR}/activationConfigVersion.cmake"
        DESTINATION "${ACTIVATION_INSTALL_CMAKEDIR}" COMPONENT development)

# activation.pc finds its prefix relative to its own folder, so the installed tree can be moved.
file(RELATIVE_PATH ACTIVATION_PC_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" ACTIVATION_PC_PREFIX "${ACTIVATION_PC_PREFIX}")
set(ACTIVATION_PC_REQUIRES_PRIVATE "nlohmann_json libcurl libcrypto sqlite3 libpq icu-uc icu-i18n")
if(ACTIVATION_USES_PROTOBUF)
  string(APPEND ACTIVATION_PC_REQUIRES_PRIVATE " protobuf")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/activation.pc.in" "${PROJECT_BINARY_DIR}/activation.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/activation.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
        COMPONENT development)
