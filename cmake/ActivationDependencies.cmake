# Finds the dependencies, all from Debian 12's packages. scripts/install-deps.sh installs them.

find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(SQLite3 REQUIRED)
# libpq for the PostgreSQL store (Debian: libpq-dev).
find_package(PostgreSQL REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc i18n)
find_package(PkgConfig REQUIRED)

# libphonenumber ships neither a CMake package nor a pkg-config file on Debian 12.
find_path(PHONENUMBER_INCLUDE_DIR phonenumbers/phonenumberutil.h REQUIRED)
find_library(PHONENUMBER_LIBRARY NAMES phonenumber REQUIRED)
find_package(Protobuf QUIET)
add_library(activation_phonenumber INTERFACE)
target_include_directories(activation_phonenumber SYSTEM INTERFACE "${PHONENUMBER_INCLUDE_DIR}")
target_link_libraries(activation_phonenumber INTERFACE "${PHONENUMBER_LIBRARY}")
if(Protobuf_FOUND)
  target_link_libraries(activation_phonenumber INTERFACE protobuf::libprotobuf)
endif()

if(ACTIVATION_BUILD_TESTS OR ACTIVATION_BUILD_EXAMPLES)
  pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
endif()
if(ACTIVATION_BUILD_TESTS)
  find_package(doctest REQUIRED)
endif()
