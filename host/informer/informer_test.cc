#include "host/informer/informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "host/informer/internal/object_store.h"

namespace vkhost::informer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Kind = internal::StoreChange::Kind;

nlohmann::json ConfigMap(const std::string& name, const std::string& uid,
                         const std::string& rv, const std::string& value = "") {
  return {{"metadata",
           {{"name", name},
            {"namespace", "ns"},
            {"uid", uid},
            {"resourceVersion", rv},
            {"managedFields", nlohmann::json::array({{{"manager", "kubectl"}}})}}},
          {"data", {{"v", value}}}};
}

ObjectPtr Ptr(nlohmann::json j) { return std::make_shared<const nlohmann::json>(std::move(j)); }

std::string Describe(const internal::StoreChange& c) {
  const ObjectPtr& o = c.kind == Kind::kDelete ? c.old_object : c.new_object;
  const char* kind = c.kind == Kind::kAdd ? "add" : c.kind == Kind::kUpdate ? "update" : "delete";
  return absl::StrCat(kind, " ", internal::KeyOf(*o), "@",
                      (*o)["metadata"]["resourceVersion"].get<std::string>());
}

std::vector<std::string> Describe(const std::vector<internal::StoreChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(Describe(c));
  return out;
}

TEST(ObjectStoreTest, RelistDiffsAgainstTheCache) {
  internal::ObjectStore store;
  EXPECT_THAT(Describe(store.Replace({Ptr(ConfigMap("a", "ua", "1")),
                                      Ptr(ConfigMap("b", "ub", "2")),
                                      Ptr(ConfigMap("c", "uc", "3"))})),
              ElementsAre("add ns/a@1", "add ns/b@2", "add ns/c@3"));
  const ObjectPtr cached_a = store.Get("ns/a");

  // a unchanged, b modified, c gone, d new, and e recreated under b's...
  // no: e is simply new; and "c" came back under a new UID is tested below.
  std::vector<internal::StoreChange> changes =
      store.Replace({Ptr(ConfigMap("a", "ua", "1")), Ptr(ConfigMap("b", "ub", "5")),
                     Ptr(ConfigMap("d", "ud", "6"))});
  EXPECT_THAT(Describe(changes),
              ElementsAre("update ns/b@5", "add ns/d@6", "delete ns/c@3"));
  EXPECT_EQ((*changes[0].old_object)["metadata"]["resourceVersion"], "2");
  EXPECT_EQ(store.Get("ns/a"), cached_a) << "unchanged objects keep their pointer";
  EXPECT_EQ(store.Get("ns/c"), nullptr);
  EXPECT_EQ(store.GetByUid("uc"), nullptr);
  EXPECT_EQ(store.Size(), 3u);

  // Deleted and recreated while away: a delete of the old UID, an add of the new.
  EXPECT_THAT(Describe(store.Replace({Ptr(ConfigMap("a", "ua2", "7")),
                                      Ptr(ConfigMap("b", "ub", "5")),
                                      Ptr(ConfigMap("d", "ud", "6"))})),
              ElementsAre("delete ns/a@1", "add ns/a@7"));
  EXPECT_EQ(store.GetByUid("ua"), nullptr);
  EXPECT_EQ((*store.GetByUid("ua2"))["metadata"]["name"], "a");

  EXPECT_THAT(Describe(store.Replace({})),
              UnorderedElementsAre("delete ns/a@7", "delete ns/b@5", "delete ns/d@6"));
  EXPECT_THAT(store.List(), IsEmpty());
}

TEST(ObjectStoreTest, WatchEventsUpsertAndRemove) {
  internal::ObjectStore store;
  EXPECT_EQ(Describe(*store.Upsert(Ptr(ConfigMap("a", "ua", "1")))), "add ns/a@1");
  EXPECT_EQ(Describe(*store.Upsert(Ptr(ConfigMap("a", "ua", "2")))), "update ns/a@2");
  EXPECT_FALSE(store.Upsert(Ptr(ConfigMap("a", "ua", "2")))) << "replayed event";
  EXPECT_FALSE(store.Upsert(Ptr(nlohmann::json{{"metadata", {}}}))) << "no name";
  EXPECT_EQ(Describe(*store.Remove(Ptr(ConfigMap("a", "ua", "3")))), "delete ns/a@3");
  EXPECT_EQ(store.Size(), 0u);
  EXPECT_TRUE(store.Remove(Ptr(ConfigMap("x", "ux", "4")))) << "reported even if unknown";
  EXPECT_EQ(internal::KeyOf(nlohmann::json{{"metadata", {{"name", "node1"}}}}), "node1");
  EXPECT_EQ(internal::KeyOf(nlohmann::json::array()), "");
}

