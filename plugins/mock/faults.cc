// FaultInjector; see faults.h.
#include "plugins/mock/faults.h"

#include <cstdlib>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log/log.h"

namespace vkhost::mock {
namespace {

const std::set<std::string, std::less<>>& KnownRpcs() {
  static const std::set<std::string, std::less<>> rpcs = {
      "Probe",        "GetNode",       "WatchNode",   "CreatePod",
      "UpdatePod",    "DeletePod",     "GetPodStatus", "ListPods",
      "ContainerLogs", "Exec",         "Attach",      "PortForward",
      "GetStatsSummary"};
  return rpcs;
}

absl::Status CheckRpc(absl::string_view rpc, absl::string_view flag) {
  if (KnownRpcs().contains(rpc)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      flag, ": unknown RPC \"", rpc, "\"; use one of Probe, GetNode, "
      "WatchNode, CreatePod, UpdatePod, DeletePod, GetPodStatus, ListPods, "
      "ContainerLogs, Exec, Attach, PortForward, GetStatsSummary"));
}

// Canonical code names as gRPC spells them, and their numbers.
bool ParseCode(absl::string_view text, absl::StatusCode* code) {
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) {
    if (number < 1 || number > 16) return false;
    *code = static_cast<absl::StatusCode>(number);
    return true;
  }
  std::string upper = absl::AsciiStrToUpper(text);
  for (int n = 1; n <= 16; ++n) {
    auto candidate = static_cast<absl::StatusCode>(n);
    std::string name = absl::AsciiStrToUpper(absl::StatusCodeToString(candidate));
    if (name == upper) {
      *code = candidate;
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<FaultRule> ParseFaultRule(absl::string_view spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--fail=", spec, ": ", why, "; want RPC:CODE[:PROBABILITY], e.g. "
        "CreatePod:UNAVAILABLE:0.5"));
  };
  if (parts.size() < 2 || parts.size() > 3) return invalid("wrong shape");
  FaultRule rule;
  rule.rpc = parts[0];
  absl::Status rpc_ok = CheckRpc(rule.rpc, "--fail");
  if (!rpc_ok.ok()) return rpc_ok;
  if (!ParseCode(parts[1], &rule.code)) {
    return invalid(absl::StrCat("unknown or OK status code \"", parts[1], "\""));
  }
  if (parts.size() == 3 &&
      (!absl::SimpleAtod(parts[2], &rule.probability) ||
       rule.probability <= 0 || rule.probability > 1)) {
    return invalid("the probability must be in (0, 1]");
  }
  return rule;
}

absl::StatusOr<std::unique_ptr<FaultInjector>> FaultInjector::Create(
    const FaultConfig& config) {
  std::vector<FaultRule> rules;
  for (const std::string& spec : config.fail) {
    if (spec.empty()) continue;
    auto rule = ParseFaultRule(spec);
    if (!rule.ok()) return rule.status();
    rules.push_back(*rule);
  }
  if (!config.crash_on.empty()) {
    absl::Status ok = CheckRpc(config.crash_on, "--crash-on");
    if (!ok.ok()) return ok;
  }
  return std::unique_ptr<FaultInjector>(
      new FaultInjector(config, std::move(rules)));
}

FaultInjector::FaultInjector(FaultConfig config, std::vector<FaultRule> rules)
    : config_(std::move(config)), rules_(std::move(rules)) {
  if (config_.crash_after > absl::ZeroDuration()) {
    crash_timer_ = std::make_unique<TimerScheduler>();
    absl::Duration after = config_.crash_after;
    crash_timer_->After(after, [after] {
      VKLOG(ERROR) << "--crash-after=" << absl::FormatDuration(after)
                   << " reached: aborting on purpose";
      std::abort();
    });
  }
}

absl::Status FaultInjector::Before(absl::string_view rpc, bool unary) {
  if (rpc == config_.crash_on) {
    VKLOG(ERROR) << "--crash-on=" << rpc << ": aborting on purpose";
    std::abort();
  }
  if (unary && config_.latency > absl::ZeroDuration()) {
    absl::SleepFor(config_.latency);
  }
  for (const FaultRule& rule : rules_) {
    if (rule.rpc != rpc) continue;
    bool fire = rule.probability >= 1.0;
    if (!fire) {
      absl::MutexLock lock(&mu_);
      fire = absl::Bernoulli(random_, rule.probability);
    }
    if (fire) {
      return absl::Status(rule.code,
                          absl::StrCat("injected failure of ", rpc,
                                       " (--fail)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace vkhost::mock
