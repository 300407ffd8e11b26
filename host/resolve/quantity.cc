#include "host/resolve/internal/quantity.h"

#include <limits>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vkhost::resolve::internal {
namespace {

using u128 = unsigned __int128;

constexpr u128 kU128Max = ~static_cast<u128>(0);
constexpr int kMaxExponent = 1000;

struct Suffix {
  absl::string_view text;
  int exp10;
  int exp2;
};

// Every suffix but the "e<n>" exponent form.
constexpr Suffix kSuffixes[] = {
    {"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40},
    {"Pi", 0, 50}, {"Ei", 0, 60}, {"n", -9, 0},  {"u", -6, 0},
    {"m", -3, 0},  {"", 0, 0},    {"k", 3, 0},   {"M", 6, 0},
    {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},
};

absl::Status Invalid(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid quantity \"", text, "\": ", why));
}

bool TimesTen(u128& value) {
  if (value > kU128Max / 10) return false;
  value *= 10;
  return true;
}

}  // namespace

absl::StatusOr<Quantity> Quantity::Parse(absl::string_view text) {
  Quantity q;
  size_t pos = 0;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    q.negative_ = text[pos] == '-';
    ++pos;
  }
  // Zeros are held back until a non-zero digit follows so that "1" followed
  // by many zeros does not overflow: they end up in the exponent instead.
  int pending_zeros = 0;
  int digit_count = 0;
  bool in_fraction = false;
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (c == '.' && !in_fraction) {
      in_fraction = true;
      continue;
    }
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) break;
    ++digit_count;
    if (in_fraction) --q.exp10_;
    if (c == '0') {
      ++pending_zeros;
      continue;
    }
    for (int i = 0; i <= pending_zeros; ++i) {
      if (!TimesTen(q.digits_)) return Invalid(text, "too many digits");
    }
    pending_zeros = 0;
    q.digits_ += static_cast<unsigned>(c - '0');
  }
  if (digit_count == 0) return Invalid(text, "no digits");
  q.exp10_ += pending_zeros;

  const absl::string_view suffix = text.substr(pos);
  bool matched = false;
  for (const Suffix& s : kSuffixes) {
    if (suffix == s.text) {
      q.exp10_ += s.exp10;
      q.exp2_ = s.exp2;
      matched = true;
      break;
    }
  }
  if (!matched) {
    int exponent = 0;
    if (suffix.size() < 2 || (suffix[0] != 'e' && suffix[0] != 'E') ||
        !absl::SimpleAtoi(suffix.substr(1), &exponent) ||
        absl::ascii_isspace(static_cast<unsigned char>(suffix[1])) ||
        !absl::ascii_isdigit(static_cast<unsigned char>(suffix.back()))) {
      return Invalid(text, "unknown suffix");
    }
    if (exponent > kMaxExponent || exponent < -kMaxExponent) {
      return Invalid(text, "exponent out of range");
    }
    q.exp10_ += exponent;
  }
  if (q.digits_ == 0) q.negative_ = false;
  return q;
}

int64_t Quantity::ScaledCeil(int scale) const {
  if (digits_ == 0) return 0;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t saturated = negative_ ? kMin : kMax;

  u128 n = digits_;
  if (exp2_ > 0) {
    if (n > (kU128Max >> exp2_)) return saturated;
    n <<= exp2_;
  }
  bool remainder = false;
  const int shift = exp10_ - scale;
  for (int i = 0; i < shift; ++i) {
    if (!TimesTen(n)) return saturated;
  }
  for (int i = 0; i < -shift && n != 0; ++i) {
    if (n % 10 != 0) remainder = true;
    n /= 10;
  }
  if (n == 0 && !remainder) return 0;
  if (negative_) {
    // ceil of a negative number drops the fraction.
    const u128 limit = static_cast<u128>(kMax) + 1;
    if (n >= limit) return kMin;
    return -static_cast<int64_t>(n);
  }
  if (remainder) ++n;
  if (n > static_cast<u128>(kMax)) return kMax;
  return static_cast<int64_t>(n);
}

}  // namespace vkhost::resolve::internal
