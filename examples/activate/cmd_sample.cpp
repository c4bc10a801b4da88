// activate sample: writes a realistic, messy sample audience as CSV.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "engine/sample.hpp"

namespace activate {

int run_sample(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate sample --rows N [--seed S] [--out FILE]\n\n"
      "Writes N rows of a generated audience as CSV (to stdout without --out): emails in mixed case\n"
      "with stray spaces, two phones in mixed national and international formats, names with accents\n"
      "and in non-Latin scripts, cities, free-text countries, dates of birth, and some bad values.\n"
      "The same seed (default 1) writes the same rows. Its columns:\n"
      "  CUSTOMERID,FIRSTNAME,LASTNAME,EMAIL,PHONE1,PHONE2,CITY,STATE,ZIP,COUNTRY,DOB,GENDER\n";
  auto args = parse_args("sample", raw_args, {"rows", "seed", "out"}, {"help"});
  if (!args) return 2;
  if (args->has("help")) {
    std::fputs(usage, stdout);
    return 0;
  }
  auto rows_text = args->get("rows");
  if (!rows_text) {
    std::fprintf(stderr, "activate sample: --rows is required\n\n%s", usage);
    return 2;
  }
  auto rows = parse_count("sample", "rows", *rows_text);
  if (!rows) return 2;
  long long seed = 1;
  if (auto text = args->get("seed")) {
    auto value = parse_count("sample", "seed", *text);
    if (!value) return 2;
    seed = *value;
  }

  bool ok = false;
  if (auto path = args->get("out")) {
    std::ofstream out(*path, std::ios::binary | std::ios::trunc);
    if (!out) {
      std::fprintf(stderr, "activate sample: cannot write '%s'\n", path->c_str());
      return 1;
    }
    ok = activation::engine::write_sample_csv(out, static_cast<std::uint64_t>(*rows),
                                              static_cast<std::uint64_t>(seed));
    if (ok)
      std::fprintf(stderr, "activate sample: wrote %s rows to %s\n", format_count(*rows).c_str(),
                   path->c_str());
  } else {
    ok = activation::engine::write_sample_csv(std::cout, static_cast<std::uint64_t>(*rows),
                                              static_cast<std::uint64_t>(seed));
  }
  if (!ok) {
    std::fprintf(stderr, "activate sample: writing the sample failed\n");
    return 1;
  }
  return 0;
}

}  // namespace activate
