// PodStateStore; see pod_state.h.
#include "plugins/process/pod_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "plugins/process/whole_file.h"

namespace vkhost::process {
namespace {

using nlohmann::json;

int64_t TimeToJson(absl::Time t) {
  if (t == absl::InfinitePast()) return INT64_MIN;
  if (t == absl::InfiniteFuture()) return INT64_MAX;
  return absl::ToUnixNanos(t);
}

absl::Time TimeFromJson(int64_t ns) {
  if (ns == INT64_MIN) return absl::InfinitePast();
  if (ns == INT64_MAX) return absl::InfiniteFuture();
  return absl::FromUnixNanos(ns);
}

json ContainerToJson(const ContainerRecord& c) {
  std::string status;
  google::protobuf::util::JsonPrintOptions options;
  (void)google::protobuf::util::MessageToJsonString(c.status, &status, options);
  return json{{"name", c.name},
              {"instance", c.instance},
              {"active", c.active},
              {"shim_pid", c.shim_pid},
              {"shim_start_ticks", c.shim_start_ticks},
              {"backoff_consecutive", c.backoff_consecutive},
              {"next_start_ns", TimeToJson(c.next_start)},
              {"status", json::parse(status, nullptr, false)}};
}

bool ContainerFromJson(const json& j, ContainerRecord* c) {
  if (!j.is_object()) return false;
  c->name = j.value("name", "");
  c->instance = j.value("instance", 0);
  c->active = j.value("active", false);
  c->shim_pid = j.value("shim_pid", 0);
  c->shim_start_ticks = j.value("shim_start_ticks", uint64_t{0});
  c->backoff_consecutive = j.value("backoff_consecutive", 0);
  c->next_start = TimeFromJson(j.value("next_start_ns", INT64_MIN));
  if (j.contains("status") && j["status"].is_object()) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(j["status"].dump(),
                                                     &c->status, options)
             .ok()) {
      return false;
    }
  }
  return !c->name.empty();
}

}  // namespace

std::string EncodePodRecord(const PodRecord& r) {
  json ports = json::object();
  for (const auto& [container_port, host_port] : r.ports) {
    ports[std::to_string(container_port)] = host_port;
  }
  json init = json::array(), app = json::array();
  for (const ContainerRecord& c : r.init) init.push_back(ContainerToJson(c));
  for (const ContainerRecord& c : r.app) app.push_back(ContainerToJson(c));
  return json{{"uid", r.uid},
              {"start_time_ns", TimeToJson(r.start_time)},
              {"next_init", r.next_init},
              {"terminating", r.terminating},
              {"deadline_exceeded", r.deadline_exceeded},
              {"kill_at_ns", TimeToJson(r.kill_at)},
              {"ports", ports},
              {"init", init},
              {"app", app}}
      .dump(1);
}

absl::StatusOr<PodRecord> DecodePodRecord(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("state.json is not a JSON object");
  PodRecord r;
  r.uid = j.value("uid", "");
  r.start_time = TimeFromJson(j.value("start_time_ns", int64_t{0}));
  r.next_init = j.value("next_init", size_t{0});
  r.terminating = j.value("terminating", false);
  r.deadline_exceeded = j.value("deadline_exceeded", false);
  r.kill_at = TimeFromJson(j.value("kill_at_ns", INT64_MAX));
  if (j.contains("ports") && j["ports"].is_object()) {
    for (const auto& [key, value] : j["ports"].items()) {
      int port = 0;
      if (absl::SimpleAtoi(key, &port) && value.is_number_integer()) {
        r.ports[port] = value.get<int>();
      }
    }
  }
  for (const char* list : {"init", "app"}) {
    for (const json& c : j.value(list, json::array())) {
      ContainerRecord record;
      if (!ContainerFromJson(c, &record)) {
        return absl::InvalidArgumentError("state.json has a malformed container");
      }
      (std::string(list) == "init" ? r.init : r.app).push_back(std::move(record));
    }
  }
  if (r.uid.empty()) return absl::InvalidArgumentError("state.json has no uid");
  return r;
}

PodStateStore::PodStateStore(std::string state_dir) : root_(std::move(state_dir)) {}

absl::Status PodStateStore::Init() {
  std::error_code error;
  std::filesystem::create_directories(root_ + "/pods", error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--state-dir: cannot create ", root_, "/pods: ", error.message()));
  }
  chmod(root_.c_str(), 0700);
  return absl::OkStatus();
}

std::string PodStateStore::PodDir(const std::string& uid) const {
  return absl::StrCat(root_, "/pods/", uid);
}

std::string PodStateStore::InstanceDir(const std::string& uid,
                                       const std::string& container,
                                       int instance) const {
  return absl::StrCat(PodDir(uid), "/containers/", container, "/", instance);
}

absl::Status PodStateStore::SaveSpec(const v1::Pod& pod) {
  std::error_code error;
  std::filesystem::create_directories(PodDir(pod.uid()), error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot create ", PodDir(pod.uid()),
                                               ": ", error.message()));
  }
  return WriteFileAtomic(PodDir(pod.uid()) + "/pod.pb", pod.SerializeAsString());
}

absl::Status PodStateStore::SaveRecord(const PodRecord& record) {
  return WriteFileAtomic(PodDir(record.uid) + "/state.json",
                         EncodePodRecord(record));
}

std::vector<PodStateStore::Loaded> PodStateStore::LoadAll() const {
  std::vector<Loaded> pods;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator(root_ + "/pods", error)) {
    const std::string dir = entry.path().string();
    Loaded loaded;
    if (!loaded.spec.ParseFromString(ReadWholeFile(dir + "/pod.pb"))) {
      VKLOG(WARNING) << "state dir: skipping " << dir << ": unreadable pod.pb";
      continue;
    }
    absl::StatusOr<PodRecord> record = DecodePodRecord(ReadWholeFile(dir + "/state.json"));
    if (!record.ok()) {
      VKLOG(WARNING) << "state dir: skipping " << dir << ": " << record.status().message();
      continue;
    }
    loaded.record = *std::move(record);
    pods.push_back(std::move(loaded));
  }
  return pods;
}

void PodStateStore::Remove(const std::string& uid) {
  if (uid.empty()) return;
  std::error_code error;
  std::filesystem::remove_all(PodDir(uid), error);
}

}  // namespace vkhost::process
