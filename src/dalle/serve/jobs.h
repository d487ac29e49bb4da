// The server's job queue: image requests run one at a time on one worker thread (the model is
// loaded once and sampling uses every core), in arrival order. A bounded number wait; the rest
// are refused at once (HTTP 429) rather than piling up. Progress is published per sampled token,
// and a cancelled job stops at its next token step. Finished jobs keep their PNGs until
// `max_finished` newer ones have finished, so memory stays bounded.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dalle/serve/image_request.h"

namespace dalle {

enum class JobState { Queued, Running, Succeeded, Failed, Cancelled };
const char* job_state_name(JobState state);
inline bool job_finished(JobState s) { return s != JobState::Queued && s != JobState::Running; }

struct JobImage {
  std::shared_ptr<const std::vector<uint8_t>> png;  // with the CLI's PNG metadata
  int rank = 0;       // 1 = best rerank score
  int candidate = 0;  // 1-based, in sampling order
  double score = 0;
};

// A snapshot of one job (the queue hands out copies; the PNGs are shared).
struct Job {
  std::string id;
  ImageRequest request;
  JobState state = JobState::Queued;
  int64_t done = 0, total = 0;  // image tokens sampled / to sample
  int queue_position = 0;       // 1 = next to run (queued jobs only)
  std::vector<JobImage> images;
  std::string error;
  double created = 0, started = 0, finished = 0;  // Unix seconds (0 = not yet)
  uint64_t version = 0;  // grows with every change: what progress streams wait on
  bool cancel_requested = false;
};

class QueueFull : public std::runtime_error {
 public:
  QueueFull(int retry_after_s, int max_queue)
      : std::runtime_error("the queue is full (" + std::to_string(max_queue) + " jobs waiting); retry in " +
                           std::to_string(retry_after_s) + " s"),
        retry_after_s(retry_after_s) {}
  int retry_after_s;
};

class ShuttingDown : public std::runtime_error {
 public:
  ShuttingDown() : std::runtime_error("the server is shutting down") {}
};

// What a runner's progress callback throws when the job was cancelled: it unwinds sampling.
struct JobCancelled {};

class JobQueue {
 public:
  // Runs one request; calls progress(done, total) as it samples (which may throw JobCancelled).
  using Runner = std::function<std::vector<JobImage>(const ImageRequest&,
                                                     const std::function<void(int64_t, int64_t)>& progress)>;
  JobQueue(Runner runner, int max_queue, int max_finished);
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // The new job's id. Throws QueueFull or ShuttingDown.
  std::string submit(const ImageRequest& request);
  std::optional<Job> get(const std::string& id) const;
  // Returns once the job's version differs from `seen`, it has finished, the queue stops, or
  // `timeout` passes; nullopt when there is no such job (any more).
  std::optional<Job> wait_change(const std::string& id, uint64_t seen, std::chrono::milliseconds timeout) const;
  std::optional<Job> wait_finished(const std::string& id) const;
  // Queued: cancelled at once. Running: stops at its next token step (waits up to 2 s for it).
  // Finished: forgotten, with its images. Returns the job as it then is; nullopt if unknown.
  std::optional<Job> cancel(const std::string& id);

  struct Stats {
    int queued = 0, running = 0, finished = 0, max_queue = 0;
    double mean_job_seconds = 0;
  };
  Stats stats() const;

  // Refuses new jobs, cancels the queued ones, gives the running one `grace` to finish and then
  // cancels it; joins the worker.
  void shutdown(std::chrono::milliseconds grace);
  bool stopping() const;

 private:
  void work();
  Job snapshot(const Job& job) const;

  Runner runner_;
  const int max_queue_, max_finished_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, Job> jobs_;
  std::deque<std::string> queued_;    // ids, in arrival order
  std::deque<std::string> finished_;  // ids, oldest first
  std::string running_;
  bool stopping_ = false;
  double mean_job_seconds_ = 0;
  std::thread worker_;
};

}  // namespace dalle
