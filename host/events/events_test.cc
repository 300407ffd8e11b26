#include "host/events/events.h"

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace vkhost::events {
namespace {

using json = nlohmann::json;

// Records the writes the recorder makes; only Create and Patch are used.
class RecordingClient : public kube::KubeClient {
 public:
  struct Call {
    std::string verb;
    kube::Target target;
    json body;
  };

  absl::StatusOr<json> Get(const kube::Target&) override { return Unused(); }
  absl::StatusOr<json> List(const kube::Target&, const kube::ListOptions&) override {
    return Unused();
  }
  absl::StatusOr<json> Create(const kube::Target& t, const json& body,
                              const kube::WriteOptions&) override {
    absl::MutexLock lock(&mu);
    calls.push_back({"create", t, body});
    return body;
  }
  absl::StatusOr<json> Update(const kube::Target&, const json&,
                              const kube::WriteOptions&) override {
    return Unused();
  }
  absl::StatusOr<json> Patch(const kube::Target& t, kube::PatchType, const json& patch,
                             const kube::WriteOptions&) override {
    absl::MutexLock lock(&mu);
    calls.push_back({"patch", t, patch});
    if (patch_not_found) return absl::NotFoundError("events \"x\" not found");
    return patch;
  }
  absl::StatusOr<json> Delete(const kube::Target&, const kube::DeleteOptions&) override {
    return Unused();
  }
  absl::Status Watch(const kube::Target&, const kube::WatchOptions&,
                     const kube::WatchEventHandler&, kube::WatchCancel*) override {
    return absl::UnimplementedError("unused");
  }

  std::vector<Call> Calls() {
    absl::MutexLock lock(&mu);
    return calls;
  }

  absl::Mutex mu;
  std::vector<Call> calls ABSL_GUARDED_BY(mu);
  bool patch_not_found = false;

 private:
  static absl::Status Unused() { return absl::UnimplementedError("unused"); }
};

json Pod() {
  return json::parse(R"({"metadata": {"name": "web", "namespace": "ns1", "uid": "u1"}})");
}

TEST(EventRecorderTest, WritesCoreEventAboutThePod) {
  RecordingClient client;
  EventRecorder recorder(client, {.component = "vkhost", .host = "vk-1"});
  ObjectRef ref = ObjectRef::ForPod(Pod());
  ref.field_path = "spec.containers{app}";
  recorder.Record(ref, EventType::kNormal, "Started", "Started container app");
  recorder.Flush();

  auto calls = client.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].verb, "create");
  EXPECT_EQ(calls[0].target.ns, "ns1");
  const json& e = calls[0].body;
  EXPECT_EQ(e["involvedObject"]["uid"], "u1");
  EXPECT_EQ(e["involvedObject"]["fieldPath"], "spec.containers{app}");
  EXPECT_EQ(e["type"], "Normal");
  EXPECT_EQ(e["reason"], "Started");
  EXPECT_EQ(e["source"]["host"], "vk-1");
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["metadata"]["name"].get<std::string>().rfind("web.", 0), 0u);
}

TEST(EventRecorderTest, RepeatsFoldIntoOneEvent) {
  RecordingClient client;
  EventRecorder recorder(client, {.host = "vk-1"});
  for (int i = 0; i < 3; ++i) {
    recorder.Record(ObjectRef::ForPod(Pod()), EventType::kWarning, "BackOff",
                    "Back-off restarting failed container");
  }
  recorder.Record(ObjectRef::ForPod(Pod()), EventType::kWarning, "Failed", "other");
  recorder.Flush();
  auto calls = client.Calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].verb, "create");
  EXPECT_EQ(calls[1].verb, "patch");
  EXPECT_EQ(calls[1].body["count"], 2);
  EXPECT_EQ(calls[2].body["count"], 3);
  EXPECT_EQ(calls[1].target.name, calls[0].body["metadata"]["name"]);
  EXPECT_EQ(calls[3].verb, "create");
}

TEST(EventRecorderTest, ExpiredAggregateStartsANewEvent) {
  RecordingClient client;
  EventRecorder recorder(client, {.host = "vk-1"});
  recorder.Record(ObjectRef::ForPod(Pod()), EventType::kNormal, "Pulled", "m");
  recorder.Flush();
  client.patch_not_found = true;
  recorder.Record(ObjectRef::ForPod(Pod()), EventType::kNormal, "Pulled", "m");
  recorder.Flush();
  auto calls = client.Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[2].verb, "create");
}

TEST(EventRecorderTest, StoppedRecorderDropsWithoutBlocking) {
  RecordingClient client;
  EventRecorder recorder(client, {.host = "vk-1"});
  recorder.Stop();
  recorder.Record(ObjectRef::ForPod(Pod()), EventType::kNormal, "Started", "x");
  EXPECT_TRUE(client.Calls().empty());
}

}  // namespace
}  // namespace vkhost::events
