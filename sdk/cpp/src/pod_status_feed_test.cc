#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::sdk {
namespace {

using Event = v1::WatchPodStatusResponse;

v1::PodStatus Status(const std::string& uid, const std::string& reason) {
  v1::PodStatus status;
  status.mutable_pod()->set_uid(uid);
  status.set_reason(reason);
  return status;
}

Event Next(PodStatusFeed::Subscription& sub) {
  auto event = sub.NextUntil(absl::Now() + absl::Seconds(5));
  EXPECT_TRUE(event.has_value());
  return event.value_or(Event());
}

bool Empty(PodStatusFeed::Subscription& sub) {
  return !sub.NextUntil(absl::Now()).has_value();
}

TEST(PodStatusFeedTest, CoalescesPerPodKeepingPodOrder) {
  PodStatusFeed feed;
  auto sub = feed.Subscribe();
  feed.Publish(Status("a", "a1"));
  feed.Publish(Status("b", "b1"));
  feed.Publish(Status("a", "a2"));
  feed.Publish(Status("a", "a3"));

  Event first = Next(*sub);
  EXPECT_EQ(first.type(), Event::TYPE_STATUS);
  EXPECT_EQ(first.status().pod().uid(), "a");
  EXPECT_EQ(first.status().reason(), "a3");  // the latest, not an old one
  Event second = Next(*sub);
  EXPECT_EQ(second.status().reason(), "b1");
  EXPECT_TRUE(Empty(*sub));
}

TEST(PodStatusFeedTest, DeliversEveryChangeToAFastReader) {
  PodStatusFeed feed;
  auto sub = feed.Subscribe();
  for (int i = 0; i < 5; ++i) {
    feed.Publish(Status("a", std::to_string(i)));
    EXPECT_EQ(Next(*sub).status().reason(), std::to_string(i));
  }
}

TEST(PodStatusFeedTest, DeletedKeepsTheUnsentLastStatus) {
  PodStatusFeed feed;
  auto sub = feed.Subscribe();
  feed.Publish(Status("a", "final"));
  v1::PodRef ref;
  ref.set_uid("a");
  feed.PublishDeleted(ref);

  Event event = Next(*sub);
  EXPECT_EQ(event.type(), Event::TYPE_DELETED);
  EXPECT_EQ(event.status().pod().uid(), "a");
  EXPECT_EQ(event.status().reason(), "final");
  EXPECT_TRUE(Empty(*sub));
}

TEST(PodStatusFeedTest, DeletedWithoutPendingStatusCarriesTheRef) {
  PodStatusFeed feed;
  auto sub = feed.Subscribe();
  v1::PodRef ref;
  ref.set_uid("a");
  ref.set_name("web");
  feed.PublishDeleted(ref);
  Event event = Next(*sub);
  EXPECT_EQ(event.type(), Event::TYPE_DELETED);
  EXPECT_EQ(event.status().pod().name(), "web");
}

TEST(PodStatusFeedTest, SubscribersAreIndependentAndSeeOnlyLaterEvents) {
  PodStatusFeed feed;
  auto early = feed.Subscribe();
  feed.Publish(Status("a", "1"));
  auto late = feed.Subscribe();
  feed.Publish(Status("b", "1"));

  EXPECT_EQ(Next(*early).status().pod().uid(), "a");
  EXPECT_EQ(Next(*early).status().pod().uid(), "b");
  EXPECT_EQ(Next(*late).status().pod().uid(), "b");
  EXPECT_TRUE(Empty(*late));
}

TEST(PodStatusFeedTest, SubscriptionMayOutliveTheFeed) {
  auto feed = std::make_unique<PodStatusFeed>();
  auto sub = feed->Subscribe();
  feed->Publish(Status("a", "1"));
  feed.reset();
  EXPECT_EQ(Next(*sub).status().pod().uid(), "a");
  EXPECT_TRUE(Empty(*sub));
}

}  // namespace
}  // namespace vkhost::sdk
