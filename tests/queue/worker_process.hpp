// A queue_test_worker child process for the multi-process tests, and readers of its log files.
#ifndef ACTIVATION_TESTS_QUEUE_WORKER_PROCESS_HPP_
#define ACTIVATION_TESTS_QUEUE_WORKER_PROCESS_HPP_

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace activation::testing {

using namespace std::chrono_literals;

// A child process running queue_test_worker; killed with SIGKILL at scope exit if still running.
class WorkerProcess {
 public:
  WorkerProcess(const std::vector<std::string>& args, const std::string& stdout_path) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // SIGTERM stays blocked across execv, so that a worker sent SIGTERM right after its start
      // still takes it through sigwait() instead of dying of it.
      sigset_t signals;
      sigemptyset(&signals);
      sigaddset(&signals, SIGTERM);
      sigprocmask(SIG_BLOCK, &signals, nullptr);
      const int fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) ::dup2(fd, STDOUT_FILENO);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(ACT_QUEUE_TEST_WORKER));
      for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      ::execv(ACT_QUEUE_TEST_WORKER, argv.data());
      ::_exit(127);
    }
  }
  ~WorkerProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  void signal(int signal_number) const { REQUIRE(::kill(pid_, signal_number) == 0); }

  // Waits for the process to exit (bounded) and returns its exit status, or -1 on a signal.
  int wait_exit(std::chrono::milliseconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        FAIL("worker process ", pid_, " did not exit in time");
      }
      std::this_thread::sleep_for(5ms);
    }
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  void kill_hard() {
    signal(SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    reaped_ = true;
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline int count_lines_with_prefix(const std::string& path, const std::string& prefix) {
  int n = 0;
  for (const auto& line : read_lines(path)) n += line.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_QUEUE_WORKER_PROCESS_HPP_
