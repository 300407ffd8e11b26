#include "common/flags/command_line.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/parse.h"

namespace vkhost::flags {

std::vector<char*> ParseCommandLine(int argc, char* argv[]) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (std::strcmp(arg, "--") == 0) break;
    if (arg[0] != '-') continue;
    char* name = arg + (arg[1] == '-' ? 2 : 1);
    for (char* c = name; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

std::vector<std::string> RepeatedFlagValues(int argc, char* argv[], const std::string& name) {
  std::vector<std::string> values;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    for (const std::string& prefix : {"--" + name, "-" + name}) {
      if (arg == prefix && i + 1 < argc) {
        values.push_back(argv[++i]);
      } else if (arg.rfind(prefix + "=", 0) == 0) {
        values.push_back(arg.substr(prefix.size() + 1));
      }
    }
  }
  return values;
}

}  // namespace vkhost::flags
