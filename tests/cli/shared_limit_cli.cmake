# Process-level test of the rate limiter that worker processes share through a PostgreSQL store:
# several `activate worker` processes send to one ad account of the platform test server. It needs
# ACTIVATION_TEST_POSTGRES (scripts/with-postgres.sh sets it) and is skipped without it.
add_executable(shared_limit_cli_tests "${CMAKE_CURRENT_LIST_DIR}/shared_limit_cli.cpp")
target_include_directories(shared_limit_cli_tests PRIVATE "${PROJECT_SOURCE_DIR}/tests/engine"
                                                          "${PROJECT_SOURCE_DIR}/tests")
target_link_libraries(shared_limit_cli_tests PRIVATE act_doctest_main act_platform act_core
                                                     PostgreSQL::PostgreSQL nlohmann_json::nlohmann_json)
target_compile_definitions(shared_limit_cli_tests PRIVATE
  ACT_ACTIVATE_PATH="$<TARGET_FILE:activate>"
  ACT_PLATFORM_SERVER_PATH="$<TARGET_FILE:activation-platform-server>")
activation_set_warnings(shared_limit_cli_tests)
add_dependencies(shared_limit_cli_tests activate activation-platform-server)
add_test(NAME shared_limit_cli COMMAND shared_limit_cli_tests)
set_tests_properties(shared_limit_cli PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
