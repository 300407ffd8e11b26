// PodStore; see pod_store.h for the lifecycle it implements.
#include "plugins/mock/pod_store.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"

namespace vkhost::mock {
namespace {

constexpr absl::Duration kMaxBackoff = absl::Seconds(5);
constexpr int64_t kDefaultGraceSeconds = 30;
constexpr int kExitOnSigterm = 143;

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(t));
}

void SetWaiting(v1::ContainerStatus& status, absl::string_view reason,
                absl::string_view message = "") {
  auto* waiting = status.mutable_state()->mutable_waiting();
  waiting->set_reason(std::string(reason));
  waiting->set_message(std::string(message));
  status.set_ready(false);
  status.set_started(false);
}

std::string FormatIp(uint32_t address) {
  return absl::StrCat(address >> 24, ".", (address >> 16) & 0xff, ".",
                      (address >> 8) & 0xff, ".", address & 0xff);
}

uint32_t ParseIp(const std::string& ip) {
  uint32_t address = 0;
  for (absl::string_view part : absl::StrSplit(ip, '.')) {
    uint32_t octet = 0;
    if (!absl::SimpleAtoi(part, &octet)) return 0;
    address = (address << 8) | octet;
  }
  return address;
}

}  // namespace

struct PodStore::Container {
  v1::Container spec;
  bool sidecar = false;  // an init container with restartPolicy Always
  v1::ContainerStatus status;
  std::unique_ptr<MockProcess> process;  // set while running
  // Bumped at every start and exit: timers of an older instance are stale.
  uint64_t instance = 0;
  bool ever_started = false;
  absl::Time started_at;
  std::shared_ptr<ContainerLog> log, previous_log;
  std::vector<std::weak_ptr<AttachChannel>> attached;
  size_t stats_seed = 0;
};

// Synthetic but stable usage: 1-50 millicores and 16-128 MiB per container,
// cumulative CPU growing with the instance's run time.
struct Usage {
  uint64_t nano_cores;
  uint64_t memory;
  uint64_t cpu_total;
};

Usage UsageOf(const PodStore::Container& c, absl::Time now);

struct PodStore::Pod {
  v1::Pod spec;
  std::string ip;
  absl::Time start_time;
  std::vector<Container> init, app;
  size_t next_init = 0;  // the init container running or about to
  bool terminating = false;
  absl::Time kill_at = absl::InfiniteFuture();
  uint64_t kill_token = 0;

  std::vector<Container>& List(bool is_init) { return is_init ? init : app; }
};

Usage UsageOf(const PodStore::Container& c, absl::Time now) {
  Usage usage;
  usage.nano_cores = 1'000'000 + c.stats_seed % 49'000'000;
  usage.memory = (16ull << 20) + c.stats_seed % (112ull << 20);
  usage.cpu_total = static_cast<uint64_t>(
      usage.nano_cores * absl::ToDoubleSeconds(now - c.started_at));
  return usage;
}

// ------------------------------------------------------------ AttachChannel

std::vector<AttachChannel::Chunk> AttachChannel::Take(
    std::optional<int>* exit_code) {
  absl::MutexLock lock(&mu_);
  *exit_code = exit_code_;
  return std::exchange(chunks_, {});
}

void AttachChannel::Push(bool is_stderr, absl::string_view data) {
  absl::MutexLock lock(&mu_);
  chunks_.push_back(Chunk{is_stderr, std::string(data)});
}

void AttachChannel::Exited(int code) {
  absl::MutexLock lock(&mu_);
  exit_code_ = code;
}

// ---------------------------------------------------------------- PodStore

