// A small bounded map whose entries expire, for caching API server answers.
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_TTL_CACHE_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_TTL_CACHE_H_

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vkhost::kubeletapi::internal {

// Thread-safe. When full, expired entries are dropped first; if that frees
// nothing the oldest-expiring entry goes, so memory stays bounded whatever
// clients send.
template <typename Value>
class TtlCache {
 public:
  explicit TtlCache(size_t max_entries) : max_entries_(max_entries) {}

  std::optional<Value> Get(const std::string& key) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    if (it->second.expires <= absl::Now()) {
      entries_.erase(it);
      return std::nullopt;
    }
    return it->second.value;
  }

  void Put(const std::string& key, Value value, absl::Duration ttl) {
    if (max_entries_ == 0 || ttl <= absl::ZeroDuration()) return;
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (entries_.size() >= max_entries_ && !entries_.count(key)) {
      MakeRoom(now);
    }
    entries_.insert_or_assign(key, Entry{std::move(value), now + ttl});
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    Value value;
    absl::Time expires;
  };

  void MakeRoom(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.expires <= now ? entries_.erase(it) : std::next(it);
    }
    if (entries_.size() < max_entries_) return;
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.expires < oldest->second.expires) oldest = it;
    }
    entries_.erase(oldest);
  }

  const size_t max_entries_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_TTL_CACHE_H_