// An in-memory API server for one collection: a versioned event log that
// List reads and Watch streams from, with knobs for what real servers do
// (ending watches, compacting history, failing).
class FakeApiServer final : public kube::KubeClient {
 public:
  void Put(const std::string& name, const std::string& uid, const std::string& value) {
    absl::MutexLock lock(&mu_);
    const bool exists = objects_.count(name) > 0;
    nlohmann::json obj = ConfigMap(name, uid, absl::StrCat(++rv_), value);
    objects_[name] = obj;
    log_.push_back({rv_, exists ? "MODIFIED" : "ADDED", obj});
  }
  void Remove(const std::string& name) {
    absl::MutexLock lock(&mu_);
    nlohmann::json obj = objects_[name];
    obj["metadata"]["resourceVersion"] = absl::StrCat(++rv_);
    objects_.erase(name);
    log_.push_back({rv_, "DELETED", obj});
  }
  void Bookmark() {
    absl::MutexLock lock(&mu_);
    log_.push_back({++rv_, "BOOKMARK", {{"metadata", {{"resourceVersion", absl::StrCat(rv_)}}}}});
  }
  // Ends running watches as a server timeout does.
  void CloseWatches() {
    absl::MutexLock lock(&mu_);
    ++close_generation_;
  }
  // Forgets history: watches from older versions get 410, running ones an
  // ERROR event with code 410.
  void Compact() {
    absl::MutexLock lock(&mu_);
    compacted_ = rv_;
    ++expire_generation_;
  }
  // While held, watches deliver nothing (as if the network stalled).
  void HoldWatches(bool held) {
    absl::MutexLock lock(&mu_);
    held_ = held;
  }
  void FailNextWatches(int n, absl::Status status) {
    absl::MutexLock lock(&mu_);
    watch_failures_.assign(n, status);
  }
  std::vector<std::string> watch_versions() const {
    absl::MutexLock lock(&mu_);
    return watch_versions_;
  }
  int lists() const {
    absl::MutexLock lock(&mu_);
    return lists_;
  }
  int64_t limit_seen() const {
    absl::MutexLock lock(&mu_);
    return limit_seen_;
  }

  absl::StatusOr<nlohmann::json> List(const kube::Target&,
                                      const kube::ListOptions& options) override {
    absl::MutexLock lock(&mu_);
    if (options.continue_token.empty()) ++lists_;
    limit_seen_ = options.limit;
    size_t start = 0;
    if (!options.continue_token.empty()) absl::SimpleAtoi(options.continue_token, &start);
    nlohmann::json list = {{"metadata", {{"resourceVersion", absl::StrCat(rv_)}}},
                           {"items", nlohmann::json::array()}};
    size_t index = 0;
    for (const auto& [name, obj] : objects_) {
      if (index++ < start) continue;
      if (options.limit > 0 && list["items"].size() == static_cast<size_t>(options.limit)) {
        list["metadata"]["continue"] = absl::StrCat(index - 1);
        break;
      }
      list["items"].push_back(obj);
    }
    return list;
  }

