#include "host/informer/informer.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "host/informer/internal/object_store.h"

namespace vkhost::informer {
namespace {

// A watch that delivered nothing and ended sooner than this is treated as a
// failure, so a server that closes watches at once is not hammered.
constexpr absl::Duration kHealthyWatch = absl::Seconds(1);
// After this many failed watches in a row, relist: the version we hold may be
// one the server cannot serve for reasons other than 410 (e.g. it lost data).
constexpr int kRewatchesBeforeRelist = 5;

std::string DefaultName(const InformerOptions& options) {
  std::string name = options.target.resource.plural;
  if (!options.target.ns.empty()) absl::StrAppend(&name, " in ", options.target.ns);
  if (!options.label_selector.empty()) absl::StrAppend(&name, " [", options.label_selector, "]");
  if (!options.field_selector.empty()) absl::StrAppend(&name, " [", options.field_selector, "]");
  return name;
}

// Drops what the cache does not need before the object is frozen.
ObjectPtr Freeze(nlohmann::json&& object) {
  if (object.is_object()) {
    if (auto meta = object.find("metadata"); meta != object.end() && meta->is_object()) {
      meta->erase("managedFields");
    }
  }
  return std::make_shared<const nlohmann::json>(std::move(object));
}

std::string ResourceVersionOf(const nlohmann::json& object) {
  if (!object.is_object()) return "";
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  auto rv = meta->find("resourceVersion");
  return rv != meta->end() && rv->is_string() ? rv->get<std::string>() : "";
}

// The status a watch ERROR event stands for; IsGone for code 410.
absl::Status StatusOfErrorEvent(const nlohmann::json& status, const std::string& what) {
  int code = 500;
  if (auto it = status.find("code"); it != status.end() && it->is_number_integer()) {
    code = it->get<int>();
  }
  return kube::StatusFromResponse(
      "WATCH", what, code,
      status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

absl::Duration Jitter(absl::Duration base, absl::BitGen& random) {
  return base * absl::Uniform(random, 1.0, 1.2);
}

}  // namespace

Informer::Informer(kube::KubeClient* client, InformerOptions options)
    : client_(client),
      options_(std::move(options)),
      name_(options_.name.empty() ? DefaultName(options_) : options_.name),
      store_(std::make_unique<internal::ObjectStore>()) {}

Informer::~Informer() { Stop(); }

void Informer::AddHandlers(InformerHandlers handlers) {
  absl::MutexLock lock(&mu_);
  if (started_) {
    VKLOG(ERROR) << "informer " << name_ << ": handlers added after Start are ignored";
    return;
  }
  handlers_.push_back(std::move(handlers));
}

void Informer::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  watch_cancel_.Cancel();
  if (thread_.joinable()) thread_.join();
}

bool Informer::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool Informer::SleepUnlessStopped(absl::Duration duration) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), duration);
  return !stopping_;
}

bool Informer::HasSynced() const {
  absl::MutexLock lock(&mu_);
  return synced_;
}

bool Informer::WaitForSync(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&synced_), timeout);
  return synced_;
}

ObjectPtr Informer::Get(std::string_view ns, std::string_view name) const {
  return store_->Get(ns.empty() ? std::string(name)
                                : absl::StrCat(std::string(ns), "/", std::string(name)));
}

ObjectPtr Informer::GetByUid(std::string_view uid) const { return store_->GetByUid(uid); }

std::vector<ObjectPtr> Informer::List() const { return store_->List(); }

size_t Informer::Size() const { return store_->Size(); }

std::string Informer::ResourceVersion() const {
  absl::MutexLock lock(&mu_);
  return resource_version_;
}

void Informer::Dispatch(const internal::StoreChange& change) {
  using Kind = internal::StoreChange::Kind;
  for (const InformerHandlers& h : handlers_) {
    switch (change.kind) {
      case Kind::kAdd:
        if (h.on_add) h.on_add(change.new_object);
        break;
      case Kind::kUpdate:
        if (h.on_update) h.on_update(change.old_object, change.new_object);
        break;
      case Kind::kDelete:
        if (h.on_delete) h.on_delete(change.old_object);
        break;
    }
  }
}

