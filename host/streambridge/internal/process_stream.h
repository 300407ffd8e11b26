// One Streams.Exec or Streams.Attach RPC driven with gRPC's callback API, so
// a session holds no thread while its process runs.
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_PROCESS_STREAM_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_PROCESS_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "host/plugin/plugin.h"
#include "host/spdy/spdy.h"
#include "host/streambridge/internal/remote_command.h"

namespace vkhost::streambridge::internal {

namespace v1 = ::vkhost::provider::v1;

// Receives what the plugin sends. Calls come from gRPC threads and may
// overlap with each other (a bidi stream's read and write completions are
// independent), so an implementation locks. It may call the ProcessStream
// under that lock: gRPC never runs a reaction inline in a Start* call.
class ProcessObserver {
 public:
  virtual ~ProcessObserver() = default;
  // One stdout/stderr/exit frame; call ProcessStream::ReadNext() for the next.
  virtual void OnProcessFrame(v1::ExecResponse frame) = 0;
  // The stdin queue drained below the pause threshold.
  virtual void OnProcessWritable() = 0;
  // The last call: the RPC's final status (OK after the exit frame).
  virtual void OnProcessDone(absl::Status status) = 0;
};

// The host's side of one process session. Thread-safe: every method may be
// called from any thread. After each OnProcessFrame the owner must call
// ReadNext (or Cancel), else the RPC never finishes.
class ProcessStream {
 public:
  virtual ~ProcessStream() = default;

  // Starts Streams.Exec with `start` (or Streams.Attach with the same
  // fields) on `connection`. The stream keeps itself, the connection and
  // `observer` alive until OnProcessDone has run.
  static std::shared_ptr<ProcessStream> StartExec(
      std::shared_ptr<plugin::PluginConnection> connection,
      const v1::ExecStart& start, std::shared_ptr<ProcessObserver> observer);
  static std::shared_ptr<ProcessStream> StartAttach(
      std::shared_ptr<plugin::PluginConnection> connection,
      const v1::ExecStart& start, std::shared_ptr<ProcessObserver> observer);

  virtual void SendStdin(std::string bytes) = 0;
  virtual void SendResize(uint32_t width, uint32_t height) = 0;
  virtual void CloseStdin() = 0;
  // Asks for the next frame after OnProcessFrame.
  virtual void ReadNext() = 0;
  // Cancels the RPC (the client went away). Idempotent.
  virtual void Cancel() = 0;
  // Bytes queued for the plugin and not yet written.
  virtual size_t queued_bytes() const = 0;
};

// Starts the plugin's Exec or Attach for `target` (the one place both
// transports, SPDY and WebSocket, open a process), with the terminal size
// the client announced before the start, if any. Fails with the plugin's
// status when it cannot serve the capability (UNIMPLEMENTED, UNAVAILABLE).
absl::StatusOr<std::shared_ptr<ProcessStream>> StartProcess(
    const RemoteCommandTarget& target, std::optional<spdy::TerminalSize> size,
    plugin::PluginClient& plugin, std::shared_ptr<ProcessObserver> observer);

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_PROCESS_STREAM_H_
