// Checks of the Streams service: logs, exec, attach and port-forward framing
// and error codes (spec.md §6, §7).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/conformance/conformance.h"

namespace vkhost::conformance {
namespace {

using grpc::StatusCode;

constexpr char kNoSuchContainer[] = "no-such-container";

v1::PodRef NeverCreatedPod(Context& c) { return RefOf(c.NewPod()); }

// A context for a stream the suite drives to its end: the suite's timeout
// guards against a plugin that never finishes.
std::unique_ptr<grpc::ClientContext> StreamContext(Context& c) {
  return Context::Unary(c.options().timeout);
}

// --- Exec and Attach ---

// What came back on an exec or attach stream.
struct ProcessRun {
  grpc::Status status;
  std::string out;
  std::string err;
  std::optional<v1::ExitStatus> exit;
  int exit_frames = 0;
  bool frames_after_exit = false;
};

// Writes `frames`, then reads to the end of the call.
template <typename Request>
ProcessRun Drive(grpc::ClientReaderWriter<Request, v1::ExecResponse>& stream,
                 const std::vector<Request>& frames) {
  for (const Request& frame : frames) {
    if (!stream.Write(frame)) break;
  }
  ProcessRun run;
  v1::ExecResponse response;
  while (stream.Read(&response)) {
    if (run.exit.has_value()) run.frames_after_exit = true;
    switch (response.frame_case()) {
      case v1::ExecResponse::kStdout:
        run.out += response.stdout();
        break;
      case v1::ExecResponse::kStderr:
        run.err += response.stderr();
        break;
      case v1::ExecResponse::kExit:
        ++run.exit_frames;
        run.exit = response.exit();
        break;
      case v1::ExecResponse::FRAME_NOT_SET:
        break;
    }
  }
  run.status = stream.Finish();
  return run;
}

ProcessRun RunExec(Context& c, const std::vector<v1::ExecRequest>& frames) {
  auto context = StreamContext(c);
  auto stream = c.streams().Exec(context.get());
  return Drive(*stream, frames);
}

ProcessRun RunAttach(Context& c, const std::vector<v1::AttachRequest>& frames) {
  auto context = StreamContext(c);
  auto stream = c.streams().Attach(context.get());
  return Drive(*stream, frames);
}

v1::ExecRequest ExecStart(const v1::PodRef& pod, const std::string& container,
                          const std::vector<std::string>& command,
                          bool stdin) {
  v1::ExecRequest request;
  v1::ExecStart* start = request.mutable_start();
  *start->mutable_pod() = pod;
  start->set_container(container);
  for (const auto& word : command) start->add_command(word);
  start->set_stdin(stdin);
  start->set_stdout(true);
  start->set_stderr(true);
  return request;
}

v1::ExecRequest ExecStdin(const std::string& data) {
  v1::ExecRequest request;
  request.set_stdin(data);
  return request;
}

v1::ExecRequest ExecCloseStdin() {
  v1::ExecRequest request;
  request.set_close_stdin(true);
  return request;
}

// spec.md §6.2: output frames, exactly one exit frame as the last frame,
// then OK.
absl::Status CheckFraming(const std::string& what, const ProcessRun& run) {
  if (!run.status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ended with ", Describe(run.status),
                     ", want OK after an exit frame"));
  }
  if (run.exit_frames != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " sent ", run.exit_frames, " exit frames, want exactly 1"));
  }
  if (run.frames_after_exit) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " sent frames after the exit frame"));
  }
  return absl::OkStatus();
}

absl::Status ExpectExitCode(const std::string& what, const ProcessRun& run,
                            int want) {
  if (run.exit->exit_code() == want) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      what, " exited with ", run.exit->exit_code(), ", want ", want,
      run.exit->message().empty() ? "" : " (\"" + run.exit->message() + "\")",
      "; stderr: \"", run.err, "\""));
}

Outcome ExecFirstFrameNotStart(Context& c) {
  return Outcome::FromStatus(ExpectCode("Exec starting with a stdin frame",
                                        RunExec(c, {ExecStdin("x")}).status,
                                        StatusCode::INVALID_ARGUMENT));
}

Outcome ExecUnknownPod(Context& c) {
  ProcessRun run = RunExec(
      c, {ExecStart(NeverCreatedPod(c), "main", c.options().exec_echo_command,
                    false)});
  return Outcome::FromStatus(
      ExpectCode("Exec in an unknown pod", run.status, StatusCode::NOT_FOUND));
}

