// How a bundle's prior.safetensors stores the weights inference reads (issue 24). fp32: as
// trained. bf16: every resblock linear weight as BF16. int8: each of those as I8 `NAME` with
// its per-output-channel F32 scales `NAME_scale` (packed_linear.h). Embeddings, LayerNorms,
// biases and the heads stay F32 in every format. The file's "weights" metadata names the format.
#pragma once
#include <string>

#include "dalle/io/safetensors.h"
#include "dalle/prior/decoder.h"

namespace dalle {

SafeTensors prior_weights_pack(const Prior& prior, WeightFormat format);

// The format a loaded prior file was written in (fp32 when its metadata does not say); an
// unknown name is an error naming `source`.
WeightFormat prior_weights_format(const SafeTensors& st, const std::string& source);

// Turns a loaded file into tensors the module loads: int8 weights are replaced by their fp32
// values and returned by name, so the decoder packs the stored integers exactly. Errors name
// `source` (a scale without its weight, mismatched shapes).
Int8Weights prior_weights_unpack(SafeTensors& st, const std::string& source);

}  // namespace dalle
