// SHA-256 over OpenSSL, written as lowercase hex.
//
// Thread safety: safe from any thread; each thread keeps its own digest context.
#ifndef ACTIVATION_SRC_IDENTIFIERS_SHA256_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_SHA256_HPP_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace activation::identifiers {

using Sha256Digest = std::array<std::uint8_t, 32>;

// Computes the SHA-256 digest of `data`. Returns false only when OpenSSL fails (no SHA-256
// provider loaded), which leaves `digest` unspecified.
bool sha256(std::string_view data, Sha256Digest& digest) noexcept;

// Writes the 64 lowercase hex characters of the SHA-256 of `data` to `out`, reusing its
// capacity. Returns false when OpenSSL fails; `out` is then empty.
bool sha256_hex_into(std::string_view data, std::string& out);

// Writes `digest` as 64 lowercase hex characters to `out`.
void hex_encode(const Sha256Digest& digest, std::string& out);

// The same without the SSSE3 instructions that hex_encode() uses where the processor has them, so
// that the tests check both ways on any machine.
void hex_encode_baseline(const Sha256Digest& digest, std::string& out);

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_SHA256_HPP_
