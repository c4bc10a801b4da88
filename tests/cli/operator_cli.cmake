# Process-level tests of what an operator of the activate host reads: error codes of rejected
# credentials against the platform test server, configuration errors, the jobs table, the rejects
# export and the progress line. Included from tests/CMakeLists.txt.
add_executable(operator_cli_tests "${CMAKE_CURRENT_LIST_DIR}/operator_cli.cpp")
target_include_directories(operator_cli_tests PRIVATE "${PROJECT_SOURCE_DIR}/tests")
# The shared platform test header brings the process helpers and links the library's targets.
target_link_libraries(operator_cli_tests PRIVATE act_doctest_main act_core act_identifiers act_storage act_platform
                      act_engine nlohmann_json::nlohmann_json)
target_compile_definitions(operator_cli_tests PRIVATE
  ACT_ACTIVATE_PATH="$<TARGET_FILE:activate>"
  ACT_PLATFORM_SERVER_PATH="$<TARGET_FILE:activation-platform-server>")
activation_set_warnings(operator_cli_tests)
add_dependencies(operator_cli_tests activate activation-platform-server)
add_test(NAME operator_cli COMMAND operator_cli_tests)
set_tests_properties(operator_cli PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
