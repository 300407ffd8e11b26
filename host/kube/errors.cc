// HTTP responses → absl::Status, and the predicates callers branch on.
#include <array>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "host/kube/client.h"
#include "host/kube/internal/string_view.h"
#include "host/kube/internal/json_fields.h"

namespace vkhost::kube {
namespace {

constexpr char kHttpCodePayload[] = "type.vkhost.dev/kube.HttpCode";
constexpr char kReasonPayload[] = "type.vkhost.dev/kube.Reason";

struct CodeMapping {
  int http_code;
  absl::StatusCode code;
};
// 409 is decided by the reason (see StatusFromResponse); 429 and 5xx are
// UNAVAILABLE by range.
constexpr std::array<CodeMapping, 10> kCodeTable{{
    {400, absl::StatusCode::kInvalidArgument},
    {401, absl::StatusCode::kUnauthenticated},
    {403, absl::StatusCode::kPermissionDenied},
    {404, absl::StatusCode::kNotFound},
    {405, absl::StatusCode::kUnimplemented},
    {406, absl::StatusCode::kInvalidArgument},
    {410, absl::StatusCode::kOutOfRange},
    {413, absl::StatusCode::kInvalidArgument},
    {415, absl::StatusCode::kInvalidArgument},
    {422, absl::StatusCode::kInvalidArgument},
}};

absl::StatusCode CodeFor(int http_code, std::string_view reason) {
  if (http_code == 409) {
    return reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                     : absl::StatusCode::kAborted;
  }
  if (http_code == 429 || http_code >= 500) return absl::StatusCode::kUnavailable;
  for (const CodeMapping& m : kCodeTable) {
    if (m.http_code == http_code) return m.code;
  }
  return absl::StatusCode::kUnknown;
}

std::string Quote(std::string_view body) {
  constexpr size_t kMax = 300;
  if (body.empty()) return "(empty body)";
  if (body.size() <= kMax) return std::string(body);
  return absl::StrCat(internal::Sv(body.substr(0, kMax)), "...");
}

}  // namespace

absl::Status StatusFromResponse(std::string_view verb, std::string_view path,
                                int http_code, std::string_view body) {
  std::string reason;
  std::string message;
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  if (internal::StringField(parsed, "kind") == "Status") {
    reason = internal::StringField(parsed, "reason");
    message = internal::StringField(parsed, "message");
  }
  if (message.empty()) message = Quote(body);
  absl::Status status(
      CodeFor(http_code, reason),
      absl::StrCat(internal::Sv(verb), " ", internal::Sv(path), ": ", message, " (HTTP ", http_code,
                   reason.empty() ? "" : " ", reason, ")"));
  status.SetPayload(kHttpCodePayload, absl::Cord(absl::StrCat(http_code)));
  if (!reason.empty()) status.SetPayload(kReasonPayload, absl::Cord(reason));
  return status;
}

int HttpCode(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kHttpCodePayload);
  int code = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &code)) return 0;
  return code;
}

std::string KubeReason(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kReasonPayload);
  return payload ? std::string(*payload) : std::string();
}

bool IsConflict(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted && HttpCode(status) == 409;
}

bool IsGone(const absl::Status& status) {
  const std::string reason = KubeReason(status);
  return HttpCode(status) == 410 || reason == "Expired" || reason == "Gone";
}

bool IsTransient(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable;
}

}  // namespace vkhost::kube