  absl::Status Watch(const kube::Target&, const kube::WatchOptions& options,
                     const kube::WatchEventHandler& on_event,
                     kube::WatchCancel* cancel) override {
    if (!cancel->Register([this] { absl::MutexLock lock(&mu_); ++wakeups_; })) {
      return absl::CancelledError("cancelled");
    }
    struct Unregister {
      kube::WatchCancel* c;
      ~Unregister() { c->Unregister(); }
    } unregister{cancel};

    absl::MutexLock lock(&mu_);
    watch_versions_.push_back(options.resource_version);
    EXPECT_TRUE(options.allow_bookmarks);
    EXPECT_GE(options.timeout_seconds, 1);
    if (!watch_failures_.empty()) {
      absl::Status failure = watch_failures_.back();
      watch_failures_.pop_back();
      return failure;
    }
    int64_t from = 0;
    absl::SimpleAtoi(options.resource_version, &from);
    if (from < compacted_) {
      return kube::StatusFromResponse("GET", "watch", 410,
                                      R"({"kind":"Status","reason":"Expired","code":410})");
    }
    size_t next = 0;
    while (next < log_.size() && log_[next].rv <= from) ++next;
    const int close_generation = close_generation_;
    const int expire_generation = expire_generation_;
    while (true) {
      const int wakeups = wakeups_;
      auto ready = [&] {
        return cancel->cancelled() || wakeups_ != wakeups ||
               (!held_ && (next < log_.size() || close_generation_ != close_generation ||
                           expire_generation_ != expire_generation));
      };
      mu_.Await(absl::Condition(&ready));
      if (cancel->cancelled()) return absl::CancelledError("cancelled");
      if (held_) continue;
      if (expire_generation_ != expire_generation) {
        mu_.Unlock();
        on_event({kube::WatchEventType::kError,
                  {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}}});
        mu_.Lock();
        return absl::OkStatus();
      }
      if (next < log_.size()) {
        LogEntry entry = log_[next++];
        mu_.Unlock();
        const bool more = on_event({TypeOf(entry.type), entry.object});
        mu_.Lock();
        if (!more) return absl::OkStatus();
        continue;
      }
      if (close_generation_ != close_generation) return absl::OkStatus();
    }
  }

  absl::StatusOr<nlohmann::json> Get(const kube::Target&) override { return Unused(); }
  absl::StatusOr<nlohmann::json> Create(const kube::Target&, const nlohmann::json&,
                                        const kube::WriteOptions&) override {
    return Unused();
  }
  absl::StatusOr<nlohmann::json> Update(const kube::Target&, const nlohmann::json&,
                                        const kube::WriteOptions&) override {
    return Unused();
  }
  absl::StatusOr<nlohmann::json> Patch(const kube::Target&, kube::PatchType,
                                       const nlohmann::json&,
                                       const kube::WriteOptions&) override {
    return Unused();
  }
  absl::StatusOr<nlohmann::json> Delete(const kube::Target&,
                                        const kube::DeleteOptions&) override {
    return Unused();
  }

 private:
  struct LogEntry {
    int64_t rv;
    std::string type;
    nlohmann::json object;
  };
  static absl::Status Unused() { return absl::UnimplementedError("not in this fake"); }
  static kube::WatchEventType TypeOf(const std::string& type) {
    if (type == "ADDED") return kube::WatchEventType::kAdded;
    if (type == "MODIFIED") return kube::WatchEventType::kModified;
    if (type == "DELETED") return kube::WatchEventType::kDeleted;
    return kube::WatchEventType::kBookmark;
  }

  mutable absl::Mutex mu_;
  std::map<std::string, nlohmann::json> objects_ ABSL_GUARDED_BY(mu_);
  std::vector<LogEntry> log_ ABSL_GUARDED_BY(mu_);
  int64_t rv_ ABSL_GUARDED_BY(mu_) = 100;
  int64_t compacted_ ABSL_GUARDED_BY(mu_) = 0;
  int close_generation_ ABSL_GUARDED_BY(mu_) = 0;
  int expire_generation_ ABSL_GUARDED_BY(mu_) = 0;
  int wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<absl::Status> watch_failures_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> watch_versions_ ABSL_GUARDED_BY(mu_);
  int lists_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t limit_seen_ ABSL_GUARDED_BY(mu_) = 0;
};

// Records handler calls as "add a=v" / "update a v1->v2" / "delete a".
class Recorder {
 public:
  InformerHandlers Handlers() {
    return {
        [this](const ObjectPtr& o) { Record(absl::StrCat("add ", Name(o), "=", Value(o))); },
        [this](const ObjectPtr& old, const ObjectPtr& now) {
          Record(absl::StrCat("update ", Name(now), " ", Value(old), "->", Value(now)));
        },
        [this](const ObjectPtr& o) { Record(absl::StrCat("delete ", Name(o))); },
    };
  }
  // Waits (generously) until `n` calls were recorded; returns them all.
  std::vector<std::string> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return calls_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(30));
    return calls_;
  }

 private:
  static std::string Name(const ObjectPtr& o) { return (*o)["metadata"]["name"]; }
  static std::string Value(const ObjectPtr& o) { return (*o)["data"]["v"]; }
  void Record(std::string call) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
  }
  absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
};

// Polls `done` until true or a generous timeout; returns its last value.
bool WaitUntil(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!done() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
  return done();
}

InformerOptions FastOptions() {
  InformerOptions options;
  options.target = {kube::kConfigMaps, "ns", "", ""};
  options.page_size = 2;
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(20);
  return options;
}

