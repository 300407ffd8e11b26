// Test doubles for SDK sessions and streams, shared by the mock's tests.
#ifndef VKHOST_PLUGINS_MOCK_FAKE_SESSION_H_
#define VKHOST_PLUGINS_MOCK_FAKE_SESSION_H_

#include <algorithm>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::mock {

// A ProcessSession fed from a script of inputs. When the script runs out it
// reports kEnded, or (with hold_open) waits like an idle host. Output is
// collected; `cancel_when` decides from the stdout so far when the host goes
// away. Thread-safe.
class FakeProcessSession : public sdk::ProcessSession {
 public:
  explicit FakeProcessSession(std::vector<Input> script, bool hold_open = false)
      : script_(script.begin(), script.end()), hold_open_(hold_open) {}

  std::optional<Input> ReadUntil(absl::Time deadline) override {
    {
      absl::MutexLock lock(&mu_);
      if (!script_.empty()) {
        Input input = script_.front();
        script_.pop_front();
        return input;
      }
      if (!hold_open_ || cancelled_) return Input{};
    }
    absl::SleepFor(std::min(deadline - absl::Now(), absl::Milliseconds(10)));
    return std::nullopt;
  }
  bool WriteStdout(absl::string_view data) override {
    absl::MutexLock lock(&mu_);
    stdout_.append(data.data(), data.size());
    if (cancel_when && cancel_when(stdout_)) cancelled_ = true;
    return true;
  }
  bool WriteStderr(absl::string_view data) override {
    absl::MutexLock lock(&mu_);
    stderr_.append(data.data(), data.size());
    return true;
  }
  bool IsCancelled() const override {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }
  std::string out() const {
    absl::MutexLock lock(&mu_);
    return stdout_;
  }
  std::string err() const {
    absl::MutexLock lock(&mu_);
    return stderr_;
  }
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  void Push(Input input) {
    absl::MutexLock lock(&mu_);
    script_.push_back(std::move(input));
  }

  std::function<bool(const std::string& stdout_so_far)> cancel_when;

  static Input Stdin(std::string data) {
    Input input;
    input.kind = Input::Kind::kStdin;
    input.data = std::move(data);
    return input;
  }
  static Input CloseStdin() {
    Input input;
    input.kind = Input::Kind::kStdinClosed;
    return input;
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<Input> script_;
  bool hold_open_;
  bool cancelled_ = false;
  std::string stdout_, stderr_;
};

// Collects what a server stream writes.
template <typename Message>
class CollectingWriter : public sdk::StreamWriter<Message> {
 public:
  bool Write(const Message& message) override {
    absl::MutexLock lock(&mu_);
    messages_.push_back(message);
    return true;
  }
  bool IsCancelled() const override { return false; }
  std::vector<Message> messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Message> messages_;
};

}  // namespace vkhost::mock

#endif  // VKHOST_PLUGINS_MOCK_FAKE_SESSION_H_
