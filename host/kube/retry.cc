// Conflict and transient-error retries, and walking list pages.
#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "host/kube/client.h"
#include "host/kube/internal/json_fields.h"

namespace vkhost::kube {
namespace {

// Runs `attempt` until `retriable` rejects its status or the steps run out.
absl::Status RetryWhile(const std::function<absl::Status()>& attempt,
                        const std::function<bool(const absl::Status&)>& retriable,
                        const Backoff& backoff) {
  absl::BitGen random;
  absl::Duration wait = backoff.initial;
  absl::Status status;
  for (int step = 0; step < std::max(1, backoff.steps); ++step) {
    if (step > 0) {
      const double grow = backoff.jitter > 0
                              ? absl::Uniform(random, 0.0, backoff.jitter)
                              : 0.0;
      absl::SleepFor(std::min(backoff.cap, wait * (1.0 + grow)));
      wait = std::min(backoff.cap, wait * backoff.factor);
    }
    status = attempt();
    if (!retriable(status)) return status;
  }
  return status;
}

}  // namespace

absl::Status RetryOnConflict(const std::function<absl::Status()>& attempt,
                             const Backoff& backoff) {
  return RetryWhile(attempt, IsConflict, backoff);
}

absl::StatusOr<nlohmann::json> UpdateWithRetry(
    KubeClient& client, const Target& target,
    const std::function<absl::Status(nlohmann::json& object)>& mutate,
    const WriteOptions& options, const Backoff& backoff) {
  nlohmann::json stored;
  absl::Status status = RetryOnConflict(
      [&]() -> absl::Status {
        absl::StatusOr<nlohmann::json> current = client.Get(target);
        if (!current.ok()) return current.status();
        if (absl::Status s = mutate(*current); !s.ok()) return s;
        absl::StatusOr<nlohmann::json> updated =
            client.Update(target, *current, options);
        if (!updated.ok()) return updated.status();
        stored = *std::move(updated);
        return absl::OkStatus();
      },
      backoff);
  if (!status.ok()) return status;
  return stored;
}

absl::StatusOr<nlohmann::json> PatchWithRetry(KubeClient& client,
                                              const Target& target,
                                              PatchType type,
                                              const nlohmann::json& patch,
                                              const WriteOptions& options,
                                              const Backoff& backoff) {
  nlohmann::json stored;
  absl::Status status = RetryWhile(
      [&]() -> absl::Status {
        absl::StatusOr<nlohmann::json> patched =
            client.Patch(target, type, patch, options);
        if (!patched.ok()) return patched.status();
        stored = *std::move(patched);
        return absl::OkStatus();
      },
      [](const absl::Status& s) { return IsConflict(s) || IsTransient(s); },
      backoff);
  if (!status.ok()) return status;
  return stored;
}

absl::Status ListAllPages(
    KubeClient& client, const Target& target, ListOptions options,
    const std::function<absl::Status(nlohmann::json&& page)>& on_page) {
  while (true) {
    absl::StatusOr<nlohmann::json> page = client.List(target, options);
    if (!page.ok()) return page.status();
    std::string next;
    if (const nlohmann::json* meta = internal::ObjectField(*page, "metadata")) {
      next = internal::StringField(*meta, "continue");
    }
    if (absl::Status s = on_page(*std::move(page)); !s.ok()) return s;
    if (next.empty()) return absl::OkStatus();
    options.continue_token = std::move(next);
    // Later pages are served from the first page's snapshot.
    options.resource_version.clear();
  }
}

}  // namespace vkhost::kube
