// vkhost-mock-plugin: flags → MockConfig, then serve with the SDK.
// See mock_provider.h for what the plugin does and commands.h for the
// programs its containers run.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/flags/command_line.h"
#include "plugins/mock/mock_provider.h"
#include "vkhost/sdk/provider.h"

ABSL_FLAG(absl::Duration, running_delay, absl::Milliseconds(100),
          "Time a container stays Waiting(ContainerCreating) before Running.");
ABSL_FLAG(absl::Duration, log_interval, absl::Seconds(1),
          "How often a long-running container writes a log line.");
ABSL_FLAG(absl::Duration, restart_backoff, absl::Milliseconds(200),
          "First restart back-off; doubles per restart up to 5s.");
ABSL_FLAG(absl::Duration, stop_delay, absl::Milliseconds(100),
          "Longest time a graceful DeletePod takes (grace 0: immediate).");
ABSL_FLAG(int64_t, max_log_lines, 10000,
          "Log lines kept per container instance.");
ABSL_FLAG(std::string, pod_cidr, "10.250.0.0/16",
          "IPv4 CIDR pod IPs are taken from, one per pod.");
ABSL_FLAG(std::string, cpu, "100", "Node cpu capacity (Kubernetes quantity).");
ABSL_FLAG(std::string, memory, "1Ti", "Node memory capacity.");
ABSL_FLAG(std::string, pods, "5000", "Node pods capacity.");
ABSL_FLAG(absl::Duration, latency, absl::ZeroDuration(),
          "Delay added to every unary RPC.");
ABSL_FLAG(std::vector<std::string>, fail, {},
          "RPC:CODE[:PROBABILITY] failures to inject; repeatable, or a comma "
          "list.");
ABSL_FLAG(absl::Duration, crash_after, absl::ZeroDuration(),
          "Abort the process this long after start (0: never).");
ABSL_FLAG(std::string, crash_on, "", "Abort the process when this RPC is called.");
ABSL_FLAG(std::string, record_file, "",
          "Append every CreatePod/UpdatePod/DeletePod request to this file as "
          "a JSON line.");
ABSL_FLAG(std::vector<std::string>, reject_image, {},
          "CreatePod of a pod using this image fails with INVALID_ARGUMENT; "
          "repeatable, or a comma list.");

namespace {

// Every value of a flag that may repeat, each also split at commas.
std::vector<std::string> AllValues(int argc, char* argv[], const std::string& name) {
  std::vector<std::string> values = vkhost::flags::RepeatedFlagValues(argc, argv, name);
  std::vector<std::string> split;
  for (const std::string& value : values) {
    for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      split.emplace_back(item);
    }
  }
  return split;
}

}  // namespace

int main(int argc, char* argv[]) {
  vkhost::sdk::ParseCommandLine(argc, argv);
  vkhost::mock::MockConfig config;
  config.store.running_delay = absl::GetFlag(FLAGS_running_delay);
  config.store.log_interval = absl::GetFlag(FLAGS_log_interval);
  config.store.restart_backoff = absl::GetFlag(FLAGS_restart_backoff);
  config.store.stop_delay = absl::GetFlag(FLAGS_stop_delay);
  config.store.max_log_lines =
      static_cast<size_t>(std::max<int64_t>(1, absl::GetFlag(FLAGS_max_log_lines)));
  config.store.pod_cidr = absl::GetFlag(FLAGS_pod_cidr);
  for (const std::string& image : AllValues(argc, argv, "reject_image")) {
    config.store.rejected_images.insert(image);
  }
  config.faults.latency = absl::GetFlag(FLAGS_latency);
  config.faults.fail = AllValues(argc, argv, "fail");
  config.faults.crash_after = absl::GetFlag(FLAGS_crash_after);
  config.faults.crash_on = absl::GetFlag(FLAGS_crash_on);
  config.record_file = absl::GetFlag(FLAGS_record_file);
  config.cpu = absl::GetFlag(FLAGS_cpu);
  config.memory = absl::GetFlag(FLAGS_memory);
  config.pods = absl::GetFlag(FLAGS_pods);

  auto provider = vkhost::mock::MockProvider::Create(config);
  if (!provider.ok()) {
    std::fprintf(stderr, "vkhost-mock-plugin: %s\n",
                 std::string(provider.status().message()).c_str());
    return 1;
  }
  return vkhost::sdk::ServeMain(**provider);
}
