// Date of birth parsing.
//
// Thread safety: stateless, safe from any thread.
#ifndef ACTIVATION_SRC_IDENTIFIERS_DATE_OF_BIRTH_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_DATE_OF_BIRTH_HPP_

#include <string>
#include <string_view>

namespace activation::identifiers {

// A calendar date, for tests and for the "today" that bounds a date of birth.
struct CivilDate {
  int year = 0;
  int month = 0;
  int day = 0;
};

// Returns today's date in UTC.
CivilDate today_utc();

// Parses a date of birth written year first: YYYY-MM-DD, YYYY/MM/DD or YYYY.MM.DD (month and day
// may have one digit), YYYYMMDD, or an ISO 8601 date-time whose date part is one of these. The
// date must exist, lie in 1900 or later, and not after `today`. Writes YYYYMMDD to `out` and
// returns nullptr, or returns why the value was rejected. Day-first and month-first dates are
// rejected because "03/04/1990" reads both ways.
const char* normalize_date_of_birth(std::string_view value, const CivilDate& today, std::string& out);

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_DATE_OF_BIRTH_HPP_
