// A minimal plugin for the SDK's own tests: Identity only, served with
// ServeMain so the tests exercise launch and connect mode as a real plugin
// would see them.
#include "vkhost/sdk/provider.h"

namespace {

class TestProvider final : public vkhost::sdk::Provider {
 public:
  vkhost::sdk::v1::GetPluginInfoResponse PluginInfo() override {
    vkhost::sdk::v1::GetPluginInfoResponse info;
    info.set_name("sdk-test");
    info.set_version("0.0.1");
    return info;
  }
  std::vector<vkhost::sdk::v1::Capability> Capabilities() override {
    return {};
  }
};

}  // namespace

int main(int argc, char* argv[]) {
  vkhost::sdk::ParseCommandLine(argc, argv);
  TestProvider provider;
  return vkhost::sdk::ServeMain(provider);
}
