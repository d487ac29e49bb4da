// How image tokens are drawn: the settings of every sampler, and a bundle's recommended ones
// (the config's `sample` section, bundle/config.h).
#pragma once

namespace dalle {

struct SamplerSettings {
  double temperature = 1.0;
  int top_k = 0;       // 0 = off
  double top_p = 1.0;  // 1 = off
  // Classifier-free guidance: logits = uncond + cfg_scale * (cond - uncond), where uncond is the
  // prior's prediction for an all-padding caption. 1 = off (plain conditional sampling).
  double cfg_scale = 1.0;
};

}  // namespace dalle
