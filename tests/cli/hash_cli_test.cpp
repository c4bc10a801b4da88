// `activate hash` as a user runs it: a real process, NDJSON in on stdin, NDJSON out on stdout.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

using Json = nlohmann::json;

namespace {

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs activate with `args`, writes `input` to its stdin and collects both output streams.
// Writing and reading are interleaved with poll() so that a large input cannot deadlock on full
// pipes.
Run run_activate(const std::vector<std::string>& args, const std::string& input) {
  int in_pipe[2];
  int out_pipe[2];
  int err_pipe[2];
  REQUIRE(::pipe(in_pipe) == 0);
  REQUIRE(::pipe(out_pipe) == 0);
  REQUIRE(::pipe(err_pipe) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(ACT_ACTIVATE_PATH));
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(ACT_ACTIVATE_PATH, argv.data());
    std::_Exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);

  Run run;
  std::size_t written = 0;
  int in_fd = in_pipe[1];
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  bool out_open = true;
  bool err_open = true;
  char buffer[65536];
  while (out_open || err_open) {
    pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    int count = in_fd >= 0 ? 3 : 2;
    int ready = ::poll(fds, static_cast<nfds_t>(count), 60000);
    REQUIRE_MESSAGE(ready > 0, "activate hash produced no output for 60 s");
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN) written = input.size();
      if (written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
    for (int k = 0; k < 2; ++k) {
      if ((fds[k].revents & (POLLIN | POLLHUP)) == 0) continue;
      ssize_t n = ::read(fds[k].fd, buffer, sizeof buffer);
      if (n <= 0) {
        (k == 0 ? out_open : err_open) = false;
      } else {
        (k == 0 ? run.out : run.err).append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::vector<Json> parse_lines(const std::string& out) {
  std::vector<Json> lines;
  std::size_t start = 0;
  while (start < out.size()) {
    std::size_t end = out.find('\n', start);
    REQUIRE_MESSAGE(end != std::string::npos, "output does not end with a newline");
    lines.push_back(Json::parse(out.substr(start, end - start)));
    start = end + 1;
  }
  return lines;
}

std::string request(const std::string& field, const std::string& value, const std::string& country = "") {
  Json line = {{"field", field}, {"value", value}};
  if (!country.empty()) line["country"] = country;
  return line.dump() + "\n";
}

}  // namespace

TEST_CASE("hash shows what Meta receives") {
  std::string input = request("email", " Mary@Example.com ") + request("phone", "(650) 253-0000", "US") +
                      request("phone", "(650) 253-0000") + request("external_id", "crm-42") +
                      request("city", "!!!");
  Run run = run_activate({"hash", "--platform", "meta"}, input);
  REQUIRE(run.exit_code == 0);
  CHECK(run.err.empty());
  std::vector<Json> lines = parse_lines(run.out);
  REQUIRE(lines.size() == 5);

  CHECK(lines[0] == Json::parse(R"({"field": "email", "input": " Mary@Example.com ",
      "normalized": "mary@example.com",
      "sha256": "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79",
      "error": null, "warnings": []})"));
  CHECK(lines[1]["normalized"] == "16502530000");
  CHECK(lines[1]["warnings"].empty());
  // Without a country the region is guessed: the number is accepted with a warning.
  CHECK(lines[2]["normalized"] == "16502530000");
  REQUIRE(lines[2]["warnings"].size() == 1);
  CHECK(lines[2]["warnings"][0]["code"] == "phone_region_guessed");
  CHECK(lines[2]["warnings"][0]["message"] ==
        "the row has no country; read as a number of US, the default region");
  // Meta takes the external id as it is.
  CHECK(lines[3]["normalized"] == "crm-42");
  CHECK(lines[3]["sha256"].is_null());
  CHECK(lines[4]["error"] == Json::parse(R"({"code": "invalid_city", "message": "contains no letters"})"));
  CHECK(lines[4]["normalized"].is_null());
  CHECK(lines[4]["sha256"].is_null());
}

TEST_CASE("hash applies each platform's rules") {
  std::string input = request("email", "J.Doe+news@gmail.com") + request("phone", "+44 20 7946 0958");
  std::vector<Json> google = parse_lines(run_activate({"hash", "--platform", "google"}, input).out);
  std::vector<Json> meta = parse_lines(run_activate({"hash", "--platform", "meta"}, input).out);
  REQUIRE(google.size() == 2);
  REQUIRE(meta.size() == 2);
  CHECK(google[0]["normalized"] == "jdoe@gmail.com");
  CHECK(meta[0]["normalized"] == "j.doe+news@gmail.com");
  CHECK(google[1]["normalized"] == "+442079460958");
  CHECK(meta[1]["normalized"] == "442079460958");

  std::vector<Json> kept =
      parse_lines(run_activate({"hash", "--platform", "google", "--no-gmail-canonicalization"}, input).out);
  CHECK(kept[0]["normalized"] == "j.doe+news@gmail.com");

  std::vector<Json> tiktok =
      parse_lines(run_activate({"hash", "--platform", "tiktok"}, request("city", "Paris")).out);
  REQUIRE(tiktok.size() == 1);
  CHECK(tiktok[0]["error"]["code"] == "field_not_accepted");
  CHECK(tiktok[0]["error"]["message"] == "tiktok does not accept city");
}

TEST_CASE("hash reports bad lines by number and goes on") {
  std::string input = request("email", "a@b.co") + "{not json\n" + "\n" + "[1, 2]\n" +
                      R"({"field": "shoe_size", "value": "42"})"
                      "\n" +
                      R"({"field": "email"})"
                      "\n" +
                      R"({"field": "zip", "value": 94035, "country": "US"})"
                      "\n" +
                      "\xff\xfe\n" +
                      R"({"field": "first_name", "value": "Jo\u0000hn"})"
                      "\n" +
                      request("email", "z@y.io");
  Run run = run_activate({"hash", "--platform", "meta"}, input);
  REQUIRE(run.exit_code == 0);
  std::vector<Json> lines = parse_lines(run.out);
  REQUIRE(lines.size() == 10);
  CHECK(lines[0]["error"].is_null());
  CHECK(lines[1]["line"] == 2);
  CHECK(lines[1]["error"]["code"] == "invalid_json");
  CHECK(lines[1]["error"]["message"] == "line 2: not valid JSON (or not UTF-8)");
  CHECK(lines[2]["error"]["code"] == "invalid_json");
  CHECK(lines[3]["error"]["code"] == "invalid_request");
  CHECK(lines[4]["error"]["code"] == "unknown_field");
  CHECK(lines[4]["field"] == "shoe_size");
  CHECK(lines[5]["error"]["message"] == "line 6: \"value\" is missing or not a string or a whole number");
  CHECK(lines[6]["normalized"] == "94035");  // A number is read as its digits.
  CHECK(lines[7]["line"] == 8);
  CHECK(lines[7]["error"]["code"] == "invalid_json");
  CHECK(lines[8]["error"]["code"] == "control_character");
  CHECK(lines[9]["normalized"] == "z@y.io");
}

TEST_CASE("hash survives hostile values") {
  std::string megabyte(1 << 20, 'a');
  std::string input = request("first_name", megabyte) + request("last_name", "\U0001F600\U0001F601") +
                      request("first_name", "\u202e\u05e9\u05dc\u05d5\u05dd") + request("email", "....") +
                      std::string(5 << 20, 'x') + "\n" + request("phone", "+1 650 253 0000");
  Run run = run_activate({"hash", "--platform", "meta"}, input);
  REQUIRE(run.exit_code == 0);
  std::vector<Json> lines = parse_lines(run.out);
  REQUIRE(lines.size() == 6);
  CHECK(lines[0]["error"]["code"] == "too_long");
  CHECK(lines[1]["error"]["code"] == "invalid_name");
  CHECK(lines[2]["normalized"] == "\u05e9\u05dc\u05d5\u05dd");
  CHECK(lines[3]["error"]["code"] == "invalid_email");
  CHECK(lines[4]["error"]["message"] == "line 5: longer than 4 MiB; skipped");
  CHECK(lines[5]["normalized"] == "16502530000");
}

TEST_CASE("hash usage errors exit with 2") {
  CHECK(run_activate({"hash"}, "").exit_code == 2);
  Run unknown = run_activate({"hash", "--platform", "myspace"}, "");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err ==
        "activate hash: unknown platform 'myspace'; expected meta, google, linkedin, tiktok or snapchat\n");
  Run region = run_activate({"hash", "--platform", "meta", "--default-region", "QQ"}, "");
  CHECK(region.exit_code == 2);
  CHECK(region.err.find("default_region 'QQ'") != std::string::npos);
  Run help = run_activate({"hash", "--help"}, "");
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("usage: activate hash --platform PLATFORM") == 0);
}
