// The program around the check tables: flags, connecting, running the
// selected checks in table order, the report and the final cleanup.
#include <iostream>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/log/log.h"
#include "tests/conformance/conformance.h"

namespace vkhost::conformance {
namespace {

// --- Flags: a table of setters, so usage text and parsing cannot drift. ---

absl::Status SetCommand(const std::string& text, std::vector<std::string>* argv) {
  absl::StatusOr<std::vector<std::string>> words = plugin::SplitCommandLine(text);
  if (!words.ok()) return words.status();
  *argv = *std::move(words);
  return absl::OkStatus();
}

absl::Status SetInt(const std::string& text, int* value) {
  if (!absl::SimpleAtoi(text, value)) {
    return absl::InvalidArgumentError("\"" + text + "\" is not an integer");
  }
  return absl::OkStatus();
}

absl::Status SetDuration(const std::string& text, absl::Duration* value) {
  int seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) {
    *value = absl::Seconds(seconds);
    return absl::OkStatus();
  }
  if (!absl::ParseDuration(text, value) || *value <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "\"" + text + "\" is not a positive duration such as 60s or 2m");
  }
  return absl::OkStatus();
}

struct Flag {
  const char* name;
  const char* value_name;  // nullptr for a switch
  const char* help;
  absl::Status (*set)(Options& options, const std::string& value);
};

const Flag kFlags[] = {
    {"plugin", "CMD", "launch mode: the plugin's command line, e.g. \"./plugin --x\"",
     [](Options& o, const std::string& v) {
       o.plugin_command = v;
       return absl::OkStatus();
     }},
    {"endpoint", "ADDR", "connect mode: unix:///path or tcp://host:port",
     [](Options& o, const std::string& v) {
       o.endpoint = v;
       return absl::OkStatus();
     }},
    {"tls-ca-file", "FILE", "connect mode over TCP: CA of the plugin's certificate",
     [](Options& o, const std::string& v) {
       o.tls_ca_file = v;
       return absl::OkStatus();
     }},
    {"tls-cert-file", "FILE", "connect mode over TCP: client certificate",
     [](Options& o, const std::string& v) {
       o.tls_cert_file = v;
       return absl::OkStatus();
     }},
    {"tls-key-file", "FILE", "connect mode over TCP: client key",
     [](Options& o, const std::string& v) {
       o.tls_key_file = v;
       return absl::OkStatus();
     }},
    {"image", "IMAGE", "image of the test containers (default vkhost.io/conformance:1)",
     [](Options& o, const std::string& v) {
       o.image = v;
       return absl::OkStatus();
     }},
    {"container-command", "CMD",
     "main process of the test containers, must keep running (default \"sleep 3600\")",
     [](Options& o, const std::string& v) {
       return SetCommand(v, &o.container_command);
     }},
    {"exec-echo-command", "CMD",
     "exec'd command printing --exec-echo-output (default \"echo vkhost-conformance\")",
     [](Options& o, const std::string& v) {
       return SetCommand(v, &o.exec_echo_command);
     }},
    {"exec-echo-output", "TEXT", "expected stdout of the echo command",
     [](Options& o, const std::string& v) {
       o.exec_echo_output = v;
       return absl::OkStatus();
     }},
    {"exit-code-command", "CMD",
     "exec'd command exiting with --exit-code (default \"sh -c 'exit 3'\")",
     [](Options& o, const std::string& v) {
       return SetCommand(v, &o.exit_code_command);
     }},
    {"exit-code", "N", "expected exit code of the exit-code command (default 3)",
     [](Options& o, const std::string& v) { return SetInt(v, &o.exit_code); }},
    {"stdin-command", "CMD", "exec'd command copying stdin to stdout (default \"cat\")",
     [](Options& o, const std::string& v) {
       return SetCommand(v, &o.stdin_command);
     }},
    {"port-forward-port", "PORT",
     "pod port that echoes TCP data; 0 skips the data check (default 0)",
     [](Options& o, const std::string& v) {
       return SetInt(v, &o.port_forward_port);
     }},
    {"timeout", "DURATION",
     "how long pods get to run or be forgotten, streams to deliver (default 60s)",
     [](Options& o, const std::string& v) { return SetDuration(v, &o.timeout); }},
    {"run", "REGEX", "run only the checks whose name matches",
     [](Options& o, const std::string& v) {
       o.run_regex = v;
       return absl::OkStatus();
     }},
    {"list", nullptr, "list the checks and exit",
     [](Options& o, const std::string&) {
       o.list = true;
       return absl::OkStatus();
     }},
    {"log-level", "LEVEL", "debug, info, warning or error (default warning)",
     [](Options& o, const std::string& v) {
       o.log_level = v;
       return absl::OkStatus();
     }},
};

void PrintUsage(std::ostream& out) {
  out << "usage: vkhost-conformance (--plugin CMD | --endpoint ADDR) [flags]\n"
         "Checks a vkhost provider plugin against spec.md; prints PASS, FAIL "
         "or SKIP per check.\n"
         "Exit status: 0 all passed, 1 a check failed, 2 usage error.\n\n";
  for (const Flag& flag : kFlags) {
    std::string left = absl::StrCat("  --", flag.name);
    if (flag.value_name != nullptr) absl::StrAppend(&left, "=", flag.value_name);
    out << left << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ')
        << flag.help << "\n";
  }
}

const Flag* FindFlag(const std::string& name) {
  for (const Flag& flag : kFlags) {
    if (name == flag.name) return &flag;
  }
  return nullptr;
}