void Informer::Run() {
  absl::BitGen random;
  absl::Duration backoff = options_.initial_backoff;
  auto sleep_and_grow = [&] {
    const bool keep_going = SleepUnlessStopped(Jitter(backoff, random));
    backoff = std::min(options_.max_backoff, backoff * 2);
    return keep_going;
  };
  bool need_list = true;
  int failed_watches = 0;
  while (!stopping()) {
    if (need_list) {
      absl::Status listed = ListAndReplace();
      if (stopping()) break;
      if (!listed.ok()) {
        VKLOG(WARNING) << "informer " << name_ << ": list failed, retrying in about "
                       << absl::FormatDuration(backoff) << ": " << listed.message();
        if (!sleep_and_grow()) break;
        continue;
      }
      need_list = false;
      failed_watches = 0;
      backoff = options_.initial_backoff;
    }

    bool made_progress = false;
    absl::Status watched = WatchOnce(&made_progress);
    if (stopping()) break;
    if (kube::IsGone(watched)) {
      VKLOG(INFO) << "informer " << name_ << ": resourceVersion " << ResourceVersion()
                  << " is too old, relisting";
      need_list = true;
      continue;
    }
    if (watched.ok() && made_progress) {
      failed_watches = 0;
      backoff = options_.initial_backoff;
      continue;  // the server ended a healthy watch (timeout): resume at once
    }
    if (++failed_watches >= kRewatchesBeforeRelist) {
      need_list = true;
      failed_watches = 0;
    }
    VKLOG(WARNING) << "informer " << name_ << ": watch from resourceVersion "
                   << ResourceVersion() << " ended"
                   << (watched.ok() ? std::string(" without events")
                                    : absl::StrCat(": ", watched.message()))
                   << "; " << (need_list ? "relisting" : "rewatching") << " in about "
                   << absl::FormatDuration(backoff);
    if (!sleep_and_grow()) break;
  }
}

absl::Status Informer::ListAndReplace() {
  kube::ListOptions list_options;
  list_options.label_selector = options_.label_selector;
  list_options.field_selector = options_.field_selector;
  list_options.limit = options_.page_size;

  std::vector<ObjectPtr> objects;
  std::string version;
  auto take_page = [&](nlohmann::json&& page) -> absl::Status {
    if (stopping()) return absl::CancelledError("informer stopping");
    version = ResourceVersionOf(page);
    auto items = page.find("items");
    if (items == page.end() || items->is_null()) return absl::OkStatus();
    if (!items->is_array()) {
      return absl::InternalError(absl::StrCat("list of ", name_, " has non-array items"));
    }
    for (nlohmann::json& item : *items) objects.push_back(Freeze(std::move(item)));
    return absl::OkStatus();
  };
  absl::Status status =
      kube::ListAllPages(*client_, options_.target, list_options, take_page);
  if (kube::IsGone(status) && list_options.limit > 0) {
    // The continue token expired between pages: take everything in one go.
    VKLOG(INFO) << "informer " << name_ << ": list continuation expired, listing without paging";
    objects.clear();
    list_options.limit = 0;
    status = kube::ListAllPages(*client_, options_.target, list_options, take_page);
  }
  if (!status.ok()) return status;

  std::vector<internal::StoreChange> changes = store_->Replace(std::move(objects));
  {
    absl::MutexLock lock(&mu_);
    resource_version_ = version;
  }
  for (const internal::StoreChange& change : changes) {
    if (stopping()) return absl::CancelledError("informer stopping");
    Dispatch(change);
  }
  bool first_sync = false;
  {
    absl::MutexLock lock(&mu_);
    first_sync = !synced_;
    synced_ = true;
  }
  if (first_sync) {
    VKLOG(INFO) << "informer " << name_ << ": synced " << store_->Size()
                << " objects at resourceVersion " << version;
  }
  return absl::OkStatus();
}

absl::Status Informer::WatchOnce(bool* made_progress) {
  absl::BitGen random;
  const int64_t min_timeout =
      std::max<int64_t>(1, absl::ToInt64Seconds(options_.min_watch_timeout));
  kube::WatchOptions watch_options;
  watch_options.label_selector = options_.label_selector;
  watch_options.field_selector = options_.field_selector;
  watch_options.resource_version = ResourceVersion();
  watch_options.timeout_seconds = absl::Uniform<int64_t>(random, min_timeout, 2 * min_timeout);
  watch_options.allow_bookmarks = true;

  absl::Status stream_error;
  int events = 0;
  const absl::Time start = absl::Now();
  absl::Status status = client_->Watch(
      options_.target, watch_options,
      [&](kube::WatchEvent&& event) {
        ++events;
        return HandleEvent(std::move(event), &stream_error);
      },
      &watch_cancel_);
  *made_progress = events > 0 || absl::Now() - start >= kHealthyWatch;
  return stream_error.ok() ? status : stream_error;
}

bool Informer::HandleEvent(kube::WatchEvent&& event, absl::Status* stream_error) {
  if (stopping()) return false;
  using Type = kube::WatchEventType;
  if (event.type == Type::kError) {
    *stream_error = StatusOfErrorEvent(event.object, name_);
    return false;
  }
  const std::string version = ResourceVersionOf(event.object);
  std::optional<internal::StoreChange> change;
  if (event.type == Type::kAdded || event.type == Type::kModified) {
    change = store_->Upsert(Freeze(std::move(event.object)));
  } else if (event.type == Type::kDeleted) {
    change = store_->Remove(Freeze(std::move(event.object)));
  }
  if (!version.empty()) {
    absl::MutexLock lock(&mu_);
    resource_version_ = version;
  }
  if (change) Dispatch(*change);
  return true;
}

}  // namespace vkhost::informer
