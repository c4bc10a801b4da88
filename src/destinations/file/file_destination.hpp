// The file destination: each batch becomes files in a platform's upload format, written under a
// temporary name and renamed when complete, plus a manifest per job.
#ifndef ACTIVATION_DESTINATIONS_FILE_FILE_DESTINATION_HPP_
#define ACTIVATION_DESTINATIONS_FILE_FILE_DESTINATION_HPP_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "activation/backend/destination.hpp"

namespace activation::destinations {

enum class FileFormat : int { kMetaCsv = 0, kMetaJson, kGoogleJson, kHashedCsv };

std::string_view file_format_name(FileFormat format) noexcept;
std::optional<FileFormat> parse_file_format(std::string_view name) noexcept;

// The checked `settings` of one file destination.
struct FileSettings {
  std::string directory;
  FileFormat format = FileFormat::kHashedCsv;
  Platform profile = Platform::kMeta;
  bool sync = true;
};

// Reads and checks the settings of `config` without touching the file system. Errors are
// kInvalidArgument naming "destination '<name>': settings.<key>" and what was expected.
Result<FileSettings> parse_file_settings(const DestinationConfig& config);

// Creates the adapter; besides parse_file_settings(), fails when the folder cannot be created or
// written.
Result<std::unique_ptr<DestinationAdapter>> make_file_destination(const DestinationConfig& config,
                                                                  const DestinationEnvironment& environment);

// Renders the body of one file into `out`: `operations`, all of type `type`, in `format`.
// `field_slots` fixes the columns. `settings_json` contains format options (Google's account ids).
// `out` keeps its capacity, so a caller that renders many files reuses one buffer.
void render_file(FileFormat format, const std::vector<std::pair<Field, int>>& field_slots,
                 const std::vector<const MemberOperation*>& operations, OperationType type,
                 std::string_view settings_json, std::string& out);

}  // namespace activation::destinations

#endif  // ACTIVATION_DESTINATIONS_FILE_FILE_DESTINATION_HPP_
