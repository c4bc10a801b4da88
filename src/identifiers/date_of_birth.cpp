#include "identifiers/date_of_birth.hpp"

#include <chrono>

namespace activation::identifiers {
namespace {

constexpr int kMinYear = 1900;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads 1..max_digits digits at `text[i]`; advances `i`.
bool read_number(std::string_view text, std::size_t& i, std::size_t min_digits, std::size_t max_digits,
                 int& value) {
  std::size_t start = i;
  value = 0;
  while (i < text.size() && is_digit(text[i]) && i - start < max_digits) {
    value = value * 10 + (text[i] - '0');
    ++i;
  }
  return i - start >= min_digits && (i == text.size() || !is_digit(text[i]));
}

bool is_leap(int year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap(year) ? 29 : kDays[month - 1];
}

void write_two_digits(int value, std::string& out) {
  out.push_back(static_cast<char>('0' + value / 10));
  out.push_back(static_cast<char>('0' + value % 10));
}

}  // namespace

CivilDate today_utc() {
  const auto days = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  const std::chrono::year_month_day date{days};
  return {static_cast<int>(date.year()), static_cast<int>(static_cast<unsigned>(date.month())),
          static_cast<int>(static_cast<unsigned>(date.day()))};
}

const char* normalize_date_of_birth(std::string_view value, const CivilDate& today, std::string& out) {
  int year = 0;
  int month = 0;
  int day = 0;
  std::size_t i = 0;

  if (value.size() >= 8 && value.substr(0, 8).find_first_not_of("0123456789") == std::string_view::npos &&
      (value.size() == 8 || !is_digit(value[8]))) {
    // YYYYMMDD
    year = (value[0] - '0') * 1000 + (value[1] - '0') * 100 + (value[2] - '0') * 10 + (value[3] - '0');
    month = (value[4] - '0') * 10 + (value[5] - '0');
    day = (value[6] - '0') * 10 + (value[7] - '0');
    i = 8;
  } else {
    if (!read_number(value, i, 1, 4, year)) return "expected a date written as YYYY-MM-DD";
    if (i != 4) {
      return "expected the year first, as in YYYY-MM-DD: day-first and month-first dates read both ways";
    }
    if (i >= value.size()) return "expected a date written as YYYY-MM-DD";
    char separator = value[i];
    if (separator != '-' && separator != '/' && separator != '.')
      return "expected a date written as YYYY-MM-DD";
    ++i;
    if (!read_number(value, i, 1, 2, month)) return "expected a date written as YYYY-MM-DD";
    if (i >= value.size() || value[i] != separator) return "expected a date written as YYYY-MM-DD";
    ++i;
    if (!read_number(value, i, 1, 2, day)) return "expected a date written as YYYY-MM-DD";
  }

  // An ISO 8601 date-time: the time of day does not matter.
  if (i < value.size()) {
    if (value[i] != 'T' && value[i] != 't' && value[i] != ' ') return "unexpected text after the date";
    std::string_view time = value.substr(i + 1);
    if (time.empty() || !is_digit(time[0])) return "unexpected text after the date";
  }

  if (month < 1 || month > 12) return "the month is not between 1 and 12";
  if (day < 1 || day > days_in_month(year, month)) return "the day does not exist in that month";
  if (year < kMinYear) return "the year is before 1900";
  if (year > today.year ||
      (year == today.year && (month > today.month || (month == today.month && day > today.day)))) {
    return "the date is in the future";
  }

  out.clear();
  out.push_back(static_cast<char>('0' + year / 1000));
  out.push_back(static_cast<char>('0' + year / 100 % 10));
  write_two_digits(year % 100, out);
  write_two_digits(month, out);
  write_two_digits(day, out);
  return nullptr;
}

}  // namespace activation::identifiers
