#include "host/kube/internal/watch_decoder.h"
#include "host/kube/internal/string_view.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vkhost::kube::internal {
namespace {

struct EventTypeName {
  std::string_view name;
  WatchEventType type;
};
constexpr std::array<EventTypeName, 5> kEventTypes{{
    {"ADDED", WatchEventType::kAdded},
    {"MODIFIED", WatchEventType::kModified},
    {"DELETED", WatchEventType::kDeleted},
    {"BOOKMARK", WatchEventType::kBookmark},
    {"ERROR", WatchEventType::kError},
}};

std::string Excerpt(std::string_view line) {
  constexpr size_t kMax = 200;
  if (line.size() <= kMax) return std::string(line);
  return absl::StrCat(Sv(line.substr(0, kMax)), "...");
}

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

absl::StatusOr<WatchEvent> ParseWatchEvent(std::string_view line) {
  nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("watch stream line is not a JSON object: ", Excerpt(line)));
  }
  auto type = parsed.find("type");
  auto object = parsed.find("object");
  if (type == parsed.end() || !type->is_string() || object == parsed.end() ||
      !object->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "watch event lacks a string \"type\" or an object \"object\": ", Excerpt(line)));
  }
  const std::string& name = type->get_ref<const std::string&>();
  for (const EventTypeName& known : kEventTypes) {
    if (known.name == name) {
      return WatchEvent{known.type, std::move(*object)};
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown watch event type \"", name, "\""));
}

absl::Status WatchDecoder::Feed(std::string_view chunk,
                                const WatchEventHandler& on_event) {
  // Bytes held back before this chunk contain no newline: search only the new.
  size_t search_from = pending_.size();
  pending_.append(chunk);
  size_t start = 0;
  for (size_t newline;
       (newline = pending_.find('\n', search_from)) != std::string::npos;
       start = search_from = newline + 1) {
    std::string_view line(pending_.data() + start, newline - start);
    if (IsBlank(line)) continue;
    absl::StatusOr<WatchEvent> event = ParseWatchEvent(line);
    if (!event.ok()) {
      pending_.clear();
      return event.status();
    }
    if (!on_event(*std::move(event))) {
      pending_.clear();
      return absl::CancelledError("watch handler asked to stop");
    }
  }
  pending_.erase(0, start);
  if (pending_.size() > max_line_bytes_) {
    pending_.clear();
    return absl::InvalidArgumentError(absl::StrCat(
        "watch event longer than ", max_line_bytes_, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace vkhost::kube::internal
