// Context: stubs, pod construction with fresh identities, polling helpers and
// the final cleanup.
#include <algorithm>
#include <cctype>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/conformance/conformance.h"

namespace vkhost::conformance {
namespace {

constexpr char kNamespace[] = "vkhost-conformance";
constexpr absl::Duration kPollInterval = absl::Milliseconds(100);

std::mt19937_64& Random() {
  static std::mt19937_64 generator{std::random_device{}()};
  return generator;
}

// A random RFC 4122 version 4 UUID, the shape Kubernetes gives pod UIDs.
std::string NewUid() {
  std::uniform_int_distribution<int> nibble(0, 15);
  std::string uid = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
  for (char& c : uid) {
    if (c == 'x' || c == 'y') {
      int v = nibble(Random());
      if (c == 'y') v = (v & 0x3) | 0x8;
      c = "0123456789abcdef"[v];
    }
  }
  return uid;
}

// vkhost-conformance-<check>-<random>, a DNS-1123 label (at most 63).
std::string NewPodName(const std::string& check) {
  std::string slug;
  for (char c : check) {
    slug += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  }
  slug = slug.substr(0, 36);
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  std::uniform_int_distribution<int> digit(0, 35);
  std::string suffix;
  for (int i = 0; i < 6; ++i) {
    suffix += "0123456789abcdefghijklmnopqrstuvwxyz"[digit(Random())];
  }
  return absl::StrCat("vkhost-conformance-", slug, "-", suffix);
}

bool AllRunning(const v1::PodStatus& status, const v1::Pod& pod) {
  if (status.container_statuses_size() < pod.containers_size()) return false;
  return std::all_of(status.container_statuses().begin(),
                     status.container_statuses().end(),
                     [](const v1::ContainerStatus& c) {
                       return c.state().has_running();
                     });
}

std::string DescribeStates(const v1::PodStatus& status) {
  std::vector<std::string> parts;
  for (const auto& c : status.container_statuses()) {
    std::string state = "no state";
    if (c.state().has_waiting()) {
      state = absl::StrCat("waiting (", c.state().waiting().reason(), ")");
    } else if (c.state().has_running()) {
      state = "running";
    } else if (c.state().has_terminated()) {
      state = absl::StrCat("terminated (exit ",
                           c.state().terminated().exit_code(), ")");
    }
    parts.push_back(absl::StrCat(c.name(), ": ", state));
  }
  return parts.empty() ? "no container statuses" : absl::StrJoin(parts, ", ");
}

bool Listed(const std::vector<v1::PodStatus>& pods, const std::string& uid) {
  return std::any_of(pods.begin(), pods.end(), [&](const v1::PodStatus& s) {
    return s.pod().uid() == uid;
  });
}

}  // namespace

Outcome Outcome::FromStatus(const absl::Status& status) {
  if (status.ok()) return Pass();
  return Fail(std::string(status.message()));
}

std::string Describe(const grpc::Status& status) {
  static const char* const kNames[] = {
      "OK",           "CANCELLED",        "UNKNOWN",
      "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED",    "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",
      "DATA_LOSS",    "UNAUTHENTICATED"};
  const int code = status.error_code();
  std::string name = code >= 0 && code < 17 ? kNames[code]
                                            : absl::StrCat("code ", code);
  if (status.error_message().empty()) return name;
  return absl::StrCat(name, " (\"", status.error_message(), "\")");
}

absl::Status ExpectCode(const std::string& call, const grpc::Status& status,
                        grpc::StatusCode want) {
  if (status.error_code() == want) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(call, " answered ", Describe(status), ", want ",
                   Describe(grpc::Status(want, ""))));
}

std::string DescribePod(const v1::PodRef& ref) {
  return absl::StrCat("pod ", ref.uid(), " (", ref.namespace_(), "/",
                      ref.name(), ")");
}

v1::PodRef RefOf(const v1::Pod& pod) {
  v1::PodRef ref;
  ref.set_uid(pod.uid());
  ref.set_namespace_(pod.namespace_());
  ref.set_name(pod.name());
  return ref;
}

Context::Context(Options options,
                 std::unique_ptr<plugin::PluginConnection> connection)
    : options_(std::move(options)), connection_(std::move(connection)) {
  if (launch_mode()) {
    auto argv = plugin::SplitCommandLine(options_.plugin_command);
    if (argv.ok()) plugin_argv_ = *std::move(argv);
  }
  std::shared_ptr<grpc::Channel> channel = connection_->channel();
  identity_ = v1::Identity::NewStub(channel);
  pods_ = v1::Pods::NewStub(channel);
  streams_ = v1::Streams::NewStub(channel);
  node_ = v1::Node::NewStub(channel);
  stats_ = v1::Stats::NewStub(channel);
  health_ = grpc::health::v1::Health::NewStub(channel);
}

Context::~Context() = default;

const plugin::PluginIdentity& Context::identity() const {
  return connection_->identity();
}

bool Context::Has(v1::Capability capability) const {
  return identity().Has(capability);
}

std::unique_ptr<grpc::ClientContext> Context::Unary(absl::Duration deadline) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return context;
}

v1::Pod Context::NewPod() { return NewPodWithContainers({"main"}); }

