// common/flags: command-line parsing shared by vkhost, the plugins and the
// tools.
//
// Abseil names flags with underscores (--node_name) while operators type
// dashes (--node-name), as with every Kubernetes binary. Every vkhost program
// parses through this one function so both spellings work everywhere.
#ifndef VKHOST_COMMON_FLAGS_COMMAND_LINE_H_
#define VKHOST_COMMON_FLAGS_COMMAND_LINE_H_

#include <vector>

namespace vkhost::flags {

// Rewrites dashes to underscores in the names (not the values) of the flags
// in `argv`, up to a "--" argument, then runs absl::ParseCommandLine, which
// exits with a message on an unknown or malformed flag. Returns the
// positional arguments, argv[0] first.
std::vector<char*> ParseCommandLine(int argc, char* argv[]);

}  // namespace vkhost::flags

#endif  // VKHOST_COMMON_FLAGS_COMMAND_LINE_H_