TEST(InformerTest, ListsPagedThenStreamsChangesInOrder) {
  FakeApiServer server;
  server.Put("a", "ua", "1");
  server.Put("b", "ub", "1");
  server.Put("c", "uc", "1");
  Recorder recorder;
  Informer informer(&server, FastOptions());
  informer.AddHandlers(recorder.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(30)));
  EXPECT_THAT(recorder.WaitFor(3), ElementsAre("add a=1", "add b=1", "add c=1"));
  EXPECT_EQ(server.limit_seen(), 2);
  EXPECT_EQ(informer.Size(), 3u);
  EXPECT_EQ(informer.ResourceVersion(), "103");

  ObjectPtr a = informer.Get("ns", "a");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE((*a)["metadata"].contains("managedFields"));
  EXPECT_EQ(informer.GetByUid("ub"), informer.Get("ns", "b"));

  server.Put("a", "ua", "2");
  server.Remove("b");
  server.Put("d", "ud", "1");
  EXPECT_THAT(recorder.WaitFor(6),
              ElementsAre("add a=1", "add b=1", "add c=1", "update a 1->2", "delete b",
                          "add d=1"));
  EXPECT_EQ(informer.Get("ns", "b"), nullptr);
  informer.Stop();
}

TEST(InformerTest, RewatchesFromTheLastVersionWhenTheServerEndsTheWatch) {
  FakeApiServer server;
  server.Put("a", "ua", "1");
  Recorder recorder;
  Informer informer(&server, FastOptions());
  informer.AddHandlers(recorder.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(30)));
  server.Put("a", "ua", "2");
  recorder.WaitFor(2);
  server.Bookmark();  // rv 103
  ASSERT_TRUE(WaitUntil([&] { return informer.ResourceVersion() == "103"; }));
  server.CloseWatches();
  ASSERT_TRUE(WaitUntil([&] { return server.watch_versions().size() >= 2; }));
  server.Put("a", "ua", "3");
  EXPECT_THAT(recorder.WaitFor(3), ElementsAre("add a=1", "update a 1->2", "update a 2->3"));
  informer.Stop();
  EXPECT_EQ(server.lists(), 1) << "a normal watch end must not relist";
  std::vector<std::string> versions = server.watch_versions();
  ASSERT_GE(versions.size(), 2u);
  EXPECT_EQ(versions[0], "101");
  EXPECT_EQ(versions[1], "103") << "resumes after the bookmark";
}

TEST(InformerTest, RelistsOnGoneAndDiffsWhatHappenedMeanwhile) {
  FakeApiServer server;
  server.Put("keep", "uk", "1");
  server.Put("change", "uc", "1");
  server.Put("vanish", "uv", "1");
  Recorder recorder;
  Informer informer(&server, FastOptions());
  informer.AddHandlers(recorder.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(30)));
  recorder.WaitFor(3);
  // Changes the informer never sees as events: the server forgets them
  // (compaction) and tells the running watch with an ERROR 410 event.
  server.HoldWatches(true);
  server.Put("change", "uc", "2");
  server.Remove("vanish");
  server.Put("new", "un", "1");
  server.Compact();
  server.HoldWatches(false);
  std::vector<std::string> calls = recorder.WaitFor(6);
  EXPECT_THAT(std::vector<std::string>(calls.begin() + 3, calls.end()),
              UnorderedElementsAre("update change 1->2", "delete vanish", "add new=1"));
  EXPECT_EQ(server.lists(), 2);
  EXPECT_EQ(informer.Get("ns", "vanish"), nullptr);
  EXPECT_EQ((*informer.Get("ns", "change"))["data"]["v"], "2");
  informer.Stop();
}

TEST(InformerTest, BacksOffAndRewatchesAfterConnectionErrors) {
  FakeApiServer server;
  server.Put("a", "ua", "1");
  server.FailNextWatches(3, absl::UnavailableError("connection reset by peer"));
  Recorder recorder;
  Informer informer(&server, FastOptions());
  informer.AddHandlers(recorder.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(30)));
  server.Put("a", "ua", "2");
  EXPECT_THAT(recorder.WaitFor(2), ElementsAre("add a=1", "update a 1->2"));
  informer.Stop();
  EXPECT_EQ(server.lists(), 1) << "fewer failures than the relist threshold";
  std::vector<std::string> versions = server.watch_versions();
  ASSERT_GE(versions.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(versions[i], "101");
}

TEST(InformerTest, StopInterruptsABlockedWatchAndIsIdempotent) {
  FakeApiServer server;
  Informer informer(&server, FastOptions());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(30)));
  EXPECT_EQ(informer.Size(), 0u);
  informer.Stop();  // the fake watch blocks until cancelled
  informer.Stop();
  EXPECT_FALSE(informer.List().size());
}

TEST(InformerTest, NotSyncedUntilTheFirstListSucceeds) {
  FakeApiServer server;
  Informer informer(&server, FastOptions());
  EXPECT_FALSE(informer.HasSynced());
  EXPECT_FALSE(informer.WaitForSync(absl::Milliseconds(1)));
}

}  // namespace
}  // namespace vkhost::informer
