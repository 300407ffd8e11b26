#include "tests/compat/proto_compat.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "google/protobuf/text_format.h"
#include "vkhost/provider/v1/identity.pb.h"
#include "vkhost/provider/v1/node.pb.h"
#include "vkhost/provider/v1/pods.pb.h"
#include "vkhost/provider/v1/stats.pb.h"
#include "vkhost/provider/v1/streams.pb.h"

namespace vkhost::compat {
namespace {

namespace pb = ::google::protobuf;
namespace v1 = ::vkhost::provider::v1;

constexpr char kV1Package[] = "vkhost.provider.v1";

// Collects parser errors so the status names the line and column.
class ParseErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) {
      // The parser counts from 0; editors count from 1.
      first_ = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ",
                            message);
    }
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

// "TYPE_INT64" -> "int64", "LABEL_REPEATED" -> "repeated".
std::string TypeWord(pb::FieldDescriptorProto::Type type) {
  return absl::AsciiStrToLower(
      pb::FieldDescriptorProto::Type_Name(type).substr(5));
}
std::string LabelWord(pb::FieldDescriptorProto::Label label) {
  return absl::AsciiStrToLower(
      pb::FieldDescriptorProto::Label_Name(label).substr(6));
}

template <typename T>
const T* FindByName(const pb::RepeatedPtrField<T>& items,
                    const std::string& name) {
  for (const T& item : items) {
    if (item.name() == name) return &item;
  }
  return nullptr;
}

template <typename T>
const T* FindByNumber(const pb::RepeatedPtrField<T>& items, int number) {
  for (const T& item : items) {
    if (item.number() == number) return &item;
  }
  return nullptr;
}

// The oneof a field really belongs to, or "" when none. proto3 `optional`
// fields sit in a synthetic oneof that is an implementation detail of
// presence; that change is reported as a presence change instead.
std::string RealOneofName(const pb::DescriptorProto& message,
                          const pb::FieldDescriptorProto& field) {
  if (!field.has_oneof_index() || field.proto3_optional()) return "";
  if (field.oneof_index() < 0 ||
      field.oneof_index() >= message.oneof_decl_size()) {
    return "";
  }
  return message.oneof_decl(field.oneof_index()).name();
}

// Everything the current descriptors define, by fully qualified name.
struct CurrentIndex {
  std::map<std::string, const pb::FileDescriptorProto*> files;
  std::map<std::string, const pb::DescriptorProto*> messages;
  std::map<std::string, const pb::EnumDescriptorProto*> enums;
  std::map<std::string, const pb::ServiceDescriptorProto*> services;

  void AddMessages(const std::string& scope,
                   const pb::RepeatedPtrField<pb::DescriptorProto>& list) {
    for (const auto& message : list) {
      const std::string name = absl::StrCat(scope, ".", message.name());
      messages[name] = &message;
      AddMessages(name, message.nested_type());
      AddEnums(name, message.enum_type());
    }
  }
  void AddEnums(const std::string& scope,
                const pb::RepeatedPtrField<pb::EnumDescriptorProto>& list) {
    for (const auto& e : list) enums[absl::StrCat(scope, ".", e.name())] = &e;
  }

  explicit CurrentIndex(const pb::FileDescriptorSet& set) {
    for (const auto& file : set.file()) {
      files[file.name()] = &file;
      AddMessages(file.package(), file.message_type());
      AddEnums(file.package(), file.enum_type());
      for (const auto& service : file.service()) {
        services[absl::StrCat(file.package(), ".", service.name())] = &service;
      }
    }
  }
};

// Walks the baseline and compares each element with its current namesake.
class Comparison {
 public:
  explicit Comparison(const pb::FileDescriptorSet& current)
      : current_(current) {}

  void CompareFile(const pb::FileDescriptorProto& old) {
    auto it = current_.files.find(old.name());
    if (it == current_.files.end()) {
      Report(old.name(),
             "file removed or renamed (code importing it no longer builds)");
    } else {
      const pb::FileDescriptorProto& cur = *it->second;
      if (cur.package() != old.package()) {
        // Every type in the file changes its full name; listing each one
        // would bury the cause.
        Report(old.name(),
               absl::StrCat("package renamed from \"", old.package(),
                            "\" to \"", cur.package(),
                            "\" (every type and RPC path changes; that is a "
                            "new major version)"));
        return;
      }
      if (cur.syntax() != old.syntax()) {
        Report(old.name(), absl::StrCat("syntax changed from \"", old.syntax(),
                                        "\" to \"", cur.syntax(), "\""));
      }
    }
    // Contents are looked up by full name across all current files, so a
    // type moved to another file of the package is still found.
    for (const auto& message : old.message_type()) {
      CompareMessage(old.package(), message);
    }
    for (const auto& e : old.enum_type()) CompareEnum(old.package(), e);
    for (const auto& service : old.service()) {
      CompareService(old.package(), service);
    }
  }

