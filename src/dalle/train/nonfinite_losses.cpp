#include "dalle/train/nonfinite_losses.h"

#include <cmath>

namespace dalle {

bool NonfiniteLosses::observe(double loss) {
  const bool finite = std::isfinite(loss);
  in_a_row_ = finite ? 0 : in_a_row_ + 1;
  return finite;
}

std::string NonfiniteLosses::stop_message(const std::string& command, int64_t steps_done, const std::string& run,
                                          const std::string& section) const {
  return command + ": the loss was not finite for " + std::to_string(in_a_row_) + " updates in a row (steps " +
         std::to_string(steps_done - in_a_row_ + 1) + "-" + std::to_string(steps_done) +
         ", all skipped); stopped with a checkpoint at step " + std::to_string(steps_done) + " in " + run +
         ". Lower " + section + ".lr in " + run + "/config.json or check the data, then rerun with --resume";
}

}  // namespace dalle
