// Checks of the Pods service: validation, idempotency by UID, status shape,
// lifecycle and the WatchPodStatus protocol (spec.md §5, §7, §9).
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/conformance/conformance.h"

namespace vkhost::conformance {
namespace {

using grpc::StatusCode;
using Event = v1::WatchPodStatusResponse;

absl::Status Created(Context& c, const v1::Pod& pod) {
  return ExpectCode("CreatePod of " + DescribePod(RefOf(pod)), c.CreatePod(pod),
                    StatusCode::OK);
}

absl::Status Deleted(Context& c, const v1::PodRef& ref) {
  return ExpectCode("DeletePod of " + DescribePod(ref), c.DeletePod(ref, 0),
                    StatusCode::OK);
}

grpc::Status UpdatePod(Context& c, const v1::Pod& pod) {
  v1::UpdatePodRequest request;
  *request.mutable_pod() = pod;
  v1::UpdatePodResponse response;
  return c.pods().UpdatePod(Context::Unary().get(), request, &response);
}

std::vector<std::string> Names(
    const google::protobuf::RepeatedPtrField<v1::ContainerStatus>& statuses) {
  std::vector<std::string> names;
  for (const auto& s : statuses) names.push_back(s.name());
  return names;
}

std::vector<std::string> Names(
    const google::protobuf::RepeatedPtrField<v1::Container>& containers) {
  std::vector<std::string> names;
  for (const auto& c : containers) names.push_back(c.name());
  return names;
}

// The statuses name exactly the spec's containers, in spec order.
absl::Status SameOrder(const std::string& what,
                       const std::vector<std::string>& spec,
                       const std::vector<std::string>& reported) {
  if (spec == reported) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      what, " are [", absl::StrJoin(reported, ", "), "], want [",
      absl::StrJoin(spec, ", "), "] (every container, in spec order)"));
}

int CountListed(const std::vector<v1::PodStatus>& pods, const std::string& uid) {
  return static_cast<int>(
      std::count_if(pods.begin(), pods.end(), [&](const v1::PodStatus& s) {
        return s.pod().uid() == uid;
      }));
}

// --- Validation ---

Outcome CreateEmptyUidInvalid(Context& c) {
  v1::Pod pod = c.NewPod();
  pod.clear_uid();
  return Outcome::FromStatus(ExpectCode("CreatePod with an empty UID",
                                        c.CreatePod(pod),
                                        StatusCode::INVALID_ARGUMENT));
}

Outcome CreateNoContainersInvalid(Context& c) {
  v1::Pod pod = c.NewPod();
  pod.clear_containers();
  return Outcome::FromStatus(ExpectCode("CreatePod without containers",
                                        c.CreatePod(pod),
                                        StatusCode::INVALID_ARGUMENT));
}

Outcome DeleteEmptyUidInvalid(Context& c) {
  v1::PodRef ref = RefOf(c.NewPod());
  ref.clear_uid();
  return Outcome::FromStatus(ExpectCode("DeletePod with an empty UID",
                                        c.DeletePod(ref, 0),
                                        StatusCode::INVALID_ARGUMENT));
}

Outcome UpdateEmptyUidInvalid(Context& c) {
  v1::Pod pod = c.NewPod();
  pod.clear_uid();
  return Outcome::FromStatus(ExpectCode("UpdatePod with an empty UID",
                                        UpdatePod(c, pod),
                                        StatusCode::INVALID_ARGUMENT));
}

// --- Identity and idempotency (§5.1) ---

Outcome CreateTwiceIdempotent(Context& c) {
  v1::Pod pod = c.NewPodWithContainers({"main"});
  CONFORMANCE_RETURN_IF_ERROR(Created(c, pod));
  // The second create carries a different spec, which must not be applied.
  v1::Pod changed = pod;
  changed.mutable_containers(0)->set_name("renamed");
  CONFORMANCE_RETURN_IF_ERROR(ExpectCode(
      "second CreatePod of the same UID", c.CreatePod(changed), StatusCode::OK));
  absl::StatusOr<std::vector<v1::PodStatus>> listed = c.ListPods();
  CONFORMANCE_RETURN_IF_ERROR(listed.status());
  if (int n = CountListed(*listed, pod.uid()); n != 1) {
    return Outcome::Fail(absl::StrCat("ListPods lists ",
                                      DescribePod(RefOf(pod)), " ", n,
                                      " times after two CreatePods, want 1"));
  }
  absl::StatusOr<v1::PodStatus> status = c.GetPodStatus(RefOf(pod));
  CONFORMANCE_RETURN_IF_ERROR(status.status());
  return Outcome::FromStatus(
      SameOrder("container statuses after a second CreatePod with another spec",
                {"main"}, Names(status->container_statuses())));
}

