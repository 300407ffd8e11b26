// One Streams.PortForward RPC driven with gRPC's callback API, so a
// forwarded connection holds no thread while it is open.
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_FORWARD_STREAM_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_FORWARD_STREAM_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "host/plugin/plugin.h"

namespace vkhost::streambridge::internal {

namespace v1 = ::vkhost::provider::v1;

// Receives what the plugin sends for one forwarded connection. Calls come
// from gRPC threads and may overlap, so an implementation locks; it may call
// the ForwardStream under that lock (gRPC never runs a reaction inline).
class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  // One data or error frame; call ForwardStream::ReadNext() for the next.
  virtual void OnForwardFrame(v1::PortForwardResponse frame) = 0;
  // The queue toward the plugin drained below the pause threshold.
  virtual void OnForwardWritable() = 0;
  // The last call: the RPC's final status (OK after the plugin's end, even
  // after an error frame).
  virtual void OnForwardDone(absl::Status status) = 0;
};

// The host's side of one forwarded connection. Thread-safe. After each
// OnForwardFrame the owner must call ReadNext (or Cancel), else the RPC
// never finishes.
class ForwardStream {
 public:
  virtual ~ForwardStream() = default;

  // Starts Streams.PortForward with `start` on `connection`. The stream keeps
  // itself, the connection and `observer` alive until OnForwardDone has run.
  static std::shared_ptr<ForwardStream> Start(
      std::shared_ptr<plugin::PluginConnection> connection,
      const v1::PortForwardStart& start, std::shared_ptr<ForwardObserver> observer);

  virtual void SendData(std::string bytes) = 0;
  // The client will send nothing more (close_write).
  virtual void CloseWrite() = 0;
  virtual void ReadNext() = 0;
  // Cancels the RPC (the client went away or reset the stream). Idempotent.
  virtual void Cancel() = 0;
  // Bytes queued for the plugin and not yet written.
  virtual size_t queued_bytes() const = 0;
};

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_FORWARD_STREAM_H_
