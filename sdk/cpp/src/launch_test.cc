#include "launch.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace vkhost::sdk::internal {
namespace {

std::string MakeTempDir() {
  std::string path = ::testing::TempDir() + "/launch-test-XXXXXX";
  EXPECT_NE(mkdtemp(path.data()), nullptr);
  return path;
}

TEST(CheckMagicCookieTest, AcceptsOnlyTheExactCookie) {
  EXPECT_TRUE(CheckMagicCookie("vkhost-provider-plugin-7c1e4a0f9d2b").ok());
  for (const char* bad : {"", "vkhost-provider-plugin", "x"}) {
    absl::Status status = CheckMagicCookie(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << bad;
    EXPECT_NE(status.message().find("vkhost provider plugin"),
              absl::string_view::npos);
    EXPECT_NE(status.message().find("--listen"), absl::string_view::npos);
  }
  EXPECT_FALSE(CheckMagicCookie(nullptr).ok());
}

TEST(ChooseProtocolTest, PicksTheHighestSharedVersion) {
  EXPECT_EQ(ChooseProtocol("1", {1}).value(), 1);
  EXPECT_EQ(ChooseProtocol("1,2,3", {1, 2}).value(), 2);
  EXPECT_EQ(ChooseProtocol(" 3 , 1 ", {1, 3, 4}).value(), 3);
}

TEST(ChooseProtocolTest, NoSharedVersionNamesBothLists) {
  auto result = ChooseProtocol("2,3", {1});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("\"2,3\""), absl::string_view::npos);
  EXPECT_NE(result.status().message().find("\"1\""), absl::string_view::npos);
}

TEST(ChooseProtocolTest, MissingOrMalformedListFails) {
  EXPECT_FALSE(ChooseProtocol(nullptr, {1}).ok());
  EXPECT_FALSE(ChooseProtocol("", {1}).ok());
  EXPECT_FALSE(ChooseProtocol("one", {1}).ok());
}

TEST(HandshakeLineTest, HasTheSpecShape) {
  EXPECT_EQ(HandshakeLine(1, "/tmp/d/plugin.sock"),
            "VKHOST|1|1|unix|/tmp/d/plugin.sock|grpc\n");
}

TEST(MakePrivateSocketDirTest, CreatesA0700DirectoryUnderTheFirstSetVariable) {
  std::string parent = MakeTempDir();
  auto dir = MakePrivateSocketDir(parent.c_str(), "/nonexistent");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(dir->rfind(parent + "/", 0), 0u);
  struct stat info;
  ASSERT_EQ(stat(dir->c_str(), &info), 0);
  EXPECT_TRUE(S_ISDIR(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0700u);

  auto from_tmpdir = MakePrivateSocketDir("", parent.c_str());
  ASSERT_TRUE(from_tmpdir.ok());
  EXPECT_EQ(from_tmpdir->rfind(parent + "/", 0), 0u);
  EXPECT_NE(*from_tmpdir, *dir);
  rmdir(dir->c_str());
  rmdir(from_tmpdir->c_str());
  rmdir(parent.c_str());
}

TEST(MakePrivateSocketDirTest, MissingParentIsAnError) {
  EXPECT_FALSE(MakePrivateSocketDir("/nonexistent/vkhost", nullptr).ok());
}

TEST(ParseListenAddressTest, Unix) {
  auto address = ParseListenAddress("unix:///run/vkhost/plugin.sock");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(address->path, "/run/vkhost/plugin.sock");
  EXPECT_EQ(address->GrpcAddress(), "unix:/run/vkhost/plugin.sock");
}

TEST(ParseListenAddressTest, Tcp) {
  auto address = ParseListenAddress("tcp://0.0.0.0:7443");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(address->GrpcAddress(), "0.0.0.0:7443");
  EXPECT_EQ(ParseListenAddress("tcp://[::1]:1")->GrpcAddress(), "[::1]:1");
  EXPECT_EQ(ParseListenAddress("tcp://:80")->GrpcAddress(), "0.0.0.0:80");
}

TEST(ParseListenAddressTest, RejectsBadAddresses) {
  for (const char* bad :
       {"", "/tmp/x.sock", "unix://relative.sock", "tcp://host",
        "tcp://host:http", "tcp://host:70000", "tcp://::1:80",
        "http://x:1"}) {
    auto address = ParseListenAddress(bad);
    EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(RemoveStaleSocketTest, RemovesSocketsAndRefusesOtherFiles) {
  std::string dir = MakeTempDir();
  EXPECT_TRUE(RemoveStaleSocket(dir + "/absent.sock").ok());

  std::string sock_path = dir + "/stale.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  sock_path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  EXPECT_TRUE(RemoveStaleSocket(sock_path).ok());
  EXPECT_NE(access(sock_path.c_str(), F_OK), 0);

  std::string file_path = dir + "/file";
  std::ofstream(file_path) << "data";
  EXPECT_EQ(RemoveStaleSocket(file_path).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(access(file_path.c_str(), F_OK), 0);
  unlink(file_path.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace vkhost::sdk::internal
