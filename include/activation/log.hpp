// The log sink that the host injects. The library never prints: with no sink set, logs are dropped.
//
// Messages carry job and destination ids where they apply, never secrets or raw personal data.
//
// Thread safety: the library may call a sink from any of its threads at once, so a sink must be
// safe to call concurrently.
#ifndef ACTIVATION_LOG_HPP_
#define ACTIVATION_LOG_HPP_

#include <functional>
#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "activation/export.hpp"

namespace activation {

enum class LogLevel : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4 };

ACT_EXPORT std::string_view log_level_name(LogLevel level) noexcept;

// Receives one formatted message; `component` names the part of the library ("queue", "meta").
using LogSink = std::function<void(LogLevel level, std::string_view component, std::string_view message)>;

// A sink with a minimum level. Copies share the sink.
class ACT_EXPORT Logger {
 public:
  Logger() = default;
  explicit Logger(LogSink sink, LogLevel min_level = LogLevel::kInfo);

  bool enabled(LogLevel level) const noexcept { return sink_ && level >= min_level_; }

  template <typename... Args>
  void log(LogLevel level, std::string_view component, fmt::format_string<Args...> format, Args&&... args) const {
    if (!enabled(level)) return;
    write(level, component, fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  void write(LogLevel level, std::string_view component, std::string_view message) const;

  std::shared_ptr<const LogSink> sink_;
  LogLevel min_level_ = LogLevel::kInfo;
};

}  // namespace activation

#endif  // ACTIVATION_LOG_HPP_
