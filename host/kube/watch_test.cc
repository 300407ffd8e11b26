#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "host/kube/client.h"
#include "host/kube/internal/watch_decoder.h"

namespace vkhost::kube {
namespace {

using internal::ParseWatchEvent;
using internal::WatchDecoder;

std::string EventLine(const std::string& type, const std::string& name,
                      const std::string& rv) {
  return nlohmann::json{{"type", type},
                        {"object",
                         {{"kind", "ConfigMap"},
                          {"metadata", {{"name", name}, {"resourceVersion", rv}}}}}}
             .dump() +
         "\n";
}

TEST(ParseWatchEventTest, ReadsEveryEventType) {
  struct Case {
    std::string type;
    WatchEventType want;
  };
  for (const Case& c : {Case{"ADDED", WatchEventType::kAdded},
                        Case{"MODIFIED", WatchEventType::kModified},
                        Case{"DELETED", WatchEventType::kDeleted},
                        Case{"BOOKMARK", WatchEventType::kBookmark},
                        Case{"ERROR", WatchEventType::kError}}) {
    std::string line = EventLine(c.type, "a", "7");
    absl::StatusOr<WatchEvent> event = ParseWatchEvent(line);
    ASSERT_TRUE(event.ok()) << event.status();
    EXPECT_EQ(event->type, c.want);
    EXPECT_EQ(event->object["metadata"]["resourceVersion"], "7");
  }
}

TEST(ParseWatchEventTest, RejectsMalformedLines) {
  for (const char* line : {"", "not json", "[]", R"({"type":"ADDED"})",
                           R"({"type":"ADDED","object":"x"})",
                           R"({"type":3,"object":{}})",
                           R"({"type":"RENAMED","object":{}})"}) {
    EXPECT_EQ(ParseWatchEvent(line).status().code(), absl::StatusCode::kInvalidArgument)
        << line;
  }
}

TEST(WatchDecoderTest, ReassemblesEventsCutAtEveryPosition) {
  const std::string stream = EventLine("ADDED", "a", "1") + EventLine("MODIFIED", "a", "2") +
                             "\n" + EventLine("BOOKMARK", "", "3");
  for (size_t cut1 = 0; cut1 <= stream.size(); ++cut1) {
    const size_t cut2 = cut1 + (stream.size() - cut1) / 2;
    WatchDecoder decoder;
    std::vector<std::string> versions;
    auto collect = [&](WatchEvent&& e) {
      versions.push_back(e.object["metadata"]["resourceVersion"]);
      return true;
    };
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(0, cut1), collect).ok());
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(cut1, cut2 - cut1), collect).ok());
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(cut2), collect).ok());
    EXPECT_EQ(versions, (std::vector<std::string>{"1", "2", "3"})) << "cut at " << cut1;
    EXPECT_EQ(decoder.pending_bytes(), 0u);
  }
}

TEST(WatchDecoderTest, HoldsBackAnUnfinishedLine) {
  WatchDecoder decoder;
  int events = 0;
  auto count = [&](WatchEvent&&) { return ++events, true; };
  const std::string line = EventLine("ADDED", "a", "1");
  ASSERT_TRUE(decoder.Feed(line.substr(0, 10), count).ok());
  EXPECT_EQ(events, 0);
  EXPECT_EQ(decoder.pending_bytes(), 10u);
  ASSERT_TRUE(decoder.Feed(line.substr(10), count).ok());
  EXPECT_EQ(events, 1);
}

TEST(WatchDecoderTest, StopsWhenTheHandlerSaysSo) {
  WatchDecoder decoder;
  int events = 0;
  absl::Status s = decoder.Feed(EventLine("ADDED", "a", "1") + EventLine("ADDED", "b", "2"),
                                [&](WatchEvent&&) { return ++events, false; });
  EXPECT_TRUE(absl::IsCancelled(s));
  EXPECT_EQ(events, 1);
}

TEST(WatchDecoderTest, ReportsGarbageAndOverlongLines) {
  WatchDecoder decoder;
  auto ignore = [](WatchEvent&&) { return true; };
  EXPECT_EQ(decoder.Feed("{broken\n", ignore).code(), absl::StatusCode::kInvalidArgument);

  WatchDecoder small(/*max_line_bytes=*/64);
  EXPECT_EQ(small.Feed(std::string(65, 'x'), ignore).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WatchCancelTest, CancelBeforeRegisterRefusesTheWatch) {
  WatchCancel cancel;
  cancel.Cancel();
  EXPECT_TRUE(cancel.cancelled());
  EXPECT_FALSE(cancel.Register([] {}));
}

TEST(WatchCancelTest, CancelInterruptsUntilTheWatchReturns) {
  WatchCancel cancel;
  std::atomic<int> interrupts{0};
  absl::Notification registered;
  std::thread watch([&] {
    ASSERT_TRUE(cancel.Register([&] { interrupts++; }));
    registered.Notify();
    // The "watch" only notices the second interrupt, like a request whose
    // first shutdown raced its connection being set up.
    while (interrupts.load() < 2) std::this_thread::yield();
    cancel.Unregister();
  });
  registered.WaitForNotification();
  cancel.Cancel();  // returns only once the watch unregistered
  EXPECT_GE(interrupts.load(), 2);
  watch.join();
}

TEST(WatchCancelTest, CancelFromTheWatchThreadDoesNotWait) {
  WatchCancel cancel;
  ASSERT_TRUE(cancel.Register([] {}));
  cancel.Cancel();  // would deadlock if it waited for Unregister
  EXPECT_TRUE(cancel.cancelled());
  cancel.Unregister();
}

}  // namespace
}  // namespace vkhost::kube
