// Volume contents as the kubelet's configmap, secret, downwardapi and
// projected volume plugins produce them (MakePayload, CollectData), checked
// with the rules of pkg/volume/util's AtomicWriter.
#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "host/resolve/internal/volumes.h"

namespace vkhost::resolve::internal {
namespace {

namespace v1 = ::vkhost::provider::v1;

constexpr int32_t kDefaultMode = 0644;
constexpr int32_t kTokenOwnerOnlyMode = 0600;
// What the kubelet's volume ownership pass adds for fsGroup on read-only
// volumes (all of the file volumes are read-only).
constexpr int32_t kFsGroupReadBits = 0440;
constexpr int64_t kDefaultTokenSeconds = 3600;
constexpr int64_t kMinTokenSeconds = 600;
constexpr size_t kMaxPathLength = 4096;
constexpr size_t kMaxFileNameLength = 255;

struct FileEntry {
  std::string content;
  int32_t mode = kDefaultMode;
};

// Files of a volume by the path as written in the pod spec; a later entry
// for one path replaces an earlier one, as in the kubelet.
using Payload = std::map<std::string, FileEntry>;

// Errors of several sources reported as one, like utilerrors.NewAggregate.
class ErrorList {
 public:
  void Add(absl::Status status) {
    if (!status.ok()) errors_.push_back(std::move(status));
  }
  absl::Status Combined() const {
    if (errors_.empty()) return absl::OkStatus();
    if (errors_.size() == 1) return errors_.front();
    absl::StatusCode code = errors_.front().code();
    std::vector<std::string> messages;
    for (const absl::Status& e : errors_) {
      if (e.code() == absl::StatusCode::kUnavailable) code = e.code();
      messages.emplace_back(e.message());
    }
    return absl::Status(code,
                        absl::StrCat("[", absl::StrJoin(messages, ", "), "]"));
  }