absl::Status ParseCidr(absl::string_view cidr, uint32_t* network,
                       uint32_t* size) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad pod CIDR \"", cidr, "\": want an IPv4 CIDR like 10.250.0.0/16 "
        "with a prefix length from 8 to 30"));
  };
  std::vector<absl::string_view> parts = absl::StrSplit(cidr, '/');
  if (parts.size() != 2) return invalid();
  std::vector<absl::string_view> octets = absl::StrSplit(parts[0], '.');
  int length = 0;
  if (octets.size() != 4 || !absl::SimpleAtoi(parts[1], &length) ||
      length < 8 || length > 30) {
    return invalid();
  }
  uint32_t address = 0;
  for (absl::string_view octet : octets) {
    uint32_t value = 0;
    if (!absl::SimpleAtoi(octet, &value) || value > 255) return invalid();
    address = (address << 8) | value;
  }
  *size = 1u << (32 - length);
  *network = address & ~(*size - 1);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PodStore>> PodStore::Create(
    PodStoreConfig config, sdk::PodStatusFeed& feed) {
  uint32_t network = 0, size = 0;
  absl::Status parsed = ParseCidr(config.pod_cidr, &network, &size);
  if (!parsed.ok()) return parsed;
  return std::unique_ptr<PodStore>(
      new PodStore(std::move(config), feed, network, size));
}

PodStore::PodStore(PodStoreConfig config, sdk::PodStatusFeed& feed,
                   uint32_t network, uint32_t size)
    : config_(std::move(config)), feed_(feed), network_(network), size_(size) {}

PodStore::~PodStore() { scheduler_.Stop(); }

absl::StatusOr<std::string> PodStore::AllocateIp() {
  // Skip the network and broadcast addresses.
  const uint32_t first = 1, last = size_ - 2;
  for (uint32_t tries = 0; tries < size_; ++tries) {
    uint32_t offset = next_offset_;
    next_offset_ = offset >= last ? first : offset + 1;
    if (offset < first || offset > last) continue;
    if (used_offsets_.insert(offset).second) return FormatIp(network_ + offset);
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the mock's pod CIDR ", config_.pod_cidr, " has no free address"));
}

void PodStore::ReleaseIp(const std::string& ip) {
  used_offsets_.erase(ParseIp(ip) - network_);
}

absl::Status PodStore::CreatePod(const v1::Pod& spec) {
  absl::MutexLock lock(&mu_);
  if (pods_.contains(spec.uid())) return absl::OkStatus();
  for (const auto* list : {&spec.init_containers(), &spec.containers()}) {
    for (const v1::Container& container : *list) {
      if (config_.rejected_images.contains(container.image())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "container \"", container.name(), "\" uses image \"",
            container.image(), "\", which this mock backend can never run"));
      }
    }
  }
  auto ip = AllocateIp();
  if (!ip.ok()) return ip.status();

  auto pod = std::make_unique<Pod>();
  pod->spec = spec;
  pod->ip = *ip;
  pod->start_time = absl::Now();
  auto add = [&](const v1::Container& container_spec, bool is_init) {
    Container& c = pod->List(is_init).emplace_back();
    c.spec = container_spec;
    c.sidecar = is_init &&
                container_spec.restart_policy() == v1::RESTART_POLICY_ALWAYS;
    c.status.set_name(container_spec.name());
    c.status.set_image(container_spec.image());
    c.status.set_image_id(absl::StrCat("mock://", container_spec.image()));
    c.stats_seed = std::hash<std::string>()(spec.uid() + container_spec.name());
    SetWaiting(c.status, "PodInitializing");
  };
  for (const auto& c : spec.init_containers()) add(c, true);
  for (const auto& c : spec.containers()) add(c, false);

  Pod& ref = *pod;
  pods_[spec.uid()] = std::move(pod);
  if (!ref.init.empty()) {
    SetWaiting(ref.init[0].status, "ContainerCreating");
    ScheduleStart(ref, true, 0, config_.running_delay);
  } else {
    for (size_t i = 0; i < ref.app.size(); ++i) {
      SetWaiting(ref.app[i].status, "ContainerCreating");
      ScheduleStart(ref, false, i, config_.running_delay);
    }
  }
  Publish(ref);
  return absl::OkStatus();
}