Outcome StatusRightAfterCreate(Context& c) {
  // Not alphabetical, so a plugin that sorts is caught.
  v1::Pod pod = c.NewPodWithContainers({"zeta", "alpha", "mid"});
  CONFORMANCE_RETURN_IF_ERROR(Created(c, pod));
  absl::StatusOr<v1::PodStatus> status = c.GetPodStatus(RefOf(pod));
  CONFORMANCE_RETURN_IF_ERROR(status.status());
  if (status->pod().uid() != pod.uid()) {
    return Outcome::Fail(absl::StrCat("GetPodStatus returned the status of \"",
                                      status->pod().uid(), "\", want ",
                                      pod.uid()));
  }
  CONFORMANCE_RETURN_IF_ERROR(SameOrder("container statuses",
                                        Names(pod.containers()),
                                        Names(status->container_statuses())));
  for (const auto& container : status->container_statuses()) {
    if (container.state().state_case() == v1::ContainerState::STATE_NOT_SET) {
      return Outcome::Fail("container \"" + container.name() +
                           "\" has no state (want waiting until it runs)");
    }
  }
  absl::StatusOr<std::vector<v1::PodStatus>> listed = c.ListPods();
  CONFORMANCE_RETURN_IF_ERROR(listed.status());
  if (CountListed(*listed, pod.uid()) != 1) {
    return Outcome::Fail("ListPods right after CreatePod does not list " +
                         DescribePod(RefOf(pod)) + " exactly once");
  }
  return Outcome::Pass();
}

Outcome InitContainerStatuses(Context& c) {
  v1::Pod pod = c.NewPod();
  for (const char* name : {"setup-b", "setup-a"}) {
    v1::Container* init = pod.add_init_containers();
    *init = pod.containers(0);
    init->set_name(name);
    init->clear_command();
    for (const auto& word : c.options().exec_echo_command) {
      init->add_command(word);
    }
  }
  grpc::Status created = c.CreatePod(pod);
  if (created.error_code() == StatusCode::INVALID_ARGUMENT) {
    return Outcome::Skip("the backend refuses init containers: " +
                         Describe(created));
  }
  CONFORMANCE_RETURN_IF_ERROR(ExpectCode("CreatePod", created, StatusCode::OK));
  absl::StatusOr<v1::PodStatus> status = c.GetPodStatus(RefOf(pod));
  CONFORMANCE_RETURN_IF_ERROR(status.status());
  CONFORMANCE_RETURN_IF_ERROR(SameOrder("init container statuses",
                                        Names(pod.init_containers()),
                                        Names(status->init_container_statuses())));
  return Outcome::FromStatus(SameOrder("container statuses",
                                       Names(pod.containers()),
                                       Names(status->container_statuses())));
}

Outcome ReachesRunning(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  absl::StatusOr<v1::PodStatus> status = c.GetPodStatus(RefOf(*pod));
  CONFORMANCE_RETURN_IF_ERROR(status.status());
  if (status->phase() != v1::POD_PHASE_UNSPECIFIED &&
      status->phase() != v1::POD_PHASE_RUNNING) {
    return Outcome::Fail("phase is " + v1::PodPhase_Name(status->phase()) +
                         " while every container runs (leave it UNSPECIFIED "
                         "or keep it consistent)");
  }
  return Outcome::Pass();
}

Outcome GetStatusUnknownNotFound(Context& c) {
  v1::PodRef ref = RefOf(c.NewPod());  // never created
  grpc::Status rpc;
  (void)c.GetPodStatus(ref, &rpc);
  return Outcome::FromStatus(ExpectCode("GetPodStatus of an unknown UID", rpc,
                                        StatusCode::NOT_FOUND));
}

Outcome UpdateUnknownNotFound(Context& c) {
  v1::Pod pod = c.NewPod();  // never created
  return Outcome::FromStatus(ExpectCode("UpdatePod of an unknown UID",
                                        UpdatePod(c, pod),
                                        StatusCode::NOT_FOUND));
}

Outcome UpdateRunningPod(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  v1::Pod updated = *pod;
  (*updated.mutable_labels())["vkhost.io/conformance-updated"] = "true";
  (*updated.mutable_annotations())["vkhost.io/conformance"] = "updated";
  CONFORMANCE_RETURN_IF_ERROR(ExpectCode("UpdatePod with new labels",
                                         UpdatePod(c, updated), StatusCode::OK));
  return Outcome::FromStatus(c.GetPodStatus(RefOf(*pod)).status());
}