// Accepts --name=value, --name value and -name forms.
absl::Status ParseFlags(int argc, char** argv, Options& options, bool* help) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return absl::OkStatus();
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return absl::InvalidArgumentError("unexpected argument \"" + arg + "\"");
    }
    arg = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    const Flag* flag = FindFlag(arg);
    if (flag == nullptr) {
      return absl::InvalidArgumentError("unknown flag --" + arg);
    }
    if (flag->value_name != nullptr && !value.has_value()) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError("--" + arg + " needs a value");
      }
      value = argv[++i];
    }
    if (absl::Status status = flag->set(options, value.value_or(""));
        !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", arg, ": ", status.message()));
    }
  }
  if (!options.list &&
      options.plugin_command.empty() == options.endpoint.empty()) {
    return absl::InvalidArgumentError("give exactly one of --plugin and --endpoint");
  }
  return absl::OkStatus();
}

// --- Running ---

std::vector<Check> AllChecks() {
  std::vector<Check> all;
  for (const auto* table : {&IdentityChecks(), &PodChecks(), &StreamChecks(),
                            &HandshakeChecks()}) {
    all.insert(all.end(), table->begin(), table->end());
  }
  return all;
}

// Report lines are one line each, whatever the plugin put in its messages.
std::string OneLine(const std::string& text) {
  return absl::StrReplaceAll(text, {{"\r\n", " | "}, {"\n", " | "}});
}

struct Tally {
  int passed = 0;
  int failed = 0;
  int skipped = 0;

  void Report(const std::string& name, const Outcome& outcome) {
    switch (outcome.kind) {
      case Outcome::Kind::kPass:
        ++passed;
        std::cout << "PASS " << name << std::endl;
        break;
      case Outcome::Kind::kFail:
        ++failed;
        std::cout << "FAIL " << name << ": " << OneLine(outcome.reason)
                  << std::endl;
        break;
      case Outcome::Kind::kSkip:
        ++skipped;
        std::cout << "SKIP " << name << ": " << OneLine(outcome.reason)
                  << std::endl;
        break;
    }
  }

  int Finish() const {
    std::cout << passed << " passed, " << failed << " failed, " << skipped
              << " skipped" << std::endl;
    return failed > 0 ? 1 : 0;
  }
};

// Why `check` cannot run against this plugin, or "" when it can.
std::string SkipReason(const Check& check, const Context& context) {
  if (check.launch_only && !context.launch_mode()) {
    return "needs launch mode (--plugin): the suite starts the plugin itself";
  }
  if (check.capability != v1::CAPABILITY_UNSPECIFIED &&
      !context.Has(check.capability)) {
    return "the plugin does not list " + v1::Capability_Name(check.capability);
  }
  return "";
}

absl::StatusOr<std::unique_ptr<plugin::PluginConnection>> Connect(
    const Options& options) {
  plugin::PluginSource source;
  if (!options.plugin_command.empty()) {
    absl::StatusOr<std::vector<std::string>> argv =
        plugin::SplitCommandLine(options.plugin_command);
    if (!argv.ok()) return argv.status();
    source.command = *std::move(argv);
  } else {
    source.endpoint = options.endpoint;
    source.tls_ca_file = options.tls_ca_file;
    source.tls_cert_file = options.tls_cert_file;
    source.tls_key_file = options.tls_key_file;
  }
  return plugin::PluginConnection::Open(source);
}

}  // namespace

int RunConformance(int argc, char** argv) {
  Options options;
  bool help = false;
  absl::Status parsed = ParseFlags(argc, argv, options, &help);
  if (help) {
    PrintUsage(std::cout);
    return 0;
  }
  log::Level level;
  if (parsed.ok()) parsed = log::ParseLevel(options.log_level, &level);
  std::regex selector;
  if (parsed.ok()) {
    try {
      selector = std::regex(options.run_regex);
    } catch (const std::regex_error& e) {
      parsed = absl::InvalidArgumentError(
          absl::StrCat("--run: bad regular expression: ", e.what()));
    }
  }
  if (!parsed.ok()) {
    std::cerr << "vkhost-conformance: " << parsed.message() << "\n\n";
    PrintUsage(std::cerr);
    return 2;
  }
  log::SetLevel(level);

  std::vector<Check> selected;
  for (const Check& check : AllChecks()) {
    if (std::regex_search(check.name, selector)) selected.push_back(check);
  }
  if (options.list) {
    for (const Check& check : selected) {
      std::cout << check.name;
      if (check.capability != v1::CAPABILITY_UNSPECIFIED) {
        std::cout << " (needs " << v1::Capability_Name(check.capability) << ")";
      }
      if (check.launch_only) std::cout << " (launch mode)";
      std::cout << "\n";
    }
    return 0;
  }

  Tally tally;
  absl::StatusOr<std::unique_ptr<plugin::PluginConnection>> connection =
      Connect(options);
  if (!connection.ok()) {
    tally.Report("connect", Outcome::Fail(std::string(
                                connection.status().message())));
    return tally.Finish();
  }
  Context context(options, *std::move(connection));
  for (const Check& check : selected) {
    context.set_current_check(check.name);
    const std::string skip = SkipReason(check, context);
    tally.Report(check.name,
                 skip.empty() ? check.run(context) : Outcome::Skip(skip));
  }
  context.set_current_check("cleanup");
  tally.Report("cleanup", Outcome::FromStatus(context.CleanUp()));
  return tally.Finish();
}

}  // namespace vkhost::conformance
