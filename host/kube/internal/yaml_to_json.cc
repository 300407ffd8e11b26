#include "host/kube/internal/yaml_to_json.h"

#include <yaml.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace vkhost::kube::internal {
namespace {

// Limits that keep a hostile file (deep nesting, aliases fanning out) from
// exhausting the stack or memory. Real kubeconfigs are far below them.
constexpr int kMaxDepth = 64;
constexpr int kMaxNodesVisited = 1'000'000;

// RAII owners for libyaml's C structs.
class YamlParser {
 public:
  YamlParser() : initialized_(yaml_parser_initialize(&parser_) != 0) {}
  ~YamlParser() {
    if (initialized_) yaml_parser_delete(&parser_);
  }
  YamlParser(const YamlParser&) = delete;
  YamlParser& operator=(const YamlParser&) = delete;

  bool initialized() const { return initialized_; }
  yaml_parser_t* get() { return &parser_; }

 private:
  yaml_parser_t parser_{};
  bool initialized_;
};

class YamlDocument {
 public:
  YamlDocument() = default;
  ~YamlDocument() {
    if (loaded_) yaml_document_delete(&document_);
  }
  YamlDocument(const YamlDocument&) = delete;
  YamlDocument& operator=(const YamlDocument&) = delete;

  bool Load(yaml_parser_t* parser) {
    loaded_ = yaml_parser_load(parser, &document_) != 0;
    return loaded_;
  }
  yaml_document_t* get() { return &document_; }

 private:
  yaml_document_t document_{};
  bool loaded_ = false;
};

class Converter {
 public:
  explicit Converter(yaml_document_t* doc) : doc_(doc) {}

  absl::StatusOr<nlohmann::json> Convert(yaml_node_t* node, int depth) {
    if (depth > kMaxDepth) {
      return absl::InvalidArgumentError("YAML nested too deeply");
    }
    if (++visited_ > kMaxNodesVisited) {
      return absl::InvalidArgumentError("YAML expands to too many nodes");
    }
    switch (node->type) {
      case YAML_SCALAR_NODE:
        return Scalar(node);
      case YAML_SEQUENCE_NODE:
        return Sequence(node, depth);
      case YAML_MAPPING_NODE:
        return Mapping(node, depth);
      default:
        return nlohmann::json();
    }
  }

 private:
  static nlohmann::json Scalar(yaml_node_t* node) {
    std::string value(reinterpret_cast<const char*>(node->data.scalar.value),
                      node->data.scalar.length);
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return value;
    const std::string lower = absl::AsciiStrToLower(value);
    if (lower == "true") return true;
    if (lower == "false") return false;
    if (lower.empty() || lower == "null" || lower == "~") return nullptr;
    return value;
  }

  absl::StatusOr<nlohmann::json> Sequence(yaml_node_t* node, int depth) {
    nlohmann::json out = nlohmann::json::array();
    for (yaml_node_item_t* item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; ++item) {
      auto value = Convert(yaml_document_get_node(doc_, *item), depth + 1);
      if (!value.ok()) return value.status();
      out.push_back(*std::move(value));
    }
    return out;
  }

  absl::StatusOr<nlohmann::json> Mapping(yaml_node_t* node, int depth) {
    nlohmann::json out = nlohmann::json::object();
    for (yaml_node_pair_t* pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; ++pair) {
      yaml_node_t* key = yaml_document_get_node(doc_, pair->key);
      if (key == nullptr || key->type != YAML_SCALAR_NODE) {
        return absl::InvalidArgumentError(
            absl::StrCat("YAML mapping key at line ", key ? key->start_mark.line + 1 : 0,
                         " is not a scalar"));
      }
      std::string name(reinterpret_cast<const char*>(key->data.scalar.value),
                       key->data.scalar.length);
      auto value = Convert(yaml_document_get_node(doc_, pair->value), depth + 1);
      if (!value.ok()) return value.status();
      out[name] = *std::move(value);
    }
    return out;
  }

  yaml_document_t* doc_;
  int visited_ = 0;
};

}  // namespace

absl::StatusOr<nlohmann::json> YamlToJson(std::string_view yaml) {
  YamlParser parser;
  if (!parser.initialized()) {
    return absl::ResourceExhaustedError("cannot initialize the YAML parser");
  }
  yaml_parser_set_input_string(
      parser.get(), reinterpret_cast<const unsigned char*>(yaml.data()),
      yaml.size());
  YamlDocument doc;
  if (!doc.Load(parser.get())) {
    const yaml_parser_t& p = *parser.get();
    return absl::InvalidArgumentError(
        absl::StrCat(p.problem ? p.problem : "malformed YAML", " at line ",
                     p.problem_mark.line + 1, " column ",
                     p.problem_mark.column + 1));
  }
  yaml_node_t* root = yaml_document_get_root_node(doc.get());
  if (root == nullptr) return nlohmann::json::object();
  return Converter(doc.get()).Convert(root, 0);
}

}  // namespace vkhost::kube::internal
