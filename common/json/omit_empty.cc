#include "common/json/omit_empty.h"

#include <string>

namespace vkhost::apijson {
namespace {

bool IsEmpty(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return true;
    case nlohmann::json::value_t::string:
      return v.get_ref<const std::string&>().empty();
    case nlohmann::json::value_t::boolean:
      return !v.get<bool>();
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return v == 0;
    case nlohmann::json::value_t::object:
    case nlohmann::json::value_t::array:
      return v.empty();
    default:
      return false;
  }
}

}  // namespace

nlohmann::json OmitEmpty(const nlohmann::json& value) {
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      nlohmann::json v = OmitEmpty(it.value());
      if (!IsEmpty(v)) out[it.key()] = std::move(v);
    }
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : value) out.push_back(OmitEmpty(v));
    return out;
  }
  return value;
}

bool EqualOmittingEmpty(const nlohmann::json& a, const nlohmann::json& b) {
  return OmitEmpty(a) == OmitEmpty(b);
}

}  // namespace vkhost::apijson