  std::vector<Incompatibility> TakeFindings() { return std::move(findings_); }

 private:
  void Report(std::string element, std::string description) {
    findings_.push_back({std::move(element), std::move(description)});
  }

  void CompareMessage(const std::string& scope,
                      const pb::DescriptorProto& old) {
    const std::string name = absl::StrCat(scope, ".", old.name());
    auto it = current_.messages.find(name);
    if (it == current_.messages.end()) {
      Report(name, "message removed or renamed");
      return;
    }
    const pb::DescriptorProto& cur = *it->second;
    for (const auto& field : old.field()) {
      CompareField(name, old, field, cur);
    }
    for (const auto& nested : old.nested_type()) CompareMessage(name, nested);
    for (const auto& e : old.enum_type()) CompareEnum(name, e);
  }

  void CompareField(const std::string& message_name,
                    const pb::DescriptorProto& old_message,
                    const pb::FieldDescriptorProto& old,
                    const pb::DescriptorProto& cur_message) {
    const std::string name = absl::StrCat(message_name, ".", old.name());
    const pb::FieldDescriptorProto* cur = FindByName(cur_message.field(),
                                                     old.name());
    if (cur == nullptr) {
      const pb::FieldDescriptorProto* same_number =
          FindByNumber(cur_message.field(), old.number());
      if (same_number != nullptr) {
        Report(name, absl::StrCat("field renamed to \"", same_number->name(),
                                  "\" (number ", old.number(),
                                  " kept; generated code, JSON and text "
                                  "format break)"));
      } else {
        Report(name, absl::StrCat("field removed (was number ", old.number(),
                                  "; peers still send and expect it)"));
      }
      return;
    }
    if (cur->number() != old.number()) {
      Report(name, absl::StrCat("field number changed from ", old.number(),
                                " to ", cur->number(),
                                " (peers would read other data)"));
    }
    if (cur->type() != old.type()) {
      Report(name, absl::StrCat("field type changed from ", TypeWord(old.type()),
                                " to ", TypeWord(cur->type())));
    } else if (cur->type_name() != old.type_name()) {
      Report(name, absl::StrCat("field type changed from ", old.type_name(),
                                " to ", cur->type_name()));
    }
    if (cur->label() != old.label()) {
      Report(name, absl::StrCat("field label changed from ",
                                LabelWord(old.label()), " to ",
                                LabelWord(cur->label())));
    }
    if (cur->proto3_optional() != old.proto3_optional()) {
      Report(name, old.proto3_optional()
                       ? "proto3 `optional` removed (field presence lost)"
                       : "proto3 `optional` added (field presence changed)");
    }
    const std::string old_oneof = RealOneofName(old_message, old);
    const std::string cur_oneof = RealOneofName(cur_message, *cur);
    if (old_oneof != cur_oneof) {
      Report(name, absl::StrCat(
                       "oneof membership changed from ",
                       old_oneof.empty() ? "none" : "\"" + old_oneof + "\"",
                       " to ",
                       cur_oneof.empty() ? "none" : "\"" + cur_oneof + "\""));
    }
    if (old.has_json_name() && cur->has_json_name() &&
        cur->json_name() != old.json_name()) {
      Report(name, absl::StrCat("JSON name changed from \"", old.json_name(),
                                "\" to \"", cur->json_name(), "\""));
    }
  }

