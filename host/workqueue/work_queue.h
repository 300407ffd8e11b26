// host/workqueue: the rate-limited work queue the pod controller drains.
//
// Keys (pod UIDs) go in from watch handlers on several threads; a fixed pool
// of workers takes them out. As in client-go's workqueue, a key is queued at
// most once however often it is added, is never handed to two workers at
// once (an Add while it is being processed re-queues it after Done), and can
// be re-queued with a per-key exponential backoff after a failure. That gives
// the controller its two guarantees: work for one pod is serialised, and a
// burst of 5 000 updates costs at most one pass per pod.
//
// Thread-safe. Delayed keys need no timer thread: Get wakes up when the
// earliest one falls due.
#ifndef VKHOST_HOST_WORKQUEUE_WORK_QUEUE_H_
#define VKHOST_HOST_WORKQUEUE_WORK_QUEUE_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace vkhost::workqueue {

struct BackoffOptions {
  // Delay of the first retry of a key; doubles with every further retry.
  absl::Duration base_delay = absl::Milliseconds(5);
  absl::Duration max_delay = absl::Seconds(30);
};

class WorkQueue {
 public:
  explicit WorkQueue(BackoffOptions backoff = {});
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `key` unless it is already waiting. Ignored after ShutDown.
  void Add(const std::string& key);

  // Queues `key` once `delay` has passed (at once if <= 0). An earlier
  // pending deadline for the same key wins.
  void AddAfter(const std::string& key, absl::Duration delay);

  // Queues `key` after its backoff: base_delay * 2^(retries so far), capped
  // at max_delay. Returns the delay chosen.
  absl::Duration AddRateLimited(const std::string& key);

  // Clears the retry count of `key` after it succeeded.
  void Forget(const std::string& key);

  // How many times `key` was re-queued with AddRateLimited since Forget.
  int NumRequeues(const std::string& key) const;

  // Blocks until a key is ready and hands it to the caller, who must call
  // Done(key) when finished. Returns nullopt once the queue is shut down.
  std::optional<std::string> Get();

  // Marks `key` processed; if it was added meanwhile it is queued again.
  void Done(const std::string& key);

  // Wakes every Get with nullopt and drops queued keys; Add becomes a no-op.
  void ShutDown();

  // Keys ready now (not counting delayed ones or those being processed).
  size_t Len() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A fixed pool of threads draining a queue: each takes a key, calls
// `process`, and calls Done. `process` returns true when the key is finished
// (its backoff is forgotten) and false to retry it with backoff.
class WorkerPool {
 public:
  WorkerPool(WorkQueue& queue, int workers,
             std::function<bool(const std::string& key)> process);
  // Joins the workers; shut the queue down first or this blocks.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

 private:
  std::vector<std::thread> threads_;
};

}  // namespace vkhost::workqueue

#endif  // VKHOST_HOST_WORKQUEUE_WORK_QUEUE_H_