 private:
  std::vector<absl::Status> errors_;
};

int32_t ModeOr(const json& obj, std::string_view key, int32_t fallback) {
  auto mode = Int(obj, key);
  return mode.has_value() ? static_cast<int32_t>(*mode) : fallback;
}

absl::Status Required(const absl::Status& status) {
  if (absl::IsNotFound(status)) {
    return absl::FailedPreconditionError(status.message());
  }
  return status;
}

// configMap / secret sources: `name` field and how the kubelet's
// MakePayload words a missing key.
struct KeySourceKind {
  const char* name_field;
  const char* missing_key;
  bool secret;
};

constexpr KeySourceKind kConfigMapVolume{
    "name", "configmap references non-existent config key: ", false};
constexpr KeySourceKind kSecretVolume{
    "secretName", "references non-existent secret key: ", true};
// Projected sources name their object with `name` in both cases.
constexpr KeySourceKind kSecretProjection{
    "name", "references non-existent secret key: ", true};

absl::Status AddKeyFiles(PodContext& ctx, const KeySourceKind& kind,
                         const json& source, int32_t default_mode,
                         Payload& payload) {
  const std::string name = String(source, kind.name_field);
  const bool optional = Bool(source, "optional", false);
  auto data = kind.secret ? ctx.Secret(name) : ctx.ConfigMap(name);
  static const ObjectData kEmpty;
  const ObjectData* object = nullptr;
  if (data.ok()) {
    object = *data;
  } else if (absl::IsNotFound(data.status()) && optional) {
    object = &kEmpty;
  } else {
    return Required(data.status());
  }

  const json& items = Array(source, "items");
  if (items.empty()) {
    for (const auto* map : {&object->data, &object->binary_data}) {
      for (const auto& [key, value] : *map) {
        payload[key] = FileEntry{value, default_mode};
      }
    }
    return absl::OkStatus();
  }
  for (const json& item : items) {
    const std::string key = String(item, "key");
    const std::string* value = nullptr;
    for (const auto* map : {&object->data, &object->binary_data}) {
      auto it = map->find(key);
      if (it != map->end()) {
        value = &it->second;
        break;
      }
    }
    if (value == nullptr) {
      if (optional) continue;
      return absl::FailedPreconditionError(absl::StrCat(kind.missing_key, key));
    }
    payload[String(item, "path")] =
        FileEntry{*value, ModeOr(item, "mode", default_mode)};
  }
  return absl::OkStatus();
}

absl::Status AddDownwardApiFiles(PodContext& ctx, const json& source,
                                 int32_t default_mode, Payload& payload) {
  ErrorList errors;
  for (const json& item : Array(source, "items")) {
    FileEntry entry{"", ModeOr(item, "mode", default_mode)};
    absl::StatusOr<std::string> value = std::string();
    if (const json* ref = Member(item, "fieldRef")) {
      value = FieldRefValue(ctx, *ref, /*for_env=*/false);
    } else if (const json* ref = Member(item, "resourceFieldRef")) {
      const std::string container_name = String(*ref, "containerName");
      const json* container = FindContainer(ctx.spec(), container_name);
      if (container == nullptr) {
        value = absl::InvalidArgumentError(absl::StrCat(
            "resourceFieldRef: container \"", container_name,
            "\" not found in the pod"));
      } else {
        value = ResourceFieldRefValue(ctx, *container, *ref);
      }
    }
    if (!value.ok()) {
      errors.Add(value.status());
      continue;
    }
    entry.content = *std::move(value);
    payload[String(item, "path")] = std::move(entry);
  }
  return errors.Combined();
}

// The user every container runs as, when they all agree (the kubelet's
// FsUserFrom); then the token file can be private to that user.
std::optional<int64_t> CommonRunAsUser(const json& spec) {
  const auto pod_user = Int(Object(spec, "securityContext"), "runAsUser");
  std::optional<int64_t> common;
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    for (const json& c : Array(spec, list)) {
      auto user = Int(Object(c, "securityContext"), "runAsUser");
      if (!user.has_value()) user = pod_user;
      if (!user.has_value() || (common.has_value() && *common != *user)) {
        return std::nullopt;
      }
      common = user;
    }
  }
  return common;
}

absl::Status AddTokenFile(PodContext& ctx, const json& source,
                          int32_t default_mode, Payload& payload,
                          absl::Time* refresh_at) {
  const int64_t seconds =
      Int(source, "expirationSeconds").value_or(kDefaultTokenSeconds);
  if (seconds < kMinTokenSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "serviceAccountToken expirationSeconds ", seconds,
        " is below the minimum of ", kMinTokenSeconds));
  }
  std::string account = String(ctx.spec(), "serviceAccountName");
  if (account.empty()) account = "default";
  const TokenRequest request{ctx.namespace_name(), account,
                             String(source, "audience"), seconds, ctx.name(),
                             ctx.uid()};
  auto token = ctx.source().ServiceAccountToken(request);
  if (!token.ok()) {
    const absl::Status cause =
        absl::IsNotFound(token.status())
            ? absl::FailedPreconditionError(token.status().message())
            : absl::UnavailableError(token.status().message());
    return absl::Status(cause.code(), absl::StrCat("failed to fetch token: ",
                                                   cause.message()));
  }
  Token effective = *token;
  if (effective.expiration_seconds <= 0) effective.expiration_seconds = seconds;
  *refresh_at = std::min(*refresh_at, TokenRefreshTime(effective));

  const bool has_fs_group =
      Int(Object(ctx.spec(), "securityContext"), "fsGroup").has_value();
  const bool private_to_user =
      has_fs_group || CommonRunAsUser(ctx.spec()).has_value();
  payload[String(source, "path")] = FileEntry{
      std::move(effective.token),
      private_to_user ? kTokenOwnerOnlyMode : default_mode};
  return absl::OkStatus();
}

// Projection kinds vkhost resolves; a projected volume with any other
// source is passed on unresolved.
constexpr const char* kProjectionKinds[] = {"configMap", "secret",
                                            "downwardAPI",
                                            "serviceAccountToken"};

bool AllProjectionsSupported(const json& projected) {
  for (const json& source : Array(projected, "sources")) {
    if (!source.is_object()) return false;
    for (const auto& [key, value] : source.items()) {
      if (value.is_null()) continue;
      const bool known =
          std::any_of(std::begin(kProjectionKinds), std::end(kProjectionKinds),
                      [&](const char* k) { return key == k; });
      if (!known) return false;
    }
  }
  return true;
}

absl::Status AddProjectedFiles(PodContext& ctx, const json& projected,
                               Payload& payload, absl::Time* refresh_at) {
  const int32_t mode = ModeOr(projected, "defaultMode", kDefaultMode);
  ErrorList errors;
  for (const json& source : Array(projected, "sources")) {
    if (const json* s = Member(source, "configMap")) {
      errors.Add(AddKeyFiles(ctx, kConfigMapVolume, *s, mode, payload));
    } else if (const json* s = Member(source, "secret")) {
      errors.Add(AddKeyFiles(ctx, kSecretProjection, *s, mode, payload));
    } else if (const json* s = Member(source, "downwardAPI")) {
      errors.Add(AddDownwardApiFiles(ctx, *s, mode, payload));
    } else if (const json* s = Member(source, "serviceAccountToken")) {
      errors.Add(AddTokenFile(ctx, *s, mode, payload, refresh_at));
    }
  }
  return errors.Combined();
}

