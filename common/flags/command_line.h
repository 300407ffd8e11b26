// common/flags: command-line parsing shared by vkhost, the plugins and the
// tools.
//
// Abseil names flags with underscores (--node_name) while operators type
// dashes (--node-name), as with every Kubernetes binary. Every vkhost program
// parses through this one function so both spellings work everywhere.
#ifndef VKHOST_COMMON_FLAGS_COMMAND_LINE_H_
#define VKHOST_COMMON_FLAGS_COMMAND_LINE_H_

#include <string>
#include <vector>

namespace vkhost::flags {

// Rewrites dashes to underscores in the names (not the values) of the flags
// in `argv`, up to a "--" argument, then runs absl::ParseCommandLine, which
// exits with a message on an unknown or malformed flag. Returns the
// positional arguments, argv[0] first.
std::vector<char*> ParseCommandLine(int argc, char* argv[]);

// Every value given for the flag `name` (underscore spelling), in order, as
// `--name=v`, `--name v` or with one dash, up to a "--" argument. Abseil
// keeps only a flag's last value; this serves flags that may repeat. Call it
// after ParseCommandLine, whose rewriting of dashes it relies on.
std::vector<std::string> RepeatedFlagValues(int argc, char* argv[], const std::string& name);

}  // namespace vkhost::flags

#endif  // VKHOST_COMMON_FLAGS_COMMAND_LINE_H_
