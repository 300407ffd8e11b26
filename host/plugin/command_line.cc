// SplitCommandLine: the --plugin flag is one string, the plugin is an argv.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "host/plugin/plugin.h"

namespace vkhost::plugin {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Inside double quotes a backslash escapes only these, as in sh.
bool EscapableInDoubleQuotes(char c) {
  return c == '"' || c == '\\' || c == '$' || c == '`';
}

// Splits `line` the way sh would for plain words and quotes, without
// expansions.
class CommandLineSplitter {
 public:
  explicit CommandLineSplitter(const std::string& line) : line_(line) {}

  absl::StatusOr<std::vector<std::string>> Split() {
    while (pos_ < line_.size()) {
      char c = line_[pos_];
      if (IsBlank(c)) {
        EndWord();
        ++pos_;
        continue;
      }
      in_word_ = true;
      absl::Status s = c == '\'' ? SingleQuoted()
                       : c == '"' ? DoubleQuoted()
                       : c == '\\' ? Escaped()
                                   : Plain();
      if (!s.ok()) return s;
    }
    EndWord();
    if (words_.empty()) {
      return absl::InvalidArgumentError("empty plugin command");
    }
    return words_;
  }

 private:
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " in plugin command: ", line_));
  }

  absl::Status Plain() {
    word_ += line_[pos_++];
    return absl::OkStatus();
  }

  absl::Status Escaped() {
    if (pos_ + 1 >= line_.size()) return Error("trailing backslash");
    word_ += line_[pos_ + 1];
    pos_ += 2;
    return absl::OkStatus();
  }

  absl::Status SingleQuoted() {
    size_t close = line_.find('\'', pos_ + 1);
    if (close == std::string::npos) return Error("unterminated single quote");
    word_.append(line_, pos_ + 1, close - pos_ - 1);
    pos_ = close + 1;
    return absl::OkStatus();
  }

  absl::Status DoubleQuoted() {
    for (size_t i = pos_ + 1; i < line_.size(); ++i) {
      char c = line_[i];
      if (c == '"') {
        pos_ = i + 1;
        return absl::OkStatus();
      }
      if (c == '\\' && i + 1 < line_.size() &&
          EscapableInDoubleQuotes(line_[i + 1])) {
        c = line_[++i];
      }
      word_ += c;
    }
    return Error("unterminated double quote");
  }

  void EndWord() {
    if (in_word_) words_.push_back(std::move(word_));
    word_.clear();
    in_word_ = false;
  }

  const std::string& line_;
  size_t pos_ = 0;
  // A word exists once anything, even an empty quote pair, started it.
  bool in_word_ = false;
  std::string word_;
  std::vector<std::string> words_;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitCommandLine(
    const std::string& line) {
  return CommandLineSplitter(line).Split();
}

}  // namespace vkhost::plugin
