// Internal to host/informer: the cache behind an Informer and the diff a
// relist makes against it. Not for other components.
#ifndef VKHOST_HOST_INFORMER_INTERNAL_OBJECT_STORE_H_
#define VKHOST_HOST_INFORMER_INTERNAL_OBJECT_STORE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "host/informer/informer.h"

namespace vkhost::informer::internal {

// What a change to the store means to handlers.
struct StoreChange {
  enum class Kind { kAdd, kUpdate, kDelete };
  Kind kind = Kind::kAdd;
  ObjectPtr old_object;  // update, delete
  ObjectPtr new_object;  // add, update
};

// "namespace/name", or "name" for cluster-scoped objects; "" when the object
// has no metadata.name (such objects are not stored).
std::string KeyOf(const nlohmann::json& object);

// Objects by key with a UID index. Thread-safe; mutations return the changes
// they made so the caller can notify handlers outside the lock.
class ObjectStore {
 public:
  // Makes the store hold exactly `objects`: adds for new keys, updates where
  // the resourceVersion moved, delete+add where a name now has another UID,
  // deletes for keys that vanished. Unchanged objects keep their pointer and
  // produce no change.
  std::vector<StoreChange> Replace(std::vector<ObjectPtr> objects);

  // ADDED/MODIFIED: an add or an update; nullopt when the cache already has
  // this resourceVersion (a replayed event) or the object has no name.
  std::optional<StoreChange> Upsert(ObjectPtr object);

  // DELETED: removes the key; the change carries `last_state`. A delete for
  // an unknown key is still reported (client-go does the same).
  std::optional<StoreChange> Remove(ObjectPtr last_state);

  ObjectPtr Get(std::string_view key) const;
  ObjectPtr GetByUid(std::string_view uid) const;
  std::vector<ObjectPtr> List() const;
  size_t Size() const;

 private:
  void PutLocked(const std::string& key, ObjectPtr object) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ObjectPtr> objects_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> key_by_uid_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vkhost::informer::internal

#endif  // VKHOST_HOST_INFORMER_INTERNAL_OBJECT_STORE_H_
