// vkhost-process-plugin: flags → ProcessConfig, then serve with the SDK.
// `vkhost-process-plugin shim <dir>` is the per-container shim (shim.h),
// which the plugin starts itself; operators never run it.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/flags/command_line.h"
#include "plugins/process/process_provider.h"
#include "plugins/process/shim.h"
#include "vkhost/sdk/provider.h"

ABSL_FLAG(std::string, state_dir, "",
          "Directory for pod state, volumes and logs; a restarted plugin re-adopts the "
          "pods found here. Required.");
ABSL_FLAG(std::string, image, "",
          "NAME=ROOT[:ENTRYPOINT ARG...]: run image NAME (with or without tag) with ROOT as "
          "its root directory; repeatable. busybox, python, alpine, debian, ubuntu and "
          "host map to / by default.");
ABSL_FLAG(absl::Duration, restart_backoff, absl::Seconds(10),
          "First CrashLoopBackOff delay; doubles per restart up to 5m, resets after 10m "
          "of running.");
ABSL_FLAG(int64_t, log_max_size, 10 << 20,
          "Bytes of log per container instance before the file rotates (one rotated "
          "file is kept).");
ABSL_FLAG(int32_t, pods, 110, "Most pods this node runs (node capacity `pods`).");
ABSL_FLAG(std::string, pod_ip, "127.0.0.1",
          "Pod IP to report when the host does not send the node IP.");
ABSL_FLAG(std::string, mount_namespaces, "auto",
          "auto: bind-mount volumes at their mount paths in a mount namespace when the "
          "machine allows it; off: never.");

int main(int argc, char* argv[]) {
  if (argc == 3 && std::strcmp(argv[1], "shim") == 0) {
    return vkhost::process::RunShim(argv[2]);
  }
  signal(SIGPIPE, SIG_IGN);
  vkhost::sdk::ParseCommandLine(argc, argv);
  vkhost::process::ProcessConfig config;
  config.state_dir = absl::GetFlag(FLAGS_state_dir);
  for (const std::string& entry : vkhost::flags::RepeatedFlagValues(argc, argv, "image")) {
    if (absl::Status s = config.images.Add(entry); !s.ok()) {
      std::fprintf(stderr, "vkhost-process-plugin: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  config.runtime.restart_backoff = absl::GetFlag(FLAGS_restart_backoff);
  config.runtime.log_max_bytes = absl::GetFlag(FLAGS_log_max_size);
  config.runtime.pod_ip = absl::GetFlag(FLAGS_pod_ip);
  config.max_pods = absl::GetFlag(FLAGS_pods);
  config.mount_namespaces = absl::GetFlag(FLAGS_mount_namespaces);
  if (config.mount_namespaces != "auto" && config.mount_namespaces != "off") {
    std::fprintf(stderr, "vkhost-process-plugin: --mount-namespaces must be auto or off\n");
    return 1;
  }
  auto provider = vkhost::process::ProcessProvider::Create(std::move(config));
  if (!provider.ok()) {
    std::fprintf(stderr, "vkhost-process-plugin: %s\n",
                 std::string(provider.status().message()).c_str());
    return 1;
  }
  return vkhost::sdk::ServeMain(**provider);
}