Outcome ExecUnknownContainer(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  ProcessRun run = RunExec(c, {ExecStart(RefOf(*pod), kNoSuchContainer,
                                         c.options().exec_echo_command, false)});
  return Outcome::FromStatus(ExpectCode("Exec in an unknown container",
                                        run.status, StatusCode::NOT_FOUND));
}

Outcome ExecEchoOutput(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  ProcessRun run = RunExec(c, {ExecStart(RefOf(*pod), "main",
                                         c.options().exec_echo_command, false)});
  CONFORMANCE_RETURN_IF_ERROR(CheckFraming("Exec", run));
  CONFORMANCE_RETURN_IF_ERROR(ExpectExitCode("the echo command", run, 0));
  if (!absl::StrContains(run.out, c.options().exec_echo_output)) {
    return Outcome::Fail(absl::StrCat("stdout was \"", run.out, "\", want \"",
                                      c.options().exec_echo_output,
                                      "\" in it"));
  }
  return Outcome::Pass();
}

Outcome ExecExitCode(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  ProcessRun run = RunExec(c, {ExecStart(RefOf(*pod), "main",
                                         c.options().exit_code_command, false)});
  CONFORMANCE_RETURN_IF_ERROR(CheckFraming("Exec", run));
  return Outcome::FromStatus(
      ExpectExitCode("the exit-code command", run, c.options().exit_code));
}

Outcome ExecStdinClose(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  const std::string input = "vkhost-conformance stdin line 1\nline 2\n";
  ProcessRun run = RunExec(
      c, {ExecStart(RefOf(*pod), "main", c.options().stdin_command, true),
          ExecStdin(input.substr(0, 10)), ExecStdin(input.substr(10)),
          ExecCloseStdin()});
  CONFORMANCE_RETURN_IF_ERROR(CheckFraming("Exec with stdin", run));
  CONFORMANCE_RETURN_IF_ERROR(ExpectExitCode("the stdin command", run, 0));
  if (run.out != input) {
    return Outcome::Fail(absl::StrCat("stdout was \"", run.out, "\", want \"",
                                      input, "\" (stdin copied, then EOF)"));
  }
  return Outcome::Pass();
}

v1::AttachRequest AttachStdin(const std::string& data) {
  v1::AttachRequest request;
  request.set_stdin(data);
  return request;
}

v1::AttachRequest AttachStart(const v1::PodRef& pod,
                              const std::string& container) {
  v1::AttachRequest request;
  *request.mutable_start()->mutable_pod() = pod;
  request.mutable_start()->set_container(container);
  request.mutable_start()->set_stdout(true);
  request.mutable_start()->set_stderr(true);
  return request;
}

Outcome AttachFirstFrameNotStart(Context& c) {
  return Outcome::FromStatus(ExpectCode("Attach starting with a stdin frame",
                                        RunAttach(c, {AttachStdin("x")}).status,
                                        StatusCode::INVALID_ARGUMENT));
}

Outcome AttachUnknownPod(Context& c) {
  ProcessRun run = RunAttach(c, {AttachStart(NeverCreatedPod(c), "main")});
  return Outcome::FromStatus(
      ExpectCode("Attach to an unknown pod", run.status, StatusCode::NOT_FOUND));
}

Outcome AttachUnknownContainer(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  ProcessRun run = RunAttach(c, {AttachStart(RefOf(*pod), kNoSuchContainer)});
  return Outcome::FromStatus(ExpectCode("Attach to an unknown container",
                                        run.status, StatusCode::NOT_FOUND));
}

// --- PortForward ---

v1::PortForwardRequest ForwardStart(const v1::PodRef& pod, int port) {
  v1::PortForwardRequest request;
  *request.mutable_start()->mutable_pod() = pod;
  request.mutable_start()->set_port(port);
  return request;
}

v1::PortForwardRequest ForwardData(const std::string& data) {
  v1::PortForwardRequest request;
  request.set_data(data);
  return request;
}

grpc::Status ForwardAndDrain(Context& c,
                             const std::vector<v1::PortForwardRequest>& frames) {
  auto context = StreamContext(c);
  auto stream = c.streams().PortForward(context.get());
  for (const auto& frame : frames) {
    if (!stream->Write(frame)) break;
  }
  v1::PortForwardResponse response;
  while (stream->Read(&response)) {
  }
  return stream->Finish();
}

Outcome ForwardFirstFrameNotStart(Context& c) {
  return Outcome::FromStatus(ExpectCode(
      "PortForward starting with a data frame",
      ForwardAndDrain(c, {ForwardData("x")}), StatusCode::INVALID_ARGUMENT));
}