Outcome DeleteUnknownOk(Context& c) {
  v1::PodRef ref = RefOf(c.NewPod());  // never created
  return Outcome::FromStatus(ExpectCode("DeletePod of an unknown UID",
                                        c.DeletePod(ref, 0), StatusCode::OK));
}

Outcome DeleteTwiceOk(Context& c) {
  v1::Pod pod = c.NewPod();
  CONFORMANCE_RETURN_IF_ERROR(Created(c, pod));
  CONFORMANCE_RETURN_IF_ERROR(Deleted(c, RefOf(pod)));
  CONFORMANCE_RETURN_IF_ERROR(ExpectCode("second DeletePod (pod terminating)",
                                         c.DeletePod(RefOf(pod), 0),
                                         StatusCode::OK));
  CONFORMANCE_RETURN_IF_ERROR(c.WaitForForgotten(RefOf(pod)));
  return Outcome::FromStatus(ExpectCode("DeletePod after the pod was forgotten",
                                        c.DeletePod(RefOf(pod), 0),
                                        StatusCode::OK));
}

Outcome DeletedPodIsForgotten(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  CONFORMANCE_RETURN_IF_ERROR(Deleted(c, RefOf(*pod)));
  return Outcome::FromStatus(c.WaitForForgotten(RefOf(*pod)));
}

Outcome AcceptsLargeMessage(Context& c) {
  // spec.md §9: plugins accept messages up to 64 MiB from the host.
  constexpr int kBytes = 48 << 20;
  v1::Pod pod = c.NewPod();
  v1::Volume* volume = pod.add_volumes();
  volume->set_name("large");
  volume->mutable_files()->set_kind("configMap");
  v1::VolumeFile* file = volume->mutable_files()->add_files();
  file->set_path("large.bin");
  file->set_content(std::string(kBytes, 'v'));
  CONFORMANCE_RETURN_IF_ERROR(ExpectCode("CreatePod with a 48 MiB volume file",
                                         c.CreatePod(pod), StatusCode::OK));
  // Not needed any more; spare the plugin's memory for the other checks.
  return Outcome::FromStatus(Deleted(c, RefOf(pod)));
}

// --- WatchPodStatus (§5.3) ---

bool IsSynced(const Event& e) { return e.type() == Event::TYPE_SYNCED; }

std::string DescribeEnd(const BackgroundReader<Event>& watch) {
  std::optional<grpc::Status> end = watch.EndStatus();
  return end.has_value() ? "the stream ended with " + Describe(*end)
                         : "nothing arrived in time";
}

Outcome WatchSnapshot(Context& c) {
  v1::Pod pod = c.NewPod();
  CONFORMANCE_RETURN_IF_ERROR(Created(c, pod));
  absl::StatusOr<std::vector<v1::PodStatus>> before = c.ListPods();
  CONFORMANCE_RETURN_IF_ERROR(before.status());

  BackgroundReader<Event> watch([&](grpc::ClientContext* ctx) {
    return c.pods().WatchPodStatus(ctx, v1::WatchPodStatusRequest());
  });
  std::optional<size_t> synced = watch.WaitFor(IsSynced, c.options().timeout);
  if (!synced.has_value()) {
    return Outcome::Fail("no SYNCED event: " + DescribeEnd(watch));
  }
  const std::vector<Event> events = watch.Received();
  std::multiset<std::string> snapshot;
  for (size_t i = 0; i < *synced; ++i) {
    if (events[i].type() != Event::TYPE_STATUS) {
      return Outcome::Fail(absl::StrCat("event ", i, " before SYNCED is ",
                                        Event::Type_Name(events[i].type()),
                                        ", want STATUS"));
    }
    if (events[i].status().pod().uid().empty()) {
      return Outcome::Fail(absl::StrCat("STATUS event ", i, " has no pod UID"));
    }
    snapshot.insert(events[i].status().pod().uid());
  }
  if (size_t n = snapshot.count(pod.uid()); n != 1) {
    return Outcome::Fail(absl::StrCat("the snapshot before SYNCED has ", n,
                                      " STATUS events for ",
                                      DescribePod(RefOf(pod)), ", want 1"));
  }
  // Pods listed both before and after the snapshot existed throughout it.
  absl::StatusOr<std::vector<v1::PodStatus>> after = c.ListPods();
  CONFORMANCE_RETURN_IF_ERROR(after.status());
  for (const v1::PodStatus& listed : *before) {
    const std::string& uid = listed.pod().uid();
    if (CountListed(*after, uid) > 0 && snapshot.count(uid) == 0) {
      return Outcome::Fail("the snapshot before SYNCED misses " +
                           DescribePod(listed.pod()) + ", which ListPods lists");
    }
  }
  return Outcome::Pass();
}

