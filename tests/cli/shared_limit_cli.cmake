# Process-level test of the rate limiter that worker processes share through a PostgreSQL store:
# several `activate worker` processes send to one ad account of the platform test server. It needs
# ACTIVATION_TEST_POSTGRES (scripts/with-postgres.sh sets it) and is skipped without it.
activation_add_host_server_suite(shared_limit_cli "${CMAKE_CURRENT_LIST_DIR}/shared_limit_cli.cpp"
  LIBS act_platform act_core PostgreSQL::PostgreSQL)
