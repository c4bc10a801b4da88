# Process-level tests of the activate host's distribution commands: the main job, bad input, and a
# worker killed with SIGKILL in the middle of a 1,000,000-row audience. Included from
# tests/CMakeLists.txt; the sources are not named *_test.cpp so that no suite glob picks them up.
add_executable(engine_cli_tests "${CMAKE_CURRENT_LIST_DIR}/engine_cli.cpp")
target_include_directories(engine_cli_tests PRIVATE "${PROJECT_SOURCE_DIR}/tests/engine")
target_link_libraries(engine_cli_tests PRIVATE act_doctest_main nlohmann_json::nlohmann_json)
target_compile_definitions(engine_cli_tests PRIVATE
  ACT_ACTIVATE_PATH="$<TARGET_FILE:activate>"
  ACT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
activation_set_warnings(engine_cli_tests)
add_dependencies(engine_cli_tests activate)
add_test(NAME engine_cli COMMAND engine_cli_tests)
set_tests_properties(engine_cli PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900)
