// Kubernetes resource quantities ("500m", "1.5Gi", "2e3") as resourceFieldRef
// needs them: parse, test for zero, read as whole units or thousandths rounded
// up the way resource.Quantity's Value() and MilliValue() round.
#ifndef VKHOST_HOST_RESOLVE_INTERNAL_QUANTITY_H_
#define VKHOST_HOST_RESOLVE_INTERNAL_QUANTITY_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vkhost::resolve::internal {

// An exact quantity: sign * digits * 10^exp10 * 2^exp2. Immutable value type.
class Quantity {
 public:
  // Zero.
  Quantity() = default;

  // Parses <sign><number><suffix> where the suffix is one of the binary
  // (Ki Mi Gi Ti Pi Ei), decimal (n u m "" k M G T P E) or exponent (e3, E-2)
  // forms. INVALID_ARGUMENT naming the text otherwise, or when it has more
  // significant digits than fit in 128 bits.
  static absl::StatusOr<Quantity> Parse(absl::string_view text);

  bool IsZero() const { return digits_ == 0; }

  // The value in whole units, rounded towards +infinity; saturates at the
  // int64 limits.
  int64_t Value() const { return ScaledCeil(0); }
  // The value in thousandths, rounded towards +infinity; saturates.
  int64_t MilliValue() const { return ScaledCeil(-3); }

 private:
  // ceil(value / 10^scale).
  int64_t ScaledCeil(int scale) const;

  bool negative_ = false;
  unsigned __int128 digits_ = 0;
  int exp10_ = 0;
  int exp2_ = 0;
};

}  // namespace vkhost::resolve::internal

#endif  // VKHOST_HOST_RESOLVE_INTERNAL_QUANTITY_H_
