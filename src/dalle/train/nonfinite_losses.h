// Non-finite losses during training (SPEC §3: such a step is skipped). One is noise; a run of
// them means training diverged (a learning rate too high, broken data), so trainers stop after
// `limit` in a row, with a checkpoint that --resume continues once the cause is fixed.
#pragma once
#include <cstdint>
#include <string>

namespace dalle {

class NonfiniteLosses {
 public:
  explicit NonfiniteLosses(int limit) : limit_(limit) {}

  // Records one update's loss; returns whether it is finite (whether the update may proceed).
  bool observe(double loss);
  bool limit_reached() const { return in_a_row_ >= limit_; }
  int in_a_row() const { return in_a_row_; }
  void set_in_a_row(int count) { in_a_row_ = count; }  // from a checkpoint

  // The one-line error that ends the run: `command` as the user typed it ("train", "vae train"),
  // `steps_done` the step the checkpoint holds, `section` the config section with the lr.
  std::string stop_message(const std::string& command, int64_t steps_done, const std::string& run,
                           const std::string& section) const;

 private:
  int limit_;
  int in_a_row_ = 0;
};

}  // namespace dalle