  void CompareEnum(const std::string& scope,
                   const pb::EnumDescriptorProto& old) {
    const std::string name = absl::StrCat(scope, ".", old.name());
    auto it = current_.enums.find(name);
    if (it == current_.enums.end()) {
      Report(name, "enum removed or renamed");
      return;
    }
    const pb::EnumDescriptorProto& cur = *it->second;
    for (const auto& value : old.value()) {
      const std::string value_name = absl::StrCat(name, ".", value.name());
      const pb::EnumValueDescriptorProto* now =
          FindByName(cur.value(), value.name());
      if (now == nullptr) {
        const pb::EnumValueDescriptorProto* same_number =
            FindByNumber(cur.value(), value.number());
        Report(value_name,
               same_number != nullptr
                   ? absl::StrCat("enum value renamed to \"",
                                  same_number->name(), "\" (number ",
                                  value.number(), " kept)")
                   : absl::StrCat("enum value removed (was number ",
                                  value.number(), ")"));
      } else if (now->number() != value.number()) {
        Report(value_name, absl::StrCat("enum value number changed from ",
                                        value.number(), " to ",
                                        now->number()));
      }
    }
  }

  void CompareService(const std::string& scope,
                      const pb::ServiceDescriptorProto& old) {
    const std::string name = absl::StrCat(scope, ".", old.name());
    auto it = current_.services.find(name);
    if (it == current_.services.end()) {
      Report(name, "service removed or renamed (all its RPCs disappear)");
      return;
    }
    for (const auto& method : old.method()) {
      const std::string method_name = absl::StrCat(name, ".", method.name());
      const pb::MethodDescriptorProto* cur =
          FindByName(it->second->method(), method.name());
      if (cur == nullptr) {
        Report(method_name, "RPC removed or renamed");
        continue;
      }
      if (cur->input_type() != method.input_type()) {
        Report(method_name, absl::StrCat("RPC request type changed from ",
                                         method.input_type(), " to ",
                                         cur->input_type()));
      }
      if (cur->output_type() != method.output_type()) {
        Report(method_name, absl::StrCat("RPC response type changed from ",
                                         method.output_type(), " to ",
                                         cur->output_type()));
      }
      if (cur->client_streaming() != method.client_streaming()) {
        Report(method_name, method.client_streaming()
                                ? "client streaming removed"
                                : "client streaming added");
      }
      if (cur->server_streaming() != method.server_streaming()) {
        Report(method_name, method.server_streaming()
                                ? "server streaming removed"
                                : "server streaming added");
      }
    }
  }

  CurrentIndex current_;
  std::vector<Incompatibility> findings_;
};

// Adds `file` and the v1 files it imports, each once.
void CollectV1Files(const pb::FileDescriptor* file,
                    std::set<std::string>& seen, pb::FileDescriptorSet& out) {
  if (file == nullptr || file->package() != kV1Package ||
      !seen.insert(file->name()).second) {
    return;
  }
  for (int i = 0; i < file->dependency_count(); ++i) {
    CollectV1Files(file->dependency(i), seen, out);
  }
  pb::FileDescriptorProto* proto = out.add_file();
  file->CopyTo(proto);
  file->CopyJsonNameTo(proto);
}

}  // namespace

std::string Incompatibility::ToString() const {
  return absl::StrCat(element, ": ", description);
}

absl::StatusOr<pb::FileDescriptorSet> LoadDescriptorSetText(
    const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot read descriptor set ", path, ": ",
                     std::strerror(errno)));
  }
  pb::io::FileInputStream input(fd);
  input.SetCloseOnDelete(true);
  ParseErrorCollector errors;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  pb::FileDescriptorSet set;
  if (!parser.Parse(&input, &set)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a text-format FileDescriptorSet: ",
                     errors.first()));
  }
  return set;
}

pb::FileDescriptorSet CurrentV1Descriptors() {
  // Naming one message of each file links its generated code in, which is
  // what registers the file with the generated pool.
  const pb::FileDescriptor* roots[] = {
      v1::GetPluginInfoRequest::descriptor()->file(),
      v1::NodeStatus::descriptor()->file(),
      v1::Pod::descriptor()->file(),
      v1::GetStatsSummaryRequest::descriptor()->file(),
      v1::ExecRequest::descriptor()->file(),
  };
  pb::FileDescriptorSet set;
  std::set<std::string> seen;
  for (const pb::FileDescriptor* file : roots) CollectV1Files(file, seen, set);
  return set;
}

std::vector<Incompatibility> FindIncompatibilities(
    const pb::FileDescriptorSet& baseline,
    const pb::FileDescriptorSet& current) {
  Comparison comparison(current);
  for (const auto& file : baseline.file()) comparison.CompareFile(file);
  return comparison.TakeFindings();
}

}  // namespace vkhost::compat
