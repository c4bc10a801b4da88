// Constructors of the concrete sources; open_source() picks one by SourceSpec::type.
#ifndef ACTIVATION_SOURCES_SOURCES_HPP_
#define ACTIVATION_SOURCES_SOURCES_HPP_

#include <memory>

#include "activation/audience.hpp"

namespace activation::sources {

Result<std::unique_ptr<AudienceSource>> open_csv_source(const SourceSpec& spec);
Result<std::unique_ptr<AudienceSource>> open_ndjson_source(const SourceSpec& spec);
Result<std::unique_ptr<AudienceSource>> open_sqlite_source(const SourceSpec& spec);

// Parses a "<offset>:<line>" position of a file source.
bool parse_file_position(std::string_view text, std::uint64_t& offset, std::uint64_t& line);
std::string format_file_position(std::uint64_t offset, std::uint64_t line);

}  // namespace activation::sources

#endif  // ACTIVATION_SOURCES_SOURCES_HPP_