absl::Status PodStore::UpdatePod(const v1::Pod& spec) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(spec.uid());
  if (it == pods_.end()) {
    return absl::NotFoundError(absl::StrCat("pod ", spec.uid(), " not found"));
  }
  Pod& pod = *it->second;
  *pod.spec.mutable_labels() = spec.labels();
  *pod.spec.mutable_annotations() = spec.annotations();
  *pod.spec.mutable_volumes() = spec.volumes();
  if (spec.has_active_deadline_seconds()) {
    pod.spec.set_active_deadline_seconds(spec.active_deadline_seconds());
  }
  bool changed = false;
  auto update_images = [&](const auto& new_specs, std::vector<Container>& list) {
    for (const v1::Container& new_spec : new_specs) {
      for (Container& c : list) {
        if (c.spec.name() != new_spec.name() ||
            c.spec.image() == new_spec.image()) {
          continue;
        }
        c.spec.set_image(new_spec.image());
        c.status.set_image(new_spec.image());
        c.status.set_image_id(absl::StrCat("mock://", new_spec.image()));
        changed = true;
      }
    }
  };
  update_images(spec.init_containers(), pod.init);
  update_images(spec.containers(), pod.app);
  if (changed) Publish(pod);
  return absl::OkStatus();
}

absl::Status PodStore::DeletePod(const v1::PodRef& ref,
                                 std::optional<int64_t> grace_period_seconds) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(ref.uid());
  if (it == pods_.end()) return absl::OkStatus();
  Pod& pod = *it->second;
  int64_t grace = kDefaultGraceSeconds;
  if (grace_period_seconds) {
    grace = *grace_period_seconds;
  } else if (pod.spec.has_termination_grace_period_seconds()) {
    grace = pod.spec.termination_grace_period_seconds();
  }
  absl::Duration delay = grace <= 0
                             ? absl::ZeroDuration()
                             : std::min(absl::Seconds(grace), config_.stop_delay);
  absl::Time kill_at = absl::Now() + delay;
  if (pod.terminating && kill_at >= pod.kill_at) return absl::OkStatus();
  pod.terminating = true;
  pod.kill_at = kill_at;
  pod.kill_token = ++next_kill_token_;
  if (delay == absl::ZeroDuration()) {
    TerminateAndForget(ref.uid());
    return absl::OkStatus();
  }
  scheduler_.After(delay, [this, uid = ref.uid(), token = pod.kill_token] {
    KillPod(uid, token);
  });
  return absl::OkStatus();
}

void PodStore::KillPod(const std::string& uid, uint64_t token) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end() || it->second->kill_token != token) return;
  TerminateAndForget(uid);
}

void PodStore::TerminateAndForget(const std::string& uid) {
  auto it = pods_.find(uid);
  Pod& pod = *it->second;
  absl::Time now = absl::Now();
  for (bool is_init : {true, false}) {
    std::vector<Container>& list = pod.List(is_init);
    for (size_t i = 0; i < list.size(); ++i) {
      Container& c = list[i];
      if (c.process) {
        ContainerExited(pod, is_init, i, kExitOnSigterm);
      } else if (c.status.state().has_waiting()) {
        auto* terminated = c.status.mutable_state()->mutable_terminated();
        terminated->set_exit_code(0);
        terminated->set_reason("Completed");
        *terminated->mutable_finished_at() = ToProto(now);
      }
    }
  }
  v1::PodStatus final_status = BuildStatus(pod);
  feed_.Publish(final_status);
  ReleaseIp(pod.ip);
  pods_.erase(it);
  feed_.PublishDeleted(final_status.pod());
}

absl::StatusOr<v1::PodStatus> PodStore::GetPodStatus(const std::string& uid) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) {
    return absl::NotFoundError(absl::StrCat("pod ", uid, " not found"));
  }
  return BuildStatus(*it->second);
}

