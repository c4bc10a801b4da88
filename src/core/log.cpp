#include "activation/log.hpp"

namespace activation {

std::string_view log_level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "unknown";
}

Logger::Logger(LogSink sink, LogLevel min_level)
    : sink_(sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr), min_level_(min_level) {}

void Logger::write(LogLevel level, std::string_view component, std::string_view message) const {
  // A sink that throws must not take the library down with it.
  try {
    (*sink_)(level, component, message);
  } catch (...) {
  }
}

}  // namespace activation
