#include "host/kubeletapi/internal/run_command.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "vkhost/provider/v1/streams.grpc.pb.h"

namespace vkhost::kubeletapi::internal {

std::vector<std::string> SplitRunCommand(const std::string& cmd) {
  return absl::StrSplit(cmd, ' ');
}

absl::StatusOr<RunOutput> RunInContainer(plugin::PluginConnection& connection,
                                         const v1::PodRef& pod,
                                         const std::string& container,
                                         const std::vector<std::string>& command,
                                         absl::Duration deadline) {
  std::unique_ptr<v1::Streams::Stub> stub = v1::Streams::NewStub(connection.channel());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  std::unique_ptr<grpc::ClientReaderWriter<v1::ExecRequest, v1::ExecResponse>> stream =
      stub->Exec(&context);
  v1::ExecRequest start;
  v1::ExecStart* exec = start.mutable_start();
  *exec->mutable_pod() = pod;
  exec->set_container(container);
  for (const std::string& arg : command) exec->add_command(arg);
  exec->set_stdout(true);
  exec->set_stderr(true);
  // Without stdin the host sends nothing more; WritesDone says so.
  if (stream->Write(start)) stream->WritesDone();
  RunOutput output;
  bool exited = false;
  v1::ExecResponse frame;
  while (stream->Read(&frame)) {
    switch (frame.frame_case()) {
      case v1::ExecResponse::kStdout:
        output.stdout += frame.stdout();
        break;
      case v1::ExecResponse::kStderr:
        output.stderr += frame.stderr();
        break;
      case v1::ExecResponse::kExit:
        exited = true;
        output.exit_code = frame.exit().exit_code();
        break;
      case v1::ExecResponse::FRAME_NOT_SET:
        break;
    }
  }
  absl::Status status = plugin::FromGrpc(stream->Finish());
  if (!status.ok()) return status;
  if (!exited) {
    return absl::InternalError("the provider plugin ended the command without an exit status");
  }
  return output;
}

std::string NonZeroExitText(const std::vector<std::string>& command,
                            const RunOutput& output) {
  return absl::StrCat("command '", absl::StrJoin(command, " "), "' exited with ",
                      output.exit_code, ": ", output.stderr);
}

}  // namespace vkhost::kubeletapi::internal
