#include "sources/file_reader.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace activation::sources {

FileReader::~FileReader() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileReader::open(const std::string& path) {
  path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT) return not_found("audience file '" + path + "' does not exist");
    if (error == EACCES) {
      return Status(StatusCode::kPermissionDenied,
                    "audience file '" + path + "' is not readable: permission denied");
    }
    return io_error("cannot open audience file '" + path + "': " + std::strerror(error));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return invalid_argument("audience file '" + path + "' is not a regular file");
  }
  fd_ = fd;
  file_size_ = static_cast<std::uint64_t>(info.st_size);
  return Status::ok();
}

bool FileReader::refill() {
  if (fd_ < 0 || !error_.is_ok()) return false;
  buffer_offset_ += end_;
  pos_ = 0;
  end_ = 0;
  while (true) {
    ssize_t count = ::read(fd_, buffer_.data(), buffer_.size());
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      error_ = io_error("reading audience file '" + path_ + "' failed: " + std::strerror(errno));
      return false;
    }
    end_ = static_cast<std::size_t>(count);
    return count > 0;
  }
}

Status FileReader::seek(std::uint64_t offset) {
  if (fd_ < 0) return failed_precondition("audience file is not open");
  if (offset > file_size_) {
    return invalid_argument("position " + std::to_string(offset) + " is past the end of audience file '" +
                            path_ + "' (" + std::to_string(file_size_) + " bytes)");
  }
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
    return io_error("seeking in audience file '" + path_ + "' failed: " + std::strerror(errno));
  }
  buffer_offset_ = offset;
  pos_ = 0;
  end_ = 0;
  error_ = Status::ok();
  return Status::ok();
}

}  // namespace activation::sources
