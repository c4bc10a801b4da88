// libFuzzer target for the identifier normalizers. Besides crashes and sanitizer reports, it stops
// on a broken contract: a result that is neither a value nor an error, a digest that does not
// match, the SHA-256 of the empty string, or a fast path (phone, case folding) that disagrees
// with the libphonenumber or ICU path it replaces.
//
// Input layout: byte 0 picks the platform, byte 1 the field, byte 2 the region for the phone
// comparison; the rest is the value, optionally followed by 0x1f and the row's country.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "activation/identifiers.hpp"
#include "identifiers/phone.hpp"
#include "identifiers/text.hpp"

namespace {

using activation::Field;
using activation::NormalizedIdentifier;
using activation::Normalizer;
using activation::Platform;

const std::vector<Normalizer>& normalizers() {
  static const std::vector<Normalizer>* const kNormalizers = [] {
    auto* list = new std::vector<Normalizer>();
    for (int i = 0; i < activation::kPlatformCount; ++i) {
      list->push_back(Normalizer::create(static_cast<Platform>(i)).value());
    }
    return list;
  }();
  return *kNormalizers;
}

bool is_lower_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void check(bool condition) {
  if (!condition) __builtin_trap();
}

void check_result(const NormalizedIdentifier& id) {
  if (id.ok()) {
    check(!id.normalized.empty());
    check(activation::identifiers::scan_text(id.normalized).problem ==
          activation::identifiers::TextProblem::kNone);
    if (id.hashed) {
      check(is_lower_hex(id.sha256));
      check(id.sha256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
      check(id.was_prehashed ? id.sha256 == id.normalized
                             : id.sha256 == activation::sha256_hex(id.normalized));
    } else {
      check(id.sha256.empty());
    }
  } else {
    check(!id.error->code.empty() && !id.error->message.empty());
    check(id.normalized.empty() && id.sha256.empty() && !id.hashed);
  }
}

const char* const kRegions[] = {"US", "GB", "DE", "FR", "IN", "BR", "AR", "MX", "JP", "AU",
                                "CA", "IT", "NO", "KY", "AG", "IM", "RU", "CN", "ZA", "ZZ"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const Normalizer& normalizer = normalizers()[data[0] % activation::kPlatformCount];
  const auto field = static_cast<Field>(data[1] % activation::kFieldCount);
  const char* region = kRegions[data[2] % (sizeof(kRegions) / sizeof(kRegions[0]))];
  std::string_view rest(reinterpret_cast<const char*>(data + 3), size - 3);
  std::string_view value = rest;
  std::string_view country;
  if (std::size_t separator = rest.find('\x1f'); separator != std::string_view::npos) {
    value = rest.substr(0, separator);
    country = rest.substr(separator + 1);
  }

  NormalizedIdentifier id = normalizer.normalize(field, value, activation::RowContext{country});
  check_result(id);
  NormalizedIdentifier reused;
  normalizer.normalize_into(field, value, activation::RowContext{country}, reused);
  check(reused.ok() == id.ok() && reused.normalized == id.normalized && reused.sha256 == id.sha256);

  if (auto code = activation::country_to_alpha2(value)) {
    check(code->size() == 2 && (*code)[0] >= 'A' && (*code)[0] <= 'Z' && (*code)[1] >= 'A' &&
          (*code)[1] <= 'Z');
  }

  // The fast paths against the paths they stand in for, on short valid text.
  auto scan = activation::identifiers::scan_text(value);
  if (scan.problem == activation::identifiers::TextProblem::kNone && value.size() <= 128) {
    std::string fast;
    std::string slow;
    bool fast_ok = activation::identifiers::fold_case(value, scan.ascii, fast);
    bool slow_ok = activation::identifiers::fold_case_with_icu(value, slow);
    check(fast_ok == slow_ok && (!fast_ok || fast == slow));

    std::string fast_e164;
    std::string slow_e164;
    auto fast_check = activation::identifiers::parse_phone(value, region, fast_e164);
    auto slow_check = activation::identifiers::parse_phone_with_libphonenumber(value, region, slow_e164);
    check(fast_check == slow_check);
    check(fast_check == activation::identifiers::PhoneCheck::kNotPossible || fast_e164 == slow_e164);
  }
  return 0;
}