v1::Pod Context::NewPodWithContainers(const std::vector<std::string>& names) {
  v1::Pod pod;
  pod.set_uid(NewUid());
  pod.set_namespace_(kNamespace);
  pod.set_name(NewPodName(current_check_));
  pod.set_hostname(pod.name());
  pod.set_node_name("vkhost-conformance");
  pod.set_restart_policy(v1::RESTART_POLICY_ALWAYS);
  pod.set_termination_grace_period_seconds(1);
  (*pod.mutable_labels())["app.kubernetes.io/managed-by"] = "vkhost-conformance";
  pod.mutable_creation_time()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  for (const std::string& name : names) {
    v1::Container* container = pod.add_containers();
    container->set_name(name);
    container->set_image(options_.image);
    container->set_image_pull_policy("IfNotPresent");
    for (const auto& word : options_.container_command) {
      container->add_command(word);
    }
  }
  created_.push_back(RefOf(pod));
  return pod;
}

grpc::Status Context::CreatePod(const v1::Pod& pod) {
  v1::CreatePodRequest request;
  *request.mutable_pod() = pod;
  v1::CreatePodResponse response;
  return pods_->CreatePod(Unary().get(), request, &response);
}

grpc::Status Context::DeletePod(const v1::PodRef& ref,
                                std::optional<int64_t> grace_period_seconds) {
  v1::DeletePodRequest request;
  *request.mutable_pod() = ref;
  if (grace_period_seconds.has_value()) {
    request.set_grace_period_seconds(*grace_period_seconds);
  }
  v1::DeletePodResponse response;
  return pods_->DeletePod(Unary().get(), request, &response);
}

absl::StatusOr<v1::PodStatus> Context::GetPodStatus(const v1::PodRef& ref,
                                                    grpc::Status* rpc) {
  v1::GetPodStatusRequest request;
  *request.mutable_pod() = ref;
  v1::GetPodStatusResponse response;
  grpc::Status status = pods_->GetPodStatus(Unary().get(), request, &response);
  if (rpc != nullptr) *rpc = status;
  if (!status.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "GetPodStatus of ", DescribePod(ref), " answered ", Describe(status)));
  }
  return response.status();
}

absl::StatusOr<std::vector<v1::PodStatus>> Context::ListPods() {
  v1::ListPodsResponse response;
  grpc::Status status =
      pods_->ListPods(Unary().get(), v1::ListPodsRequest(), &response);
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("ListPods answered ", Describe(status)));
  }
  return std::vector<v1::PodStatus>(response.pods().begin(),
                                    response.pods().end());
}

absl::StatusOr<v1::Pod> Context::StartRunningPod() {
  v1::Pod pod = NewPod();
  if (grpc::Status status = CreatePod(pod); !status.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CreatePod of ", DescribePod(RefOf(pod)), " answered ",
        Describe(status)));
  }
  if (absl::Status status = WaitForRunning(pod); !status.ok()) return status;
  return pod;
}

absl::Status Context::WaitForRunning(const v1::Pod& pod) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  std::string last = "no answer yet";
  while (true) {
    absl::StatusOr<v1::PodStatus> status = GetPodStatus(RefOf(pod));
    if (status.ok()) {
      if (AllRunning(*status, pod)) return absl::OkStatus();
      last = DescribeStates(*status);
    } else {
      last = std::string(status.status().message());
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          DescribePod(RefOf(pod)), " did not run all containers within ",
          absl::FormatDuration(options_.timeout), "; last seen: ", last));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::Status Context::WaitForForgotten(const v1::PodRef& ref) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  std::string last;
  while (true) {
    grpc::Status rpc;
    absl::StatusOr<v1::PodStatus> status = GetPodStatus(ref, &rpc);
    absl::StatusOr<std::vector<v1::PodStatus>> listed = ListPods();
    const bool get_gone = rpc.error_code() == grpc::StatusCode::NOT_FOUND;
    const bool list_gone = listed.ok() && !Listed(*listed, ref.uid());
    if (get_gone && list_gone) return absl::OkStatus();
    const std::string list_state =
        !listed.ok() ? std::string(listed.status().message())
        : list_gone  ? "ListPods omits it"
                     : "ListPods still lists it";
    last = absl::StrCat("GetPodStatus answered ", Describe(rpc), ", ",
                        list_state);
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          DescribePod(ref), " was not forgotten within ",
          absl::FormatDuration(options_.timeout), " of DeletePod: ", last,
          " (want NOT_FOUND and absent from ListPods)"));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::Status Context::CleanUp() {
  std::vector<std::string> problems;
  for (const v1::PodRef& ref : created_) {
    grpc::Status status = DeletePod(ref, 0);
    // NOT_FOUND breaks spec.md §5.1 but is reported by its own check; here
    // it only means there is nothing left to delete.
    if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
      problems.push_back(absl::StrCat("DeletePod of ", DescribePod(ref),
                                      " answered ", Describe(status)));
    }
  }
  const absl::Time deadline = absl::Now() + options_.timeout;
  std::vector<std::string> left;
  while (true) {
    absl::StatusOr<std::vector<v1::PodStatus>> listed = ListPods();
    if (!listed.ok()) {
      problems.push_back(std::string(listed.status().message()));
      break;
    }
    left.clear();
    for (const v1::PodRef& ref : created_) {
      if (Listed(*listed, ref.uid())) left.push_back(DescribePod(ref));
    }
    if (left.empty() || absl::Now() >= deadline) break;
    absl::SleepFor(kPollInterval);
  }
  if (!left.empty()) {
    problems.push_back(absl::StrCat("still listed after ",
                                    absl::FormatDuration(options_.timeout),
                                    ": ", absl::StrJoin(left, ", ")));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrJoin(problems, "; "));
}

}  // namespace vkhost::conformance