// Checks and cleans every path, then lays the files out sorted by path.
absl::Status WriteFiles(const Payload& payload, bool fs_group,
                        v1::FilesVolume* files) {
  std::map<std::string, const FileEntry*> clean;
  for (const auto& [path, entry] : payload) {
    absl::Status valid = ValidateVolumePath(path);
    if (!valid.ok()) return valid;
    clean[CleanPath(path)] = &entry;
  }
  for (const auto& [path, entry] : clean) {
    // A file cannot also be a directory of another file.
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      if (clean.count(path.substr(0, slash)) != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid path: \"", path.substr(0, slash),
                         "\" is both a file and the directory of \"", path,
                         "\""));
      }
    }
    v1::VolumeFile* file = files->add_files();
    file->set_path(path);
    file->set_content(entry->content);
    file->set_mode(fs_group ? (entry->mode | kFsGroupReadBits) : entry->mode);
  }
  return absl::OkStatus();
}

// The v1.Volume source field of a volume ("persistentVolumeClaim", ...).
std::string SourceKind(const json& volume) {
  for (const auto& [key, value] : volume.items()) {
    if (key != "name" && !value.is_null()) return key;
  }
  return "";
}

}  // namespace

absl::StatusOr<v1::Volume> ResolveVolume(PodContext& ctx, const json& volume,
                                         absl::Time* refresh_at) {
  v1::Volume out;
  out.set_name(String(volume, "name"));
  if (!volume.is_object()) {
    return absl::InvalidArgumentError("volume is not a JSON object");
  }
  for (const auto& [key, value] : volume.items()) {
    if (key != "name" && !value.is_null() && !value.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("volume source ", key, " is not a JSON object"));
    }
  }
  if (const json* s = Member(volume, "emptyDir")) {
    out.mutable_empty_dir()->set_medium(String(*s, "medium"));
    if (const json* limit = Member(*s, "sizeLimit")) {
      out.mutable_empty_dir()->set_size_limit(
          limit->is_string() ? limit->get<std::string>() : limit->dump());
    }
    return out;
  }
  if (const json* s = Member(volume, "hostPath")) {
    out.mutable_host_path()->set_path(String(*s, "path"));
    out.mutable_host_path()->set_type(String(*s, "type"));
    return out;
  }
  const json* projected = Member(volume, "projected");
  if (projected != nullptr && !AllProjectionsSupported(*projected)) {
    out.mutable_unresolved()->set_kind("projected");
    return out;
  }

  Payload payload;
  absl::Status status;
  std::string kind;
  if (const json* s = Member(volume, "configMap")) {
    kind = "configMap";
    status = AddKeyFiles(ctx, kConfigMapVolume, *s,
                         ModeOr(*s, "defaultMode", kDefaultMode), payload);
  } else if (const json* s = Member(volume, "secret")) {
    kind = "secret";
    status = AddKeyFiles(ctx, kSecretVolume, *s,
                         ModeOr(*s, "defaultMode", kDefaultMode), payload);
  } else if (const json* s = Member(volume, "downwardAPI")) {
    kind = "downwardAPI";
    status = AddDownwardApiFiles(ctx, *s, ModeOr(*s, "defaultMode", kDefaultMode),
                                 payload);
  } else if (projected != nullptr) {
    kind = "projected";
    status = AddProjectedFiles(ctx, *projected, payload, refresh_at);
  } else {
    out.mutable_unresolved()->set_kind(SourceKind(volume));
    return out;
  }
  if (!status.ok()) return status;

  v1::FilesVolume* files = out.mutable_files();
  files->set_kind(kind);
  const bool fs_group =
      Int(Object(ctx.spec(), "securityContext"), "fsGroup").has_value();
  status = WriteFiles(payload, fs_group, files);
  if (!status.ok()) return status;
  return out;
}

absl::Status ValidateVolumePath(absl::string_view path) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid path \"", path, "\": ", why));
  };
  if (path.empty()) return invalid("must not be empty");
  if (path.front() == '/') return invalid("must be a relative path");
  if (path.size() > kMaxPathLength) {
    return invalid(absl::StrCat("must be at most ", kMaxPathLength,
                                " characters"));
  }
  const std::vector<absl::string_view> items = absl::StrSplit(path, '/');
  for (absl::string_view item : items) {
    if (item == "..") return invalid("must not contain '..'");
    if (item.size() > kMaxFileNameLength) {
      return invalid(absl::StrCat("file names must be at most ",
                                  kMaxFileNameLength, " characters"));
    }
  }
  if (absl::StartsWith(items.front(), "..")) {
    return invalid("must not start with '..'");
  }
  if (CleanPath(path) == ".") return invalid("must name a file");
  return absl::OkStatus();
}

std::string CleanPath(absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view item : absl::StrSplit(path, '/')) {
    if (item.empty() || item == ".") continue;
    parts.push_back(item);
  }
  return parts.empty() ? "." : absl::StrJoin(parts, "/");
}

}  // namespace vkhost::resolve::internal
