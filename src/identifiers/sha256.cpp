#include "identifiers/sha256.hpp"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__SSE2__) && defined(__GNUC__)
#include <tmmintrin.h>
#endif

// The low-level SHA-256 functions below are deprecated since OpenSSL 3.0; see sha256().
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

namespace activation::identifiers {

bool sha256(std::string_view data, Sha256Digest& digest) noexcept {
  // SHA256_Init/Update/Final are deprecated since OpenSSL 3.0 in favour of EVP_Digest*, but they
  // stay in every 3.x release and skip the provider dispatch. On the short strings of identifiers
  // they run in about 60% of the time of EVP_DigestInit_ex2 with a reused context, and
  // bench/identifiers_bench measures both. EVP_DigestInit_ex2 is the replacement if a release
  // drops them.
  SHA256_CTX context;
  return SHA256_Init(&context) == 1 && SHA256_Update(&context, data.data(), data.size()) == 1 &&
         SHA256_Final(digest.data(), &context) == 1;
}

#if defined(__SSE2__)
namespace {

// The digest's sixteen bytes from `first_word` on, read in the 4-byte words that SHA256_Final
// writes: a 16-byte load over those fresh stores could not take their values directly and would
// wait for them to retire. GCC merges four adjacent word loads into one such 16-byte load, so each
// word goes through a general register, kept there by an empty asm statement.
inline __attribute__((always_inline)) __m128i digest_half(const Sha256Digest& digest, int first_word) {
  auto word = [&](int index) {
    std::uint32_t value;
    std::memcpy(&value, digest.data() + 4 * index, sizeof value);
#if defined(__GNUC__)
    asm("" : "+r"(value));
#endif
    return _mm_cvtsi32_si128(static_cast<int>(value));
  };
  return _mm_unpacklo_epi64(_mm_unpacklo_epi32(word(first_word), word(first_word + 1)),
                            _mm_unpacklo_epi32(word(first_word + 2), word(first_word + 3)));
}

#if defined(__GNUC__)
// With SSSE3, each nibble becomes its hex digit in one table lookup (pshufb).
__attribute__((target("ssse3"))) void hex_encode_ssse3(const Sha256Digest& digest, char* text) {
  const __m128i digits = _mm_setr_epi8('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f');
  const __m128i low_mask = _mm_set1_epi8(0x0f);
  for (int half = 0; half < 2; ++half) {
    const __m128i bytes = digest_half(digest, 4 * half);
    const __m128i high = _mm_shuffle_epi8(digits, _mm_and_si128(_mm_srli_epi16(bytes, 4), low_mask));
    const __m128i low = _mm_shuffle_epi8(digits, _mm_and_si128(bytes, low_mask));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(text + 32 * half), _mm_unpacklo_epi8(high, low));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(text + 32 * half + 16), _mm_unpackhi_epi8(high, low));
  }
}

const bool kHasSsse3 = __builtin_cpu_supports("ssse3");
#endif

}  // namespace
#endif

void hex_encode(const Sha256Digest& digest, std::string& out) {
#if defined(__SSE2__) && defined(__GNUC__)
  if (kHasSsse3) {
    // A string that held a digest before keeps its size, and is then overwritten without a copy.
    out.resize(64);
    hex_encode_ssse3(digest, out.data());
    return;
  }
#endif
  hex_encode_baseline(digest, out);
}

void hex_encode_baseline(const Sha256Digest& digest, std::string& out) {
  out.resize(64);
  char* text = out.data();
#if defined(__SSE2__)
  // Sixteen bytes at a time: split each byte into its nibbles, turn a nibble n into '0' + n, plus
  // 39 more when n > 9 to reach 'a'..'f', then interleave the high and low nibbles.
  const __m128i low_mask = _mm_set1_epi8(0x0f);
  const __m128i nine = _mm_set1_epi8(9);
  const __m128i zero_char = _mm_set1_epi8('0');
  const __m128i letter_gap = _mm_set1_epi8('a' - '0' - 10);
  auto to_chars = [&](__m128i nibbles) {
    __m128i above_nine = _mm_cmpgt_epi8(nibbles, nine);
    return _mm_add_epi8(_mm_add_epi8(nibbles, zero_char), _mm_and_si128(above_nine, letter_gap));
  };
  for (int half = 0; half < 2; ++half) {
    const __m128i bytes = digest_half(digest, 4 * half);
    __m128i high = to_chars(_mm_and_si128(_mm_srli_epi16(bytes, 4), low_mask));
    __m128i low = to_chars(_mm_and_si128(bytes, low_mask));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(text + 32 * half), _mm_unpacklo_epi8(high, low));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(text + 32 * half + 16), _mm_unpackhi_epi8(high, low));
  }
#else
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < digest.size(); ++i) {
    text[2 * i] = kHex[digest[i] >> 4];
    text[2 * i + 1] = kHex[digest[i] & 0x0f];
  }
#endif
}

bool sha256_hex_into(std::string_view data, std::string& out) {
  Sha256Digest digest;
  if (!sha256(data, digest)) {
    out.clear();
    return false;
  }
  hex_encode(digest, out);
  return true;
}

}  // namespace activation::identifiers