std::vector<v1::PodStatus> PodStore::ListPods() {
  absl::MutexLock lock(&mu_);
  std::vector<v1::PodStatus> result;
  result.reserve(pods_.size());
  for (const auto& [uid, pod] : pods_) result.push_back(BuildStatus(*pod));
  return result;
}

bool PodStore::HasPod(const std::string& uid) {
  absl::MutexLock lock(&mu_);
  return pods_.contains(uid);
}

// ------------------------------------------------------------- containers

PodStore::Container* PodStore::FindContainer(Pod& pod, const std::string& name,
                                             bool* is_init) {
  if (name.empty() && pod.app.size() == 1) {
    *is_init = false;
    return &pod.app[0];
  }
  for (bool init : {false, true}) {
    for (Container& c : pod.List(init)) {
      if (c.spec.name() == name) {
        *is_init = init;
        return &c;
      }
    }
  }
  return nullptr;
}

PodStore::Container* PodStore::ContainerAt(const std::string& uid, bool init,
                                           size_t index, Pod** pod) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return nullptr;
  *pod = it->second.get();
  std::vector<Container>& list = (*pod)->List(init);
  return index < list.size() ? &list[index] : nullptr;
}

void PodStore::ScheduleStart(Pod& pod, bool init, size_t index,
                             absl::Duration delay) {
  uint64_t instance = pod.List(init)[index].instance;
  scheduler_.After(delay, [this, uid = pod.spec.uid(), init, index, instance] {
    absl::MutexLock lock(&mu_);
    Pod* pod = nullptr;
    Container* c = ContainerAt(uid, init, index, &pod);
    if (c == nullptr || pod->terminating || c->instance != instance ||
        c->process) {
      return;
    }
    StartContainer(*pod, init, index);
    Publish(*pod);
  });
}

void PodStore::StartContainer(Pod& pod, bool init, size_t index) {
  Container& c = pod.List(init)[index];
  if (c.ever_started) {
    c.previous_log = c.log;
    c.status.set_restart_count(c.status.restart_count() + 1);
  }
  c.ever_started = true;
  c.log = std::make_shared<ContainerLog>(config_.max_log_lines);
  ++c.instance;
  c.started_at = absl::Now();
  *c.status.mutable_state()->mutable_running()->mutable_started_at() =
      ToProto(c.started_at);
  c.status.set_ready(!init || c.sidecar);
  c.status.set_started(true);
  c.status.set_container_id(absl::StrCat("mock://", pod.spec.uid(), "/",
                                         c.spec.name(), "/",
                                         c.status.restart_count()));

  ProcessContext context;
  context.mode = ProcessMode::kContainer;
  context.argv.assign(c.spec.command().begin(), c.spec.command().end());
  context.argv.insert(context.argv.end(), c.spec.args().begin(),
                      c.spec.args().end());
  for (const v1::EnvVar& var : c.spec.env()) {
    context.env.emplace_back(var.name(), var.value());
  }
  context.tty = c.spec.tty();
  context.identity = absl::StrCat(pod.spec.namespace_(), "/", pod.spec.name(),
                                  "/", c.spec.name());
  context.log_interval = config_.log_interval;
  c.process = MakeProcess(context);
  bool first_sidecar_start = c.sidecar && c.status.restart_count() == 0;
  Apply(pod, init, index, c.process->Start());
  if (first_sidecar_start && pod.List(init)[index].process) AdvanceInit(pod);
}

