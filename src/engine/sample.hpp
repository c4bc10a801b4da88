// A generator of realistic, messy sample audiences. Rows have emails in mixed case with stray
// spaces, two phones in mixed national and international formats, names with accents and in
// non-Latin scripts, cities, free-text countries, dates of birth, and a share of bad values. The same seed
// gives the same rows, so tests and benches can regenerate an audience instead of storing it.
#ifndef ACTIVATION_ENGINE_SAMPLE_HPP_
#define ACTIVATION_ENGINE_SAMPLE_HPP_

#include <cstdint>
#include <ostream>
#include <random>
#include <string>

#include "activation/audience.hpp"

namespace activation::engine {

// The header of a sample CSV file.
inline constexpr const char* kSampleHeader =
    "CUSTOMERID,FIRSTNAME,LASTNAME,EMAIL,PHONE1,PHONE2,CITY,STATE,ZIP,COUNTRY,DOB,GENDER";

// The mapping of the sample columns to identifier fields.
std::vector<ColumnMapping> sample_mapping();

// Writes rows of a sample audience, one at a time, in bounded memory.
//
// Thread safety: one generator per thread.
class SampleGenerator {
 public:
  explicit SampleGenerator(std::uint64_t seed) : random_(seed) {}

  // Appends row number `index` (0-based) as one CSV line, with its line break, to `out`.
  void append_row(std::uint64_t index, std::string& out);

 private:
  std::uint64_t pick(std::uint64_t count) { return random_() % count; }
  bool chance(int percent) { return static_cast<int>(random_() % 100) < percent; }

  std::mt19937_64 random_;
};

// Writes a header and `rows` rows to `out`. Returns false when the stream failed.
bool write_sample_csv(std::ostream& out, std::uint64_t rows, std::uint64_t seed);

}  // namespace activation::engine

#endif  // ACTIVATION_ENGINE_SAMPLE_HPP_