Outcome ForwardUnknownPod(Context& c) {
  return Outcome::FromStatus(ExpectCode(
      "PortForward to an unknown pod",
      ForwardAndDrain(c, {ForwardStart(NeverCreatedPod(c), 80)}),
      StatusCode::NOT_FOUND));
}

Outcome ForwardEcho(Context& c) {
  if (c.options().port_forward_port == 0) {
    return Outcome::Skip("no --port-forward-port given");
  }
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  const std::string payload = "vkhost-conformance port-forward\n";
  auto context = StreamContext(c);
  auto stream = c.streams().PortForward(context.get());
  stream->Write(ForwardStart(RefOf(*pod), c.options().port_forward_port));
  stream->Write(ForwardData(payload));
  std::string echoed;
  std::string error;
  bool closed_write = false;
  v1::PortForwardResponse response;
  while (stream->Read(&response)) {
    echoed += response.data();
    if (response.frame_case() == v1::PortForwardResponse::kError) {
      error = response.error();
    }
    // Half-close once the echo is complete; the pod side then closes and
    // the plugin ends the call.
    if (!closed_write && echoed.size() >= payload.size()) {
      v1::PortForwardRequest close;
      close.set_close_write(true);
      stream->Write(close);
      closed_write = true;
    }
  }
  grpc::Status status = stream->Finish();
  if (!error.empty()) {
    return Outcome::Fail(absl::StrCat("PortForward to port ",
                                      c.options().port_forward_port,
                                      " reported an error frame: ", error));
  }
  if (echoed != payload) {
    return Outcome::Fail(absl::StrCat("received \"", echoed, "\", want the echo \"",
                                      payload, "\""));
  }
  return Outcome::FromStatus(ExpectCode(
      "PortForward after close_write and the pod side closing", status,
      StatusCode::OK));
}

// --- ContainerLogs ---

struct LogsRun {
  grpc::Status status;
  std::vector<v1::LogEntry> entries;
  std::string text;
};

LogsRun ReadLogs(Context& c, const v1::PodRef& pod, const std::string& container,
                 bool follow) {
  v1::ContainerLogsRequest request;
  *request.mutable_pod() = pod;
  request.set_container(container);
  request.set_follow(follow);
  auto context = StreamContext(c);
  auto reader = c.streams().ContainerLogs(context.get(), request);
  LogsRun run;
  v1::ContainerLogsResponse response;
  while (reader->Read(&response)) {
    for (const auto& entry : response.entries()) {
      run.entries.push_back(entry);
      run.text += entry.line();
    }
  }
  run.status = reader->Finish();
  return run;
}

// Polls until the pod's first container has left `waiting`: like a kubelet,
// a plugin may refuse logs of a container that never started.
absl::Status WaitForStarted(Context& c, const v1::Pod& pod) {
  const absl::Time deadline = absl::Now() + c.options().timeout;
  while (true) {
    absl::StatusOr<v1::PodStatus> status = c.GetPodStatus(RefOf(pod));
    if (!status.ok()) return status.status();
    if (status->container_statuses_size() > 0) {
      const v1::ContainerState& state = status->container_statuses(0).state();
      if (state.has_running() || state.has_terminated()) return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "container \"main\" of ", DescribePod(RefOf(pod)),
          " did not start within ", absl::FormatDuration(c.options().timeout)));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

// A started pod whose only container prints the echo output and exits for
// good.
absl::StatusOr<v1::Pod> StartEchoPod(Context& c) {
  v1::Pod pod = c.NewPod();
  pod.set_restart_policy(v1::RESTART_POLICY_NEVER);
  v1::Container* main = pod.mutable_containers(0);
  main->clear_command();
  for (const auto& word : c.options().exec_echo_command) main->add_command(word);
  grpc::Status status = c.CreatePod(pod);
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        "CreatePod of a pod running the echo command answered " +
        Describe(status));
  }
  if (absl::Status started = WaitForStarted(c, pod); !started.ok()) {
    return started;
  }
  return pod;
}

Outcome LogsUnknownPod(Context& c) {
  return Outcome::FromStatus(
      ExpectCode("ContainerLogs of an unknown pod",
                 ReadLogs(c, NeverCreatedPod(c), "main", false).status,
                 StatusCode::NOT_FOUND));
}

Outcome LogsUnknownContainer(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  return Outcome::FromStatus(
      ExpectCode("ContainerLogs of an unknown container",
                 ReadLogs(c, RefOf(*pod), kNoSuchContainer, false).status,
                 StatusCode::NOT_FOUND));
}