bool PodStore::Apply(Pod& pod, bool init, size_t index, ProcessOutput output) {
  Container& c = pod.List(init)[index];
  absl::Time now = absl::Now();
  auto emit = [&](bool is_stderr, const std::string& data) {
    if (data.empty()) return;
    c.log->Append(is_stderr ? v1::LogEntry::STREAM_STDERR
                            : v1::LogEntry::STREAM_STDOUT,
                  data, now);
    auto& attached = c.attached;
    attached.erase(std::remove_if(attached.begin(), attached.end(),
                                  [](const auto& weak) { return weak.expired(); }),
                   attached.end());
    for (const auto& weak : attached) {
      if (auto channel = weak.lock()) channel->Push(is_stderr, data);
    }
  };
  emit(false, output.stdout_data);
  emit(true, output.stderr_data);
  if (output.exit_code) {
    ContainerExited(pod, init, index, *output.exit_code);
    return true;
  }
  if (output.wake_after) {
    scheduler_.After(*output.wake_after,
                     [this, uid = pod.spec.uid(), init, index,
                      instance = c.instance] {
                       OnTimer(uid, init, index, instance);
                     });
  }
  return false;
}

void PodStore::OnTimer(const std::string& uid, bool init, size_t index,
                       uint64_t instance) {
  absl::MutexLock lock(&mu_);
  Pod* pod = nullptr;
  Container* c = ContainerAt(uid, init, index, &pod);
  if (c == nullptr || c->instance != instance || !c->process) return;
  if (Apply(*pod, init, index, c->process->OnTimer())) Publish(*pod);
}

void PodStore::ContainerExited(Pod& pod, bool init, size_t index, int code) {
  Container& c = pod.List(init)[index];
  retired_cpu_ += UsageOf(c, absl::Now()).cpu_total;
  auto* terminated = c.status.mutable_state()->mutable_terminated();
  terminated->set_exit_code(code);
  terminated->set_reason(code == 0 ? "Completed" : "Error");
  *terminated->mutable_started_at() = ToProto(c.started_at);
  *terminated->mutable_finished_at() = ToProto(absl::Now());
  terminated->set_container_id(c.status.container_id());
  c.status.set_ready(false);
  c.status.set_started(false);
  c.process.reset();
  ++c.instance;
  c.log->Close();
  for (const auto& weak : c.attached) {
    if (auto channel = weak.lock()) channel->Exited(code);
  }
  c.attached.clear();
  if (pod.terminating) return;

  v1::RestartPolicy policy = pod.spec.restart_policy();
  if (policy == v1::RESTART_POLICY_UNSPECIFIED) {
    policy = v1::RESTART_POLICY_ALWAYS;
  }
  bool restart;
  if (c.sidecar) {
    restart = true;
  } else if (init) {
    if (code == 0) {
      AdvanceInit(pod);
      return;
    }
    restart = policy != v1::RESTART_POLICY_NEVER;
  } else {
    restart = policy == v1::RESTART_POLICY_ALWAYS ||
              (policy == v1::RESTART_POLICY_ON_FAILURE && code != 0);
  }
  if (!restart) return;
  absl::Duration backoff = config_.restart_backoff;
  for (int i = 0; i < c.status.restart_count() && backoff < kMaxBackoff; ++i) {
    backoff *= 2;
  }
  backoff = std::min(backoff, kMaxBackoff);
  *c.status.mutable_last_state() = c.status.state();
  SetWaiting(c.status, "CrashLoopBackOff",
             absl::StrCat("back-off ", absl::FormatDuration(backoff),
                          " restarting failed container=", c.spec.name(),
                          " pod=", pod.spec.name(), "_",
                          pod.spec.namespace_(), "(", pod.spec.uid(), ")"));
  ScheduleStart(pod, init, index, backoff);
}

void PodStore::AdvanceInit(Pod& pod) {
  ++pod.next_init;
  if (pod.next_init < pod.init.size()) {
    SetWaiting(pod.init[pod.next_init].status, "ContainerCreating");
    ScheduleStart(pod, true, pod.next_init, config_.running_delay);
    return;
  }
  for (size_t i = 0; i < pod.app.size(); ++i) {
    SetWaiting(pod.app[i].status, "ContainerCreating");
    ScheduleStart(pod, false, i, config_.running_delay);
  }
}

