# Process-level tests of what an operator of the activate host reads: error codes of rejected
# credentials against the platform test server, configuration errors, the jobs table, the rejects
# export and the progress line. Included from tests/CMakeLists.txt. The shared platform test
# header brings the process helpers, so the suite links the library's targets.
activation_add_host_server_suite(operator_cli "${CMAKE_CURRENT_LIST_DIR}/operator_cli.cpp"
  LIBS act_core act_identifiers act_storage act_platform act_engine)
