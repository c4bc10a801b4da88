// Starts activation-platform-server as a child process on a free loopback port and stops it by
// its PID when the object goes away.
#ifndef ACTIVATION_TESTS_PLATFORM_SERVER_PROCESS_HPP_
#define ACTIVATION_TESTS_PLATFORM_SERVER_PROCESS_HPP_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace activation::testing {

#ifndef ACT_PLATFORM_SERVER_PATH
#error "ACT_PLATFORM_SERVER_PATH must name the activation-platform-server binary"
#endif

class ServerProcess {
 public:
  // Starts the server with `arguments` (after "--port 0") and waits up to 10 s for the port line.
  // Throws std::runtime_error when the program cannot be started or prints no port.
  explicit ServerProcess(const std::vector<std::string>& arguments) {
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");

    std::vector<std::string> argv_strings = {ACT_PLATFORM_SERVER_PATH, "--port", "0"};
    argv_strings.insert(argv_strings.end(), arguments.begin(), arguments.end());
    std::vector<char*> argv;
    for (std::string& argument : argv_strings) argv.push_back(argument.data());
    argv.push_back(nullptr);

    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(pipe_fds[1], STDOUT_FILENO);
      // The server's start and stop lines would clutter the test output.
      int null_fd = open("/dev/null", O_WRONLY);
      if (null_fd >= 0) dup2(null_fd, STDERR_FILENO);
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(pipe_fds[1]);
    read_fd_ = pipe_fds[0];
    port_ = read_port();
    if (port_ <= 0) {
      stop();
      throw std::runtime_error(std::string("the platform server printed no port: ") +
                               ACT_PLATFORM_SERVER_PATH);
    }
  }

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  ~ServerProcess() { stop(); }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string meta_url() const { return base_url() + "/meta/v24.0"; }

  // Sends SIGTERM to the server's PID and waits for it; SIGKILL after 5 s.
  void stop() {
    if (read_fd_ >= 0) {
      close(read_fd_);
      read_fd_ = -1;
    }
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

 private:
  int read_port() {
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd poll_fd{read_fd_, POLLIN, 0};
      if (poll(&poll_fd, 1, 100) <= 0) continue;
      char c = 0;
      ssize_t got = read(read_fd_, &c, 1);
      if (got <= 0) return -1;
      if (c == '\n') return std::atoi(line.c_str());
      line.push_back(c);
    }
    return -1;
  }

  pid_t pid_ = -1;
  int read_fd_ = -1;
  int port_ = -1;
};

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_PLATFORM_SERVER_PROCESS_HPP_