v1::PodStatus PodStore::BuildStatus(const Pod& pod) const {
  v1::PodStatus status;
  status.mutable_pod()->set_uid(pod.spec.uid());
  status.mutable_pod()->set_namespace_(pod.spec.namespace_());
  status.mutable_pod()->set_name(pod.spec.name());
  status.add_pod_ips(pod.ip);
  *status.mutable_start_time() = ToProto(pod.start_time);
  for (const Container& c : pod.init) {
    *status.add_init_container_statuses() = c.status;
  }
  for (const Container& c : pod.app) *status.add_container_statuses() = c.status;
  return status;
}

void PodStore::Publish(const Pod& pod) { feed_.Publish(BuildStatus(pod)); }

// ------------------------------------------------------- streams and stats

absl::StatusOr<std::shared_ptr<const ContainerLog>> PodStore::Log(
    const std::string& uid, const std::string& container, bool previous) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) {
    return absl::NotFoundError(absl::StrCat("pod ", uid, " not found"));
  }
  bool init = false;
  Container* c = FindContainer(*it->second, container, &init);
  if (c == nullptr) {
    return absl::NotFoundError(absl::StrCat("container \"", container,
                                            "\" not found in pod ", uid));
  }
  if (previous) {
    if (!c->previous_log) {
      return absl::NotFoundError(absl::StrCat(
          "container \"", c->spec.name(), "\" has no previous instance"));
    }
    return std::shared_ptr<const ContainerLog>(c->previous_log);
  }
  if (!c->log) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container \"", c->spec.name(), "\" is waiting to start"));
  }
  return std::shared_ptr<const ContainerLog>(c->log);
}

absl::StatusOr<PodStore::Container*> PodStore::RunningContainer(
    const std::string& uid, const std::string& name, Pod** pod, bool* init) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) {
    return absl::NotFoundError(absl::StrCat("pod ", uid, " not found"));
  }
  *pod = it->second.get();
  Container* c = FindContainer(**pod, name, init);
  if (c == nullptr) {
    return absl::NotFoundError(absl::StrCat("container \"", name,
                                            "\" not found in pod ", uid));
  }
  if (!c->process) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container \"", c->spec.name(), "\" is not running"));
  }
  return c;
}

absl::StatusOr<ExecTarget> PodStore::PrepareExec(const std::string& uid,
                                                 const std::string& container) {
  absl::MutexLock lock(&mu_);
  Pod* found = nullptr;
  bool init = false;
  absl::StatusOr<Container*> running = RunningContainer(uid, container, &found, &init);
  if (!running.ok()) return running.status();
  Pod& pod = *found;
  Container* c = *running;
  ExecTarget target;
  for (const v1::EnvVar& var : c->spec.env()) {
    target.env.emplace_back(var.name(), var.value());
  }
  target.identity = absl::StrCat(pod.spec.namespace_(), "/", pod.spec.name(),
                                 "/", c->spec.name());
  return target;
}

absl::StatusOr<std::shared_ptr<AttachChannel>> PodStore::Attach(
    const std::string& uid, const std::string& container) {
  absl::MutexLock lock(&mu_);
  Pod* found = nullptr;
  bool init = false;
  absl::StatusOr<Container*> running = RunningContainer(uid, container, &found, &init);
  if (!running.ok()) return running.status();
  Pod& pod = *found;
  Container* c = *running;
  auto channel = std::make_shared<AttachChannel>();
  channel->uid_ = uid;
  channel->init_ = init;
  std::vector<Container>& list = pod.List(init);
  channel->index_ = static_cast<size_t>(c - list.data());
  channel->instance_ = c->instance;
  c->attached.push_back(channel);
  return channel;
}

