// A linear layer's weights packed for CPU inference (issue 24): fp32, bf16 (weights rounded to
// bfloat16, fp32 activations and accumulation) or int8 (symmetric per-output-channel weight-only
// quantization: w = q * scale[o], fp32 activations, fp32 accumulation). One kernel reads each
// weight once per block of four activation rows, so decoding a token is bound by reading the
// weights, and a quarter of the bytes (int8) is close to a quarter of the time. Many rows at
// once (a batch of 32 candidates, a prefill) read each weight once for many rows. On CPUs with
// AMX, bf16 runs on its tiles at any row count and int8 from 5 rows on (amx_matmul.h); elsewhere
// bf16 runs oneDNN's matmul from 16 rows on (onednn_matmul.h; through libtorch in builds without
// it), the CPU's bf16 dot products. Both round the activations to bf16, as autocast does.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dalle {

enum class WeightFormat { fp32, bf16, int8 };

std::string weight_format_name(WeightFormat format);
// "fp32", "bf16" or "int8"; throws Error naming the accepted values otherwise.
WeightFormat parse_weight_format(const std::string& name);

// Symmetric per-output-channel int8: scale[o] = max|w[o, :]| / 127 (1 for an all-zero row),
// q = round(w / scale) in [-127, 127]. weight [out, in] fp32.
struct Int8Weight {
  torch::Tensor q;      // [out, in] int8
  torch::Tensor scale;  // [out] fp32
};
Int8Weight quantize_int8(const torch::Tensor& weight);
torch::Tensor dequantize_int8(const Int8Weight& w);  // [out, in] fp32

// What a linear layer does with its result y' = W x + b: store it, store GELU(y') (the MLP's
// hidden layer), or add it into y (a residual branch joining the stream).
enum class Epilogue { store, gelu, accumulate };

class AmxMatmul;
class OnednnMatmul;

class PackedLinear {
 public:
  PackedLinear() = default;
  // weight [out, in], bias [out] (may be undefined). int8 quantizes here unless `int8` is given
  // (the exact values a quantized bundle stores).
  PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias, WeightFormat format,
               const Int8Weight* int8 = nullptr);

  // y[r, :] = W x[r, :] + b for r < rows (then the epilogue); x [rows, in], y [rows, out],
  // row-major fp32.
  void apply(const float* x, int64_t rows, float* y, Epilogue epilogue = Epilogue::store) const;

  int64_t in() const { return in_; }
  int64_t out() const { return out_; }
  WeightFormat format() const { return format_; }
  int64_t weight_bytes() const;

 private:
  int64_t in_ = 0, out_ = 0;
  WeightFormat format_ = WeightFormat::fp32;
  // One of these holds the weights, in panels of 64 output channels (packed_linear.cpp).
  std::vector<float> w32_;
  std::vector<uint16_t> w16_;  // bf16 bit patterns
  std::vector<int8_t> w8_;
  std::vector<float> scale_;  // per output channel (1 unless int8), padded to whole panels
  std::vector<float> bias_;   // zeros when the layer has none, padded likewise
  // Without AMX, bf16 also keeps its weights for oneDNN's bf16 GEMM, which beats the panel
  // kernel from kGemmRows rows on (packed_linear.cpp): called directly where the build has
  // oneDNN, else through libtorch ([out, in] row-major).
  std::shared_ptr<OnednnMatmul> onednn_;
  torch::Tensor gemm_weight_, gemm_bias_;
  // Where the CPU has AMX, bf16 and int8 batches run on its tiles instead (amx_matmul.h).
  std::shared_ptr<AmxMatmul> amx_;
};

}  // namespace dalle
