#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "host/kube/client.h"

namespace vkhost::kube {
namespace {

constexpr Backoff kFast{absl::Microseconds(10), 1.0, 0.0, 5, absl::Milliseconds(1)};

absl::Status Conflict() {
  return StatusFromResponse("PUT", "/x", 409,
                            R"({"kind":"Status","reason":"Conflict","message":"modified"})");
}

// One ConfigMap whose resourceVersion another writer bumps `races` times
// right after each read, so that the next write conflicts.
class RacyStore final : public KubeClient {
 public:
  explicit RacyStore(int races) : races_(races) {}

  absl::StatusOr<nlohmann::json> Get(const Target&) override {
    ++gets;
    nlohmann::json copy = object_;
    if (races_ > 0) {
      --races_;
      Bump();
    }
    return copy;
  }
  absl::StatusOr<nlohmann::json> Update(const Target&, const nlohmann::json& body,
                                        const WriteOptions&) override {
    ++updates;
    if (body["metadata"]["resourceVersion"] != object_["metadata"]["resourceVersion"]) {
      return Conflict();
    }
    object_ = body;
    Bump();
    return object_;
  }
  absl::StatusOr<nlohmann::json> Patch(const Target&, PatchType, const nlohmann::json& patch,
                                       const WriteOptions&) override {
    ++patches;
    if (patch_failures_.empty()) {
      object_["data"].update(patch["data"]);
      return object_;
    }
    absl::Status next = patch_failures_.front();
    patch_failures_.erase(patch_failures_.begin());
    return next;
  }
  absl::StatusOr<nlohmann::json> List(const Target&, const ListOptions&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<nlohmann::json> Create(const Target&, const nlohmann::json&,
                                        const WriteOptions&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<nlohmann::json> Delete(const Target&, const DeleteOptions&) override {
    return absl::UnimplementedError("");
  }
  absl::Status Watch(const Target&, const WatchOptions&, const WatchEventHandler&,
                     WatchCancel*) override {
    return absl::UnimplementedError("");
  }

  void FailPatches(std::vector<absl::Status> failures) { patch_failures_ = std::move(failures); }
  const nlohmann::json& object() const { return object_; }

  int gets = 0, updates = 0, patches = 0;

 private:
  void Bump() {
    object_["metadata"]["resourceVersion"] = absl::StrCat(++version_);
  }
  int races_;
  int version_ = 1;
  nlohmann::json object_ = {{"metadata", {{"name", "cm"}, {"resourceVersion", "1"}}},
                            {"data", {{"count", "0"}}}};
  std::vector<absl::Status> patch_failures_;
};

const Target kCm{kConfigMaps, "ns", "cm", ""};

TEST(RetryOnConflictTest, RetriesOnlyConflicts) {
  int calls = 0;
  EXPECT_TRUE(RetryOnConflict([&] { return ++calls < 3 ? Conflict() : absl::OkStatus(); },
                              kFast)
                  .ok());
  EXPECT_EQ(calls, 3);

  calls = 0;
  EXPECT_TRUE(absl::IsNotFound(RetryOnConflict(
      [&] { return ++calls, absl::NotFoundError("gone"); }, kFast)));
  EXPECT_EQ(calls, 1);

  calls = 0;
  EXPECT_TRUE(IsConflict(RetryOnConflict([&] { return ++calls, Conflict(); }, kFast)));
  EXPECT_EQ(calls, kFast.steps);
}

TEST(UpdateWithRetryTest, RereadsAndReappliesTheChangeAfterAConflict) {
  RacyStore store(/*races=*/2);
  absl::StatusOr<nlohmann::json> stored = UpdateWithRetry(
      store, kCm,
      [](nlohmann::json& cm) {
        cm["data"]["count"] = "1";
        return absl::OkStatus();
      },
      {}, kFast);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ((*stored)["data"]["count"], "1");
  EXPECT_EQ(store.gets, 3);
  EXPECT_EQ(store.updates, 3);
}

TEST(UpdateWithRetryTest, MutateErrorsEndTheLoop) {
  RacyStore store(/*races=*/0);
  absl::Status s =
      UpdateWithRetry(store, kCm, [](nlohmann::json&) { return absl::AbortedError("no"); },
                      {}, kFast)
          .status();
  EXPECT_EQ(s.message(), "no");
  EXPECT_EQ(store.updates, 0);
}

TEST(PatchWithRetryTest, RetriesConflictsAndTransientErrorsButNotOthers) {
  RacyStore store(0);
  store.FailPatches({Conflict(), absl::UnavailableError("connection reset")});
  absl::StatusOr<nlohmann::json> out = PatchWithRetry(
      store, kCm, PatchType::kMerge, {{"data", {{"count", "9"}}}}, {}, kFast);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(store.patches, 3);
  EXPECT_EQ(store.object()["data"]["count"], "9");

  RacyStore forbidden(0);
  forbidden.FailPatches({absl::PermissionDeniedError("rbac")});
  EXPECT_EQ(PatchWithRetry(forbidden, kCm, PatchType::kMerge, {{"data", {}}}, {}, kFast)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(forbidden.patches, 1);
}

}  // namespace
}  // namespace vkhost::kube