void PodStore::WriteStdin(const AttachChannel& channel,
                          absl::string_view data) {
  absl::MutexLock lock(&mu_);
  Pod* pod = nullptr;
  Container* c = ContainerAt(channel.uid_, channel.init_, channel.index_, &pod);
  if (c == nullptr || c->instance != channel.instance_ || !c->process) return;
  if (Apply(*pod, channel.init_, channel.index_, c->process->OnStdin(data))) {
    Publish(*pod);
  }
}

void PodStore::CloseStdin(const AttachChannel& channel) {
  absl::MutexLock lock(&mu_);
  Pod* pod = nullptr;
  Container* c = ContainerAt(channel.uid_, channel.init_, channel.index_, &pod);
  if (c == nullptr || c->instance != channel.instance_ || !c->process) return;
  if (Apply(*pod, channel.init_, channel.index_, c->process->OnStdinClosed())) {
    Publish(*pod);
  }
}

v1::GetStatsSummaryResponse PodStore::Stats() {
  absl::MutexLock lock(&mu_);
  v1::GetStatsSummaryResponse response;
  absl::Time now = absl::Now();
  google::protobuf::Timestamp now_proto = ToProto(now);
  uint64_t node_cores = 0, node_cpu_total = 0, node_memory = 0;
  for (const auto& [uid, pod] : pods_) {
    v1::PodStats* pod_stats = response.add_pods();
    pod_stats->mutable_pod()->set_uid(uid);
    pod_stats->mutable_pod()->set_namespace_(pod->spec.namespace_());
    pod_stats->mutable_pod()->set_name(pod->spec.name());
    *pod_stats->mutable_start_time() = ToProto(pod->start_time);
    uint64_t pod_cores = 0, pod_cpu_total = 0, pod_memory = 0;
    for (bool init : {true, false}) {
      for (const Container& c : pod->List(init)) {
        if (!c.process) continue;
        auto [nano_cores, memory, cpu_total] = UsageOf(c, now);
        v1::ContainerStats* stats = pod_stats->add_containers();
        stats->set_name(c.spec.name());
        *stats->mutable_start_time() = ToProto(c.started_at);
        *stats->mutable_cpu()->mutable_time() = now_proto;
        stats->mutable_cpu()->set_usage_nano_cores(nano_cores);
        stats->mutable_cpu()->set_usage_core_nano_seconds(cpu_total);
        *stats->mutable_memory()->mutable_time() = now_proto;
        stats->mutable_memory()->set_usage_bytes(memory);
        stats->mutable_memory()->set_working_set_bytes(memory);
        stats->mutable_memory()->set_rss_bytes(memory / 2);
        pod_cores += nano_cores;
        pod_cpu_total += cpu_total;
        pod_memory += memory;
      }
    }
    *pod_stats->mutable_cpu()->mutable_time() = now_proto;
    pod_stats->mutable_cpu()->set_usage_nano_cores(pod_cores);
    pod_stats->mutable_cpu()->set_usage_core_nano_seconds(pod_cpu_total);
    *pod_stats->mutable_memory()->mutable_time() = now_proto;
    pod_stats->mutable_memory()->set_usage_bytes(pod_memory);
    pod_stats->mutable_memory()->set_working_set_bytes(pod_memory);
    node_cores += pod_cores;
    node_cpu_total += pod_cpu_total;
    node_memory += pod_memory;
  }
  v1::NodeStats* node = response.mutable_node();
  *node->mutable_start_time() = ToProto(created_);
  *node->mutable_cpu()->mutable_time() = now_proto;
  node->mutable_cpu()->set_usage_nano_cores(node_cores);
  // Include finished instances so the node's counter never goes down.
  node->mutable_cpu()->set_usage_core_nano_seconds(node_cpu_total +
                                                   retired_cpu_);
  *node->mutable_memory()->mutable_time() = now_proto;
  node->mutable_memory()->set_usage_bytes(node_memory);
  node->mutable_memory()->set_working_set_bytes(node_memory);
  return response;
}

}  // namespace vkhost::mock
