// The main() of every doctest suite. Besides running the tests, it makes skipped test cases
// visible: doctest and ctest would otherwise report them as passed.
//
// A test case skips by logging a message that starts with "skipped: " and returning, such as
// MESSAGE("skipped: " << path << " is absent"). Test cases that doctest itself leaves out (a
// doctest::skip decorator) count as skipped too; those left out by a command-line filter (such as
// --test-suite-exclude) are only counted. At the end the suite prints one line per skipped test
// case with its reason. When at least one test case was
// skipped and none ran to its end without skipping, the suite exits with 77, which ctest reports
// as "Skipped" (tests/CMakeLists.txt sets SKIP_RETURN_CODE 77 on every suite).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kSkipExitCode = 77;
constexpr const char* kSkipPrefix = "skipped: ";

struct SkipRecord {
  std::string test_case;
  std::string reason;
};

// The record of skipped and completed test cases for one run. doctest calls reporters from the
// thread that runs the tests, and the lock covers a test that logs from another thread.
struct SkipLog {
  std::mutex mutex;
  std::vector<SkipRecord> skipped;
  int completed = 0;  // Test cases that ran to their end without a skip message.
  int filtered = 0;   // Test cases left out by command-line filters, counted but not listed.
  std::set<std::string> excluded_suites;  // Names given to --test-suite-exclude, without wildcards.
};

SkipLog& skip_log() {
  static SkipLog log;
  return log;
}

class SkipListener : public doctest::IReporter {
 public:
  explicit SkipListener(const doctest::ContextOptions&) {}

  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}

  void test_case_start(const doctest::TestCaseData& data) override {
    current_ = data.m_name;
    subcase_.clear();
    reasons_.clear();
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {
    std::lock_guard lock(skip_log().mutex);
    if (reasons_.empty()) {
      ++skip_log().completed;
      return;
    }
    for (const auto& reason : reasons_) skip_log().skipped.push_back({current_, reason});
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature& signature) override {
    subcase_ = signature.m_name.c_str();
  }
  void subcase_end() override { subcase_.clear(); }
  void log_assert(const doctest::AssertData&) override {}

  void log_message(const doctest::MessageData& message) override {
    std::string text = message.m_string.c_str();
    if (text.rfind(kSkipPrefix, 0) != 0) return;
    std::string reason = text.substr(std::char_traits<char>::length(kSkipPrefix));
    if (!subcase_.empty()) reason = "subcase \"" + subcase_ + "\": " + reason;
    reasons_.push_back(reason);
  }

  void test_case_skipped(const doctest::TestCaseData& data) override {
    std::lock_guard lock(skip_log().mutex);
    // doctest reports a case that is both marked skip and excluded by its suite as marked skip.
    const bool suite_excluded = data.m_test_suite != nullptr && skip_log().excluded_suites.count(data.m_test_suite) != 0;
    if (!data.m_skip || suite_excluded) {
      ++skip_log().filtered;
      return;
    }
    std::string reason = "marked skip";
    if (data.m_test_suite != nullptr && *data.m_test_suite != '\0') {
      reason += " in test suite \"" + std::string(data.m_test_suite) + "\"";
    }
    skip_log().skipped.push_back({data.m_name, reason});
  }

 private:
  std::string current_;
  std::string subcase_;
  std::vector<std::string> reasons_;
};

REGISTER_LISTENER("activation_skips", 1, SkipListener);

// Records the suite names of --test-suite-exclude (or -tse) options, comma-separated lists included.
void read_excluded_suites(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    for (std::string_view option : {"--test-suite-exclude=", "-tse="}) {
      if (arg.rfind(option, 0) != 0) continue;
      std::string_view names = arg.substr(option.size());
      while (!names.empty()) {
        std::size_t comma = names.find(',');
        skip_log().excluded_suites.emplace(names.substr(0, comma));
        names = comma == std::string_view::npos ? std::string_view() : names.substr(comma + 1);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  read_excluded_suites(argc, argv);
  doctest::Context context(argc, argv);
  int result = context.run();
  if (context.shouldExit()) return result;

  SkipLog& log = skip_log();
  std::lock_guard lock(log.mutex);
  if (log.skipped.empty() && log.filtered == 0) return result;
  if (!log.skipped.empty()) {
    std::printf("[skips] %zu test case(s) skipped, %d ran to their end:\n", log.skipped.size(), log.completed);
    for (const auto& record : log.skipped) {
      std::printf("[skips]   SKIPPED \"%s\": %s\n", record.test_case.c_str(), record.reason.c_str());
    }
  }
  if (log.filtered > 0) std::printf("[skips] %d test case(s) left out by command-line filters\n", log.filtered);
  std::fflush(stdout);
  if (result == 0 && log.completed == 0) return kSkipExitCode;
  return result;
}
