#include <doctest/doctest.h>

#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "identifiers/sha256.hpp"

using activation::identifiers::hex_encode;
using activation::identifiers::hex_encode_baseline;
using activation::identifiers::sha256;
using activation::identifiers::sha256_hex_into;
using activation::identifiers::Sha256Digest;

namespace {

std::string hex_of(const std::string& data) {
  std::string hex;
  REQUIRE(sha256_hex_into(data, hex));
  return hex;
}

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-2 test vectors") {
  CHECK(hex_of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex_of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(hex_of(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 repeats after another value") {
  // Each digest starts from a copy of one initialized context, so no value may see the one before.
  const std::string first = hex_of("mary@example.com");
  hex_of(std::string(200, 'x'));
  CHECK(hex_of("mary@example.com") == first);
}

TEST_CASE("hex encoding matches a reference") {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2000; ++round) {
    Sha256Digest digest;
    for (auto& byte : digest) byte = static_cast<std::uint8_t>(rng());
    if (round == 0) digest.fill(0x00);
    if (round == 1) digest.fill(0xff);

    std::string reference;
    for (std::uint8_t byte : digest) {
      char pair[3];
      std::snprintf(pair, sizeof pair, "%02x", byte);
      reference += pair;
    }
    std::string encoded = "left over from an earlier value";
    hex_encode(digest, encoded);
    REQUIRE(encoded == reference);
    std::string baseline = "left over from an earlier value";
    hex_encode_baseline(digest, baseline);
    REQUIRE(baseline == reference);
  }
}

TEST_CASE("sha256 agrees across threads") {
  std::vector<std::string> values;
  for (int i = 0; i < 500; ++i) values.push_back("customer" + std::to_string(i) + "@example.com");
  std::vector<std::string> expected;
  for (const std::string& value : values) expected.push_back(hex_of(value));

  constexpr int kThreads = 4;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string hex;
      for (int pass = 0; pass < 20; ++pass) {
        for (std::size_t i = 0; i < values.size(); ++i) {
          if (!sha256_hex_into(values[i], hex) || hex != expected[i]) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) CHECK(mismatches[t] == 0);
}

TEST_CASE("sha256 writes the raw digest") {
  Sha256Digest digest{};
  REQUIRE(sha256("abc", digest));
  CHECK(digest[0] == 0xba);
  CHECK(digest[1] == 0x78);
  CHECK(digest[31] == 0xad);
}
