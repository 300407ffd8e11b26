#include "host/kube/internal/token_source.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "host/kube/internal/read_file.h"

namespace vkhost::kube::internal {

absl::Status ReadTokenFile(const std::string& path, std::string* token) {
  absl::StatusOr<std::string> content = ReadSmallFile(path);
  if (!content.ok()) return content.status();
  std::string trimmed(absl::StripAsciiWhitespace(*content));
  if (trimmed.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bearer token file ", path, " is empty"));
  }
  *token = std::move(trimmed);
  return absl::OkStatus();
}

TokenSource::TokenSource(std::string static_token, std::string token_file,
                         absl::Duration refresh, Clock now)
    : token_file_(std::move(token_file)),
      refresh_(refresh),
      now_(std::move(now)),
      token_(std::move(static_token)) {}

absl::Status TokenSource::Init() {
  if (token_file_.empty()) return absl::OkStatus();
  std::string token;
  absl::Status status = ReadTokenFile(token_file_, &token);
  if (!status.ok()) return status;
  absl::MutexLock lock(&mu_);
  token_ = std::move(token);
  read_at_ = now_();
  return absl::OkStatus();
}

std::string TokenSource::Token() {
  absl::MutexLock lock(&mu_);
  if (token_file_.empty()) return token_;
  const absl::Time now = now_();
  if (now - read_at_ < refresh_) return token_;
  read_at_ = now;  // a failing file is retried after `refresh_`, not per call
  std::string token;
  absl::Status status = ReadTokenFile(token_file_, &token);
  if (status.ok()) {
    token_ = std::move(token);
  } else {
    VKLOG(WARNING) << "keeping the previous bearer token: " << status.message();
  }
  return token_;
}

}  // namespace vkhost::kube::internal
