// Internal to host/kube: reading fields of untrusted JSON without throwing.
// nlohmann::json's value()/get() throw on a type mismatch; input from files
// and servers must never take the process down.
#ifndef VKHOST_HOST_KUBE_INTERNAL_JSON_FIELDS_H_
#define VKHOST_HOST_KUBE_INTERNAL_JSON_FIELDS_H_

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace vkhost::kube::internal {

// obj[key] if obj is an object holding a string there, else "".
inline std::string StringField(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// &obj[key] if obj is an object holding an object there, else nullptr.
inline const nlohmann::json* ObjectField(const nlohmann::json& obj,
                                         std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_object()) return nullptr;
  return &*it;
}

// JSON text of `value`; invalid UTF-8 in strings is replaced, not thrown on.
inline std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vkhost::kube::internal

#endif  // VKHOST_HOST_KUBE_INTERNAL_JSON_FIELDS_H_
