// common/json: comparing Kubernetes objects the way the API server stores
// them.
//
// The API server echoes what the host writes minus Go's `omitempty` values
// (null, "", false, 0, {} and [] disappear), plus fields the host never sets.
// Comparing a freshly built status with the server's copy therefore needs
// both in one canonical form, or every comparison would see a change and
// every reconcile would cost an API request.
#ifndef VKHOST_COMMON_JSON_OMIT_EMPTY_H_
#define VKHOST_COMMON_JSON_OMIT_EMPTY_H_

#include "nlohmann/json.hpp"

namespace vkhost::apijson {

// `value` with every empty member removed from every object, recursively.
// Array elements are kept (positions matter) but canonicalised themselves.
nlohmann::json OmitEmpty(const nlohmann::json& value);

// True when `a` and `b` are equal after OmitEmpty.
bool EqualOmittingEmpty(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace vkhost::apijson

#endif  // VKHOST_COMMON_JSON_OMIT_EMPTY_H_
