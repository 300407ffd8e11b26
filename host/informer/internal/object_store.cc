#include "host/informer/internal/object_store.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace vkhost::informer::internal {
namespace {

std::string MetaString(const nlohmann::json& object, std::string_view field) {
  if (!object.is_object()) return "";
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  auto it = meta->find(field);
  if (it == meta->end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string UidOf(const nlohmann::json& object) { return MetaString(object, "uid"); }
std::string VersionOf(const nlohmann::json& object) {
  return MetaString(object, "resourceVersion");
}

}  // namespace

std::string KeyOf(const nlohmann::json& object) {
  const std::string name = MetaString(object, "name");
  if (name.empty()) return "";
  const std::string ns = MetaString(object, "namespace");
  return ns.empty() ? name : absl::StrCat(ns, "/", name);
}

void ObjectStore::PutLocked(const std::string& key, ObjectPtr object) {
  if (auto old = objects_.find(key); old != objects_.end()) {
    key_by_uid_.erase(UidOf(*old->second));
  }
  if (std::string uid = UidOf(*object); !uid.empty()) key_by_uid_[uid] = key;
  objects_[key] = std::move(object);
}

void ObjectStore::EraseLocked(const std::string& key) {
  auto it = objects_.find(key);
  if (it == objects_.end()) return;
  key_by_uid_.erase(UidOf(*it->second));
  objects_.erase(it);
}

std::vector<StoreChange> ObjectStore::Replace(std::vector<ObjectPtr> objects) {
  std::vector<StoreChange> changes;
  absl::flat_hash_set<std::string> listed;
  absl::MutexLock lock(&mu_);
  for (ObjectPtr& object : objects) {
    std::string key = KeyOf(*object);
    if (key.empty() || !listed.insert(key).second) continue;
    auto it = objects_.find(key);
    if (it == objects_.end()) {
      changes.push_back({StoreChange::Kind::kAdd, nullptr, object});
    } else if (UidOf(*it->second) != UidOf(*object)) {
      // Deleted and recreated under the same name while we were not watching.
      changes.push_back({StoreChange::Kind::kDelete, it->second, nullptr});
      changes.push_back({StoreChange::Kind::kAdd, nullptr, object});
    } else if (VersionOf(*it->second) != VersionOf(*object)) {
      changes.push_back({StoreChange::Kind::kUpdate, it->second, object});
    } else {
      continue;  // unchanged: keep the cached pointer
    }
    PutLocked(key, std::move(object));
  }
  std::vector<std::string> vanished;
  for (const auto& [key, object] : objects_) {
    if (!listed.contains(key)) vanished.push_back(key);
  }
  for (const std::string& key : vanished) {
    changes.push_back({StoreChange::Kind::kDelete, objects_[key], nullptr});
    EraseLocked(key);
  }
  return changes;
}

std::optional<StoreChange> ObjectStore::Upsert(ObjectPtr object) {
  const std::string key = KeyOf(*object);
  if (key.empty()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(key);
  StoreChange change;
  if (it == objects_.end()) {
    change = {StoreChange::Kind::kAdd, nullptr, object};
  } else {
    const std::string version = VersionOf(*object);
    if (!version.empty() && version == VersionOf(*it->second)) return std::nullopt;
    change = {StoreChange::Kind::kUpdate, it->second, object};
  }
  PutLocked(key, std::move(object));
  return change;
}

std::optional<StoreChange> ObjectStore::Remove(ObjectPtr last_state) {
  const std::string key = KeyOf(*last_state);
  if (key.empty()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  EraseLocked(key);
  return StoreChange{StoreChange::Kind::kDelete, std::move(last_state), nullptr};
}

ObjectPtr ObjectStore::Get(std::string_view key) const {
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(absl::string_view(key.data(), key.size()));
  return it == objects_.end() ? nullptr : it->second;
}

ObjectPtr ObjectStore::GetByUid(std::string_view uid) const {
  absl::MutexLock lock(&mu_);
  auto key = key_by_uid_.find(absl::string_view(uid.data(), uid.size()));
  if (key == key_by_uid_.end()) return nullptr;
  auto it = objects_.find(key->second);
  return it == objects_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> ObjectStore::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<ObjectPtr> out;
  out.reserve(objects_.size());
  for (const auto& [key, object] : objects_) out.push_back(object);
  return out;
}

size_t ObjectStore::Size() const {
  absl::MutexLock lock(&mu_);
  return objects_.size();
}

}  // namespace vkhost::informer::internal