Outcome LogsWithoutFollowEnd(Context& c) {
  absl::StatusOr<v1::Pod> pod = c.StartRunningPod();
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  // The container keeps running, so only the missing `follow` ends the call.
  return Outcome::FromStatus(ExpectCode(
      absl::StrCat("ContainerLogs without follow of a running container "
                   "(must end by itself within ",
                   absl::FormatDuration(c.options().timeout), ")"),
      ReadLogs(c, RefOf(*pod), "main", false).status, StatusCode::OK));
}

Outcome LogsEntries(Context& c) {
  absl::StatusOr<v1::Pod> pod = StartEchoPod(c);
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  const absl::Time deadline = absl::Now() + c.options().timeout;
  LogsRun run;
  while (true) {
    run = ReadLogs(c, RefOf(*pod), "main", false);
    if (!run.status.ok()) {
      return Outcome::Fail("ContainerLogs answered " + Describe(run.status));
    }
    if (absl::StrContains(run.text, c.options().exec_echo_output)) break;
    if (absl::Now() >= deadline) {
      return Outcome::Fail(absl::StrCat("the log never showed \"",
                                        c.options().exec_echo_output,
                                        "\"; last read: \"", run.text, "\""));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  for (const v1::LogEntry& entry : run.entries) {
    if (!entry.has_time() || entry.stream() == v1::LogEntry::STREAM_UNSPECIFIED) {
      return Outcome::Fail("log entry \"" + entry.line() +
                           "\" lacks its time or stream");
    }
  }
  return Outcome::Pass();
}

Outcome LogsFollowEndsWithContainer(Context& c) {
  absl::StatusOr<v1::Pod> pod = StartEchoPod(c);
  CONFORMANCE_RETURN_IF_ERROR(pod.status());
  LogsRun run = ReadLogs(c, RefOf(*pod), "main", true);
  CONFORMANCE_RETURN_IF_ERROR(ExpectCode(
      absl::StrCat("ContainerLogs with follow of a container that exits (must "
                   "end once it terminated, within ",
                   absl::FormatDuration(c.options().timeout), ")"),
      run.status, StatusCode::OK));
  if (!absl::StrContains(run.text, c.options().exec_echo_output)) {
    return Outcome::Fail(absl::StrCat("the followed log was \"", run.text,
                                      "\", want \"",
                                      c.options().exec_echo_output, "\" in it"));
  }
  return Outcome::Pass();
}

}  // namespace

const std::vector<Check>& StreamChecks() {
  constexpr v1::Capability kLogs = v1::CAPABILITY_CONTAINER_LOGS;
  constexpr v1::Capability kExec = v1::CAPABILITY_EXEC;
  constexpr v1::Capability kAttach = v1::CAPABILITY_ATTACH;
  constexpr v1::Capability kForward = v1::CAPABILITY_PORT_FORWARD;
  static const std::vector<Check> kChecks = {
      {"logs.unknown-pod-not-found", kLogs, false, LogsUnknownPod},
      {"logs.unknown-container-not-found", kLogs, false, LogsUnknownContainer},
      {"logs.without-follow-ends", kLogs, false, LogsWithoutFollowEnd},
      {"logs.entries-have-time-and-stream", kLogs, false, LogsEntries},
      {"logs.follow-ends-with-container", kLogs, false,
       LogsFollowEndsWithContainer},
      {"exec.first-frame-not-start-invalid", kExec, false,
       ExecFirstFrameNotStart},
      {"exec.unknown-pod-not-found", kExec, false, ExecUnknownPod},
      {"exec.unknown-container-not-found", kExec, false, ExecUnknownContainer},
      {"exec.echo-output", kExec, false, ExecEchoOutput},
      {"exec.exit-code", kExec, false, ExecExitCode},
      {"exec.stdin-until-close", kExec, false, ExecStdinClose},
      {"attach.first-frame-not-start-invalid", kAttach, false,
       AttachFirstFrameNotStart},
      {"attach.unknown-pod-not-found", kAttach, false, AttachUnknownPod},
      {"attach.unknown-container-not-found", kAttach, false,
       AttachUnknownContainer},
      {"portforward.first-frame-not-start-invalid", kForward, false,
       ForwardFirstFrameNotStart},
      {"portforward.unknown-pod-not-found", kForward, false, ForwardUnknownPod},
      {"portforward.echo", kForward, false, ForwardEcho},
  };
  return kChecks;
}

}  // namespace vkhost::conformance
