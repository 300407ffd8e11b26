#include "plugins/process/image_map.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::process {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ImageMapTest, DefaultsMapCommonImagesToTheHostRoot) {
  ImageMap map = ImageMap::Defaults();
  for (const char* image : {"busybox", "python:3.12", "docker.io/library/python:3.12-slim",
                            "alpine@sha256:abcd", "host", "ubuntu:22.04"}) {
    auto target = map.Resolve(image);
    ASSERT_TRUE(target.ok()) << image << ": " << target.status();
    EXPECT_EQ(target->root, "/");
    EXPECT_TRUE(target->entrypoint.empty());
  }
}

TEST(ImageMapTest, UnknownImageNamesTheImageAndTheFlag) {
  auto target = ImageMap::Defaults().Resolve("registry.example:5000/team/app:1");
  ASSERT_FALSE(target.ok());
  EXPECT_EQ(target.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(target.status().message(), HasSubstr("registry.example:5000/team/app:1"));
  EXPECT_THAT(target.status().message(), HasSubstr("--image"));
}

TEST(ImageMapTest, OperatorEntriesWithRootAndEntrypoint) {
  ImageMap map = ImageMap::Defaults();
  ASSERT_TRUE(map.Add("myapp:2=/srv/roots/myapp:/bin/server --port 80").ok());
  ASSERT_TRUE(map.Add("python=/opt/py").ok());
  auto app = map.Resolve("myapp:2");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->root, "/srv/roots/myapp");
  EXPECT_THAT(app->entrypoint, ElementsAre("/bin/server", "--port", "80"));
  EXPECT_FALSE(map.Resolve("myapp:3").ok());  // the tagged entry matches its tag only
  EXPECT_EQ(map.Resolve("python:3.11")->root, "/opt/py");
}

TEST(ImageMapTest, RejectsMalformedEntries) {
  ImageMap map;
  EXPECT_FALSE(map.Add("noequals").ok());
  EXPECT_FALSE(map.Add("=/x").ok());
  EXPECT_FALSE(map.Add("name=relative/root").ok());
}

}  // namespace
}  // namespace vkhost::process
