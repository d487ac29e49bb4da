#include "dalle/serve/jobs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

namespace dalle {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string new_job_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  char id[32];
  std::snprintf(id, sizeof(id), "job_%016llx", static_cast<unsigned long long>(rng()));
  return id;
}

}  // namespace

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::Queued: return "queued";
    case JobState::Running: return "running";
    case JobState::Succeeded: return "succeeded";
    case JobState::Failed: return "failed";
    case JobState::Cancelled: return "cancelled";
  }
  return "unknown";
}

JobQueue::JobQueue(Runner runner, int max_queue, int max_finished)
    : runner_(std::move(runner)), max_queue_(max_queue), max_finished_(max_finished) {
  worker_ = std::thread([this] { work(); });
}

JobQueue::~JobQueue() { shutdown(std::chrono::milliseconds(0)); }

Job JobQueue::snapshot(const Job& job) const {
  Job copy = job;
  if (job.state == JobState::Queued)
    for (size_t i = 0; i < queued_.size(); ++i)
      if (queued_[i] == job.id) copy.queue_position = static_cast<int>(i) + 1;
  return copy;
}

std::string JobQueue::submit(const ImageRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) throw ShuttingDown();
  if (static_cast<int>(queued_.size()) >= max_queue_) {
    const double wait = std::max(1.0, mean_job_seconds_) * (static_cast<double>(queued_.size()) + 1);
    throw QueueFull(static_cast<int>(std::ceil(std::min(wait, 3600.0))), max_queue_);
  }
  Job job;
  do job.id = new_job_id();
  while (jobs_.count(job.id));
  job.request = request;
  job.created = now_seconds();
  const std::string id = job.id;
  jobs_[id] = std::move(job);
  queued_.push_back(id);
  changed_.notify_all();
  return id;
}

std::optional<Job> JobQueue::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->second);
}

std::optional<Job> JobQueue::wait_change(const std::string& id, uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [&] {
    auto it = jobs_.find(id);
    return it == jobs_.end() || it->second.version != seen || job_finished(it->second.state) || stopping_;
  });
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->second);
}

std::optional<Job> JobQueue::wait_finished(const std::string& id) const {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] {
    auto it = jobs_.find(id);
    return it == jobs_.end() || job_finished(it->second.state);
  });
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->second);
}

std::optional<Job> JobQueue::cancel(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  Job& job = it->second;
  if (job_finished(job.state)) {  // forget it and its images
    Job copy = job;
    jobs_.erase(it);
    finished_.erase(std::remove(finished_.begin(), finished_.end(), id), finished_.end());
    changed_.notify_all();
    return copy;
  }
  job.cancel_requested = true;
  ++job.version;
  if (job.state == JobState::Queued) {
    queued_.erase(std::remove(queued_.begin(), queued_.end(), id), queued_.end());
    job.state = JobState::Cancelled;
    job.finished = now_seconds();
    finished_.push_back(id);
  }
  changed_.notify_all();
  // The running job stops at its next token step.
  changed_.wait_for(lock, std::chrono::seconds(2), [&] {
    auto j = jobs_.find(id);
    return j == jobs_.end() || job_finished(j->second.state);
  });
  auto now = jobs_.find(id);
  if (now == jobs_.end()) return std::nullopt;
  return snapshot(now->second);
}

JobQueue::Stats JobQueue::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {static_cast<int>(queued_.size()), running_.empty() ? 0 : 1, static_cast<int>(finished_.size()), max_queue_,
          mean_job_seconds_};
}

bool JobQueue::stopping() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

void JobQueue::shutdown(std::chrono::milliseconds grace) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      for (const std::string& id : queued_) {
        Job& job = jobs_[id];
        job.state = JobState::Cancelled;
        job.error = "the server shut down before the job ran";
        job.finished = now_seconds();
        ++job.version;
        finished_.push_back(id);
      }
      queued_.clear();
      changed_.notify_all();
      changed_.wait_for(lock, grace, [&] { return running_.empty(); });
      if (!running_.empty()) {
        jobs_[running_].cancel_requested = true;
        ++jobs_[running_].version;
      }
      changed_.notify_all();
    }
  }
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

void JobQueue::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
    if (stopping_) return;
    const std::string id = queued_.front();
    queued_.pop_front();
    running_ = id;
    Job& job = jobs_[id];
    job.state = JobState::Running;
    job.started = now_seconds();
    ++job.version;
    const ImageRequest request = job.request;
    changed_.notify_all();
    lock.unlock();

    JobState state = JobState::Succeeded;
    std::string error;
    std::vector<JobImage> images;
    const auto progress = [&](int64_t done, int64_t total) {
      std::lock_guard<std::mutex> guard(mutex_);
      Job& j = jobs_[id];
      j.done = done;
      j.total = total;
      ++j.version;
      changed_.notify_all();
      if (j.cancel_requested) throw JobCancelled{};
    };
    try {
      images = runner_(request, progress);
    } catch (const JobCancelled&) {
      state = JobState::Cancelled;
      error = stopping() ? "the server shut down while the job ran" : "cancelled";
    } catch (const std::exception& e) {
      state = JobState::Failed;
      error = e.what();
    }

    lock.lock();
    Job& done = jobs_[id];
    done.state = state;
    done.error = error;
    done.images = std::move(images);
    done.finished = now_seconds();
    ++done.version;
    const double seconds = done.finished - done.started;
    mean_job_seconds_ = mean_job_seconds_ == 0 ? seconds : 0.8 * mean_job_seconds_ + 0.2 * seconds;
    running_.clear();
    finished_.push_back(id);
    while (static_cast<int>(finished_.size()) > max_finished_) {
      jobs_.erase(finished_.front());
      finished_.pop_front();
    }
    changed_.notify_all();
  }
}

}  // namespace dalle
