// A buffered reader over a file descriptor that knows the byte offset of every byte it returns,
// so that a source can report and seek to exact positions.
#ifndef ACTIVATION_SOURCES_FILE_READER_HPP_
#define ACTIVATION_SOURCES_FILE_READER_HPP_

#include <cstdint>
#include <string>
#include <vector>

#include "activation/status.hpp"

namespace activation::sources {

class FileReader {
 public:
  FileReader() = default;
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Opens `path` for reading. Returns kNotFound, kPermissionDenied or kIoError naming the file.
  Status open(const std::string& path);

  // Returns the next byte, or -1 at the end of the file. An I/O error also ends the stream and is
  // kept in error().
  int get() {
    if (pos_ == end_ && !refill()) return -1;
    return static_cast<unsigned char>(buffer_[pos_++]);
  }
  // Returns the next byte without consuming it, or -1 at the end.
  int peek() {
    if (pos_ == end_ && !refill()) return -1;
    return static_cast<unsigned char>(buffer_[pos_]);
  }
  // The unread bytes of the buffer; refills it first when it is empty. Empty at the end.
  const char* data() { return buffer_.data() + pos_; }
  std::size_t available() {
    if (pos_ == end_) refill();
    return end_ - pos_;
  }
  void consume(std::size_t count) { pos_ += count; }

  // Byte offset of the next byte get() returns.
  std::uint64_t offset() const noexcept { return buffer_offset_ + pos_; }
  Status seek(std::uint64_t offset);
  std::uint64_t file_size() const noexcept { return file_size_; }
  const Status& error() const noexcept { return error_; }
  const std::string& path() const noexcept { return path_; }

 private:
  bool refill();

  int fd_ = -1;
  std::string path_;
  std::vector<char> buffer_ = std::vector<char>(1 << 20);
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  std::uint64_t buffer_offset_ = 0;
  std::uint64_t file_size_ = 0;
  Status error_;
};

}  // namespace activation::sources

#endif  // ACTIVATION_SOURCES_FILE_READER_HPP_
