// Helpers shared by the engine tests: scratch folders and small files.
#ifndef ACTIVATION_TESTS_ENGINE_TEST_UTIL_HPP_
#define ACTIVATION_TESTS_ENGINE_TEST_UTIL_HPP_

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace activation::testing {

// A folder under the system's temporary directory, removed with its contents at scope exit.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    std::random_device device;
    path_ = std::filesystem::temp_directory_path() /
            ("act-engine-" + tag + "-" + std::to_string(device()) + std::to_string(device()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_ENGINE_TEST_UTIL_HPP_