Outcome WatchChanges(Context& c) {
  BackgroundReader<Event> watch([&](grpc::ClientContext* ctx) {
    return c.pods().WatchPodStatus(ctx, v1::WatchPodStatusRequest());
  });
  std::optional<size_t> synced = watch.WaitFor(IsSynced, c.options().timeout);
  if (!synced.has_value()) {
    return Outcome::Fail("no SYNCED event: " + DescribeEnd(watch));
  }
  v1::Pod pod = c.NewPod();
  CONFORMANCE_RETURN_IF_ERROR(Created(c, pod));
  auto status_of_pod = [&](const Event& e) {
    return e.type() == Event::TYPE_STATUS && e.status().pod().uid() == pod.uid();
  };
  std::optional<size_t> first =
      watch.WaitFor(status_of_pod, c.options().timeout, *synced + 1);
  if (!first.has_value()) {
    return Outcome::Fail("no STATUS event for " + DescribePod(RefOf(pod)) +
                         " created after SYNCED: " + DescribeEnd(watch));
  }
  CONFORMANCE_RETURN_IF_ERROR(Deleted(c, RefOf(pod)));
  auto deleted = [&](const Event& e) {
    return e.type() == Event::TYPE_DELETED && e.status().pod().uid() == pod.uid();
  };
  if (!watch.WaitFor(deleted, c.options().timeout, *first + 1).has_value()) {
    return Outcome::Fail("no DELETED event (carrying the pod's UID) for " +
                         DescribePod(RefOf(pod)) + " after DeletePod: " +
                         DescribeEnd(watch));
  }
  const std::vector<Event> events = watch.Received();
  const auto syncs = std::count_if(events.begin(), events.end(), IsSynced);
  if (syncs != 1) {
    return Outcome::Fail(
        absl::StrCat(syncs, " SYNCED events on one stream, want 1"));
  }
  if (watch.EndStatus().has_value()) {
    return Outcome::Fail("the stream ended by itself (" +
                         Describe(*watch.EndStatus()) +
                         "); it must stay open until cancelled");
  }
  return Outcome::Pass();
}

}  // namespace

const std::vector<Check>& PodChecks() {
  constexpr v1::Capability kNone = v1::CAPABILITY_UNSPECIFIED;
  static const std::vector<Check> kChecks = {
      {"pods.create-empty-uid-invalid", kNone, false, CreateEmptyUidInvalid},
      {"pods.create-no-containers-invalid", kNone, false,
       CreateNoContainersInvalid},
      {"pods.delete-empty-uid-invalid", kNone, false, DeleteEmptyUidInvalid},
      {"pods.update-empty-uid-invalid", v1::CAPABILITY_UPDATE_POD, false,
       UpdateEmptyUidInvalid},
      {"pods.create-twice-idempotent", kNone, false, CreateTwiceIdempotent},
      {"pods.status-right-after-create", kNone, false, StatusRightAfterCreate},
      {"pods.init-container-statuses", kNone, false, InitContainerStatuses},
      {"pods.reaches-running", kNone, false, ReachesRunning},
      {"pods.get-status-unknown-not-found", kNone, false,
       GetStatusUnknownNotFound},
      {"pods.update-unknown-not-found", v1::CAPABILITY_UPDATE_POD, false,
       UpdateUnknownNotFound},
      {"pods.update-running-pod", v1::CAPABILITY_UPDATE_POD, false,
       UpdateRunningPod},
      {"pods.delete-unknown-ok", kNone, false, DeleteUnknownOk},
      {"pods.delete-twice-ok", kNone, false, DeleteTwiceOk},
      {"pods.deleted-pod-is-forgotten", kNone, false, DeletedPodIsForgotten},
      {"pods.accepts-large-message", kNone, false, AcceptsLargeMessage},
      {"pods.watch-snapshot-then-synced", v1::CAPABILITY_WATCH_POD_STATUS, false,
       WatchSnapshot},
      {"pods.watch-changes-and-deleted", v1::CAPABILITY_WATCH_POD_STATUS, false,
       WatchChanges},
  };
  return kChecks;
}

}  // namespace vkhost::conformance
