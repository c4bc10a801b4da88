// The subcommands of the activate host. Each is defined in its own cmd_<name>.cpp file and listed
// in the table of main.cpp.
#ifndef ACTIVATE_COMMANDS_HPP_
#define ACTIVATE_COMMANDS_HPP_

#include <string>
#include <vector>

namespace activate {

// Runs one subcommand. `args` excludes the program and subcommand names. Returns the process exit
// status: 0 on success, 1 when the work failed, 2 on a usage error.
using CommandFn = int (*)(const std::vector<std::string>& args);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

int run_hash(const std::vector<std::string>& args);
int run_distribute(const std::vector<std::string>& args);
int run_status(const std::vector<std::string>& args);
int run_jobs(const std::vector<std::string>& args);
int run_cancel(const std::vector<std::string>& args);
int run_retry(const std::vector<std::string>& args);
int run_worker(const std::vector<std::string>& args);
int run_dlq(const std::vector<std::string>& args);
int run_rejects(const std::vector<std::string>& args);
int run_metrics(const std::vector<std::string>& args);
int run_sample(const std::vector<std::string>& args);

}  // namespace activate

#endif  // ACTIVATE_COMMANDS_HPP_
