// The fast decoder (prior/decoder.h) against the libtorch module it packs: the same logits in
// fp32, bounded differences and the same greedy tokens in bf16 and int8, and the kernels it is
// built from against their libtorch counterparts.
#include <gtest/gtest.h>

#include <type_traits>

#include "dalle/util/torch_api.h"

#include "dalle/prior/amx_matmul.h"
#include "dalle/prior/decoder.h"
#include "dalle/prior/packed_linear.h"
#include "dalle/prior/vector_math.h"
#include "dalle/sample/sampler.h"
#include "dalle/train/checkpoint.h"
#include "dalle/util/cuda_graph.h"
#include "dalle/util/error.h"
#include "test_util.h"

using namespace dalle;

namespace {

// A prior with every mask type (5 layers: row, column, row, row, conv) on a 3 x 4 grid, with
// weights large enough that attention is not uniform.
Prior test_prior(int d_model = 32) {
  torch::manual_seed(11);
  PriorConfig c = test::toy_prior(5);
  c.d_model = d_model;
  Prior prior(c, 3, 4, 10);
  prior->eval();
  torch::NoGradGuard no_grad;
  for (auto& p : prior->parameters()) p.add_(torch::randn_like(p) * 0.1);
  return prior;
}

// A tensor's values as bfloat16 bit patterns (the decoder's bf16 cache).
std::vector<uint16_t> bf16_bits(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  std::vector<uint16_t> out(static_cast<size_t>(c.numel()));
  vec_to_bf16(c.data_ptr<float>(), out.data(), c.numel());
  return out;
}

// Logits of every step for fixed tokens, from any decoder: [steps, rows, vocab].
torch::Tensor all_logits(ImageTokenDecoder& decoder, const torch::Tensor& text, const torch::Tensor& tokens,
                         const torch::Tensor& init = {}) {
  std::vector<torch::Tensor> out{decoder.start(text, init).clone()};
  const int64_t given = init.defined() ? init.size(1) : 0;
  for (int64_t i = given; i + 1 < decoder.image_tokens(); ++i)
    out.push_back(decoder.step(tokens.select(1, i).contiguous(), i).clone());
  return torch::stack(out);
}

}  // namespace

TEST(PackedLinear, EveryFormatMatchesTorchLinearWithinItsRounding) {
  torch::manual_seed(1);
  // Odd sizes: a vector tail (in % 16 != 0), partial output blocks (out % 4 != 0, out % 16 != 0)
  // and, for AMX, a strip with one output block of two (45 outputs).
  for (int64_t in : {7, 48, 70}) {
    for (int64_t out : {13, 45}) {
      const torch::Tensor w = torch::randn({out, in}), b = torch::randn({out});
      // Where the CPU has AMX, bf16 runs on its tiles at any row count and int8 from 5 rows on;
      // elsewhere bf16 goes through oneDNN's GEMM from 16 rows on. Both round the activations to
      // bf16. 40 rows: a second, partial block of 32 rows for AMX.
      for (int64_t rows : {1, 3, 4, 9, 20, 40}) {
        const torch::Tensor x = torch::randn({rows, in});
        const torch::Tensor want = torch::nn::functional::linear(x, w, b);
        torch::Tensor got = torch::empty({rows, out});
        for (WeightFormat f : {WeightFormat::fp32, WeightFormat::bf16, WeightFormat::int8}) {
          PackedLinear(w, b, f).apply(x.data_ptr<float>(), rows, got.data_ptr<float>());
          // The exact product with the format's rounded weights, against the kernel.
          torch::Tensor wf = f == WeightFormat::fp32   ? w
                             : f == WeightFormat::bf16 ? w.to(torch::kBFloat16).to(torch::kFloat32)
                                                       : dequantize_int8(quantize_int8(w));
          const bool rounded_activations =
              AmxMatmul::available() ? f == WeightFormat::bf16 || (f == WeightFormat::int8 && rows > 4)
                                     : f == WeightFormat::bf16 && rows >= 16;
          const torch::Tensor xf = rounded_activations ? x.to(torch::kBFloat16).to(torch::kFloat32) : x;
          EXPECT_TRUE(torch::allclose(got, torch::nn::functional::linear(xf, wf, b), 1e-2, 1e-2))
              << weight_format_name(f) << " in " << in << " rows " << rows;
          if (!rounded_activations) {
            EXPECT_TRUE(torch::allclose(got, torch::nn::functional::linear(x, wf, b), 1e-4, 1e-4))
                << weight_format_name(f) << " in " << in << " rows " << rows;
          }
          const double err = (got - want).abs().max().item<double>();
          EXPECT_LT(err, f == WeightFormat::fp32 ? 1e-4 : f == WeightFormat::bf16 ? 0.1 : 0.25) << weight_format_name(f);
          // The fused epilogues: GELU of the result, and the result added into y.
          const PackedLinear layer(w, b, f);
          torch::Tensor act = torch::empty({rows, out}), sum = torch::randn({rows, out});
          const torch::Tensor before = sum.clone();
          layer.apply(x.data_ptr<float>(), rows, act.data_ptr<float>(), Epilogue::gelu);
          layer.apply(x.data_ptr<float>(), rows, sum.data_ptr<float>(), Epilogue::accumulate);
          EXPECT_TRUE(torch::allclose(act, torch::gelu(got), 1e-5, 1e-5)) << weight_format_name(f) << " rows " << rows;
          EXPECT_TRUE(torch::allclose(sum, before + got, 1e-5, 1e-5)) << weight_format_name(f) << " rows " << rows;
        }
      }
    }
  }
}

TEST(PackedLinear, Int8RoundTripIsWithinHalfAStepPerChannel) {
  torch::manual_seed(2);
  torch::Tensor w = torch::randn({6, 40}) * torch::tensor({0.01, 0.1, 1.0, 10.0, 100.0, 0.0}).unsqueeze(1);
  const Int8Weight q = quantize_int8(w);
  ASSERT_EQ(q.q.scalar_type(), torch::kInt8);
  EXPECT_LE(q.q.abs().max().item<int>(), 127);
  // Each channel's largest weight maps to +-127, and every weight is within half a step.
  const torch::Tensor err = (dequantize_int8(q) - w).abs();
  for (int64_t o = 0; o < 5; ++o) {
    EXPECT_EQ(q.q[o].abs().max().item<int>(), 127);
    EXPECT_LE(err[o].max().item<double>(), 0.5 * q.scale[o].item<double>() * 1.0001);
  }
  EXPECT_EQ(q.scale[5].item<float>(), 1.0f);  // an all-zero channel stays exactly zero
  EXPECT_EQ(err[5].max().item<double>(), 0.0);
}

TEST(VectorMath, GeluLayerNormAndAttentionMatchLibtorch) {
  const torch::Tensor x = torch::linspace(-12, 12, 1001);
  torch::Tensor g = x.clone();
  vec_gelu(g.data_ptr<float>(), g.numel());
  EXPECT_LT((g - torch::gelu(x)).abs().max().item<double>(), 1e-6);
  const torch::Tensor row = torch::randn({37}) * 3 + 1, w = torch::randn({37}), b = torch::randn({37});
  torch::Tensor y = torch::empty({37});
  vec_layer_norm(row.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), 1e-5f, 37, y.data_ptr<float>());
  EXPECT_TRUE(torch::allclose(y, torch::layer_norm(row, {37}, w, b, 1e-5), 1e-5, 1e-5));
  // Two queries of two heads over `text` rows of their shared text cache and 3 listed rows of
  // each one's own [24, stride 80] image cache; head sizes with and without a vector tail, key
  // counts under and over one vector; fp32 and bfloat16 caches (the latter against the same
  // computation on the rounded values).
  for (int64_t hd : {8, 32, 40})
    for (int64_t text : {5, 20})
      for (bool bf16 : {false, true}) {
        torch::manual_seed(hd + text);
        const torch::Tensor k = torch::randn({2, 24, 80}) * 2, v = torch::randn({2, 24, 80});
        const torch::Tensor tk = torch::randn({text, 80}) * 2, tv = torch::randn({text, 80});
        const torch::Tensor q = torch::randn({2, 2 * hd});
        const std::vector<int32_t> list = {9, 6, 23};
        const torch::Tensor listed = torch::tensor({9, 6, 23}, torch::kLong);
        auto rounded = [&](const torch::Tensor& t) { return bf16 ? t.to(torch::kBFloat16).to(torch::kFloat32) : t; };
        std::vector<torch::Tensor> rows;
        for (int64_t r = 0; r < 2; ++r) {
          const torch::Tensor keys = rounded(torch::cat({tk, k[r].index_select(0, listed)}));
          const torch::Tensor values = rounded(torch::cat({tv, v[r].index_select(0, listed)}));
          for (int64_t h = 0; h < 2; ++h) {
            const torch::Tensor kh = keys.narrow(1, h * hd, hd), vh = values.narrow(1, h * hd, hd);
            rows.push_back(torch::softmax(kh.matmul(q[r].narrow(0, h * hd, hd)) * 0.3f, 0).matmul(vh));
          }
        }
        const torch::Tensor want = torch::cat(rows).view({2, 2 * hd});
        torch::Tensor got = torch::empty({2, 2 * hd}), scores = torch::empty({2 * 2 * (text + 3)});
        auto run = [&](auto* tk_data, auto* tv_data, auto* k_data, auto* v_data) {
          QueryBlock<std::remove_const_t<std::remove_pointer_t<decltype(tk_data)>>> b;
          b.queries = 2;
          b.q = q.data_ptr<float>();
          b.q_stride = 2 * hd;
          b.text_k = tk_data;
          b.text_v = tv_data;
          b.text = text;
          b.k = k_data;
          b.v = v_data;
          b.kv_stride = 24 * 80;
          b.list = list.data();
          b.listed = 3;
          b.stride = 80;
          b.hd = hd;
          b.heads = 2;
          b.scale = 0.3f;
          b.scores = scores.data_ptr<float>();
          b.out = got.data_ptr<float>();
          b.out_stride = 2 * hd;
          vec_attend(b);
        };
        if (bf16) {
          const auto tk16 = bf16_bits(tk), tv16 = bf16_bits(tv), k16 = bf16_bits(k), v16 = bf16_bits(v);
          run(tk16.data(), tv16.data(), k16.data(), v16.data());
        } else {
          run(tk.data_ptr<float>(), tv.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>());
        }
        EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << hd << " " << text << " " << bf16;
      }
  // The register-blocked kernel: the text keys also transposed (rows padded to 64 keys), head
  // sizes of one to four vectors, one to four queries sharing the text, text runs of under one,
  // exactly one and over two blocks of 64 keys; each against softmax(q K^T) V on the cache's values.
  for (int64_t hd : {16, 32, 64})
    for (int64_t queries : {1, 3, 4})
      for (int64_t text : {5, 64, 130})
        for (bool bf16 : {false, true}) {
          torch::manual_seed(hd * 7 + queries + text);
          const int64_t heads = 2, d = heads * hd, padded = (text + 63) / 64 * 64;
          auto rounded = [&](const torch::Tensor& t) { return bf16 ? t.to(torch::kBFloat16).to(torch::kFloat32) : t; };
          const torch::Tensor tk = rounded(torch::randn({text, d})), tv = torch::randn({text, d});
          const torch::Tensor k = torch::randn({queries, 9, d}), v = torch::randn({queries, 9, d});
          const torch::Tensor q = torch::randn({queries, d});
          const std::vector<int32_t> list = {4, 0, 8, 2, 7};
          const torch::Tensor listed = torch::tensor({4, 0, 8, 2, 7}, torch::kLong);
          torch::Tensor kt = torch::zeros({d, padded});
          kt.narrow(1, 0, text).copy_(tk.t());
          std::vector<torch::Tensor> rows;
          for (int64_t r = 0; r < queries; ++r) {
            const torch::Tensor keys = rounded(torch::cat({tk, k[r].index_select(0, listed)}));
            const torch::Tensor values = rounded(torch::cat({tv, v[r].index_select(0, listed)}));
            for (int64_t h = 0; h < heads; ++h) {
              const torch::Tensor kh = keys.narrow(1, h * hd, hd), vh = values.narrow(1, h * hd, hd);
              rows.push_back(torch::softmax(kh.matmul(q[r].narrow(0, h * hd, hd)) * 0.2f, 0).matmul(vh));
            }
          }
          const torch::Tensor want = torch::cat(rows).view({queries, d});
          torch::Tensor got = torch::empty({queries, d}), scores = torch::empty({queries * heads * (text + 5)});
          auto run = [&](auto* tv_data, auto* k_data, auto* v_data) {
            QueryBlock<std::remove_const_t<std::remove_pointer_t<decltype(tv_data)>>> b;
            b.queries = queries;
            b.q = q.data_ptr<float>();
            b.q_stride = d;
            b.text_v = tv_data;
            b.text_kt = kt.data_ptr<float>();
            b.text_kt_stride = padded;
            b.text = text;
            b.k = k_data;
            b.v = v_data;
            b.kv_stride = 9 * d;
            b.list = list.data();
            b.listed = 5;
            b.stride = d;
            b.hd = hd;
            b.heads = heads;
            b.scale = 0.2f;
            b.scores = scores.data_ptr<float>();
            b.out = got.data_ptr<float>();
            b.out_stride = d;
            vec_attend(b);
          };
          if (bf16) {
            const auto tv16 = bf16_bits(tv), k16 = bf16_bits(k), v16 = bf16_bits(v);
            run(tv16.data(), k16.data(), v16.data());
          } else {
            run(tv.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>());
          }
          EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << hd << " " << queries << " " << text << " " << bf16;
        }
  // vec_to_bf16 rounds to nearest even, as libtorch's conversion does.
  const torch::Tensor wide = torch::randn({1000}) * 100;
  std::vector<uint16_t> half(1000);
  vec_to_bf16(wide.data_ptr<float>(), half.data(), 1000);  // vectors and a scalar tail
  const torch::Tensor want_bits = wide.to(torch::kBFloat16);
  EXPECT_EQ(std::memcmp(half.data(), want_bits.data_ptr(), 2000), 0);
}

TEST(PriorDecoder, Fp32LogitsMatchTheModulesCachedPath) {
  Prior prior = test_prior();
  torch::InferenceMode guard;
  const torch::Tensor text = torch::randint(0, 26, {3, 6}, torch::kLong);
  const torch::Tensor tokens = torch::randint(0, 10, {3, 12}, torch::kLong);
  ReferenceDecoder reference(prior);
  PriorDecoder fast(prior, WeightFormat::fp32);
  const torch::Tensor want = all_logits(reference, text, tokens);
  EXPECT_LT((all_logits(fast, text, tokens) - want).abs().max().item<double>(), 2e-4);
  // Image-prompted: the first 5 tokens given, prefilled in one chunk.
  const torch::Tensor init = tokens.narrow(1, 0, 5).contiguous();
  EXPECT_LT((all_logits(fast, text, tokens, init) - all_logits(reference, text, tokens, init)).abs().max().item<double>(),
            2e-4);
  // A decoder is reusable with another batch size.
  EXPECT_LT((all_logits(fast, text.narrow(0, 0, 1), tokens.narrow(0, 0, 1)) - want.narrow(1, 0, 1)).abs().max().item<double>(),
            2e-4);
  // Rows with one caption share its text keys (in blocks of consecutive rows): repeated and
  // interleaved captions, each row with its own image tokens.
  const torch::Tensor pick = torch::tensor({0, 0, 1, 0, 0, 0, 0, 2, 2}, torch::kLong);
  const torch::Tensor shared = text.index_select(0, pick);
  const torch::Tensor own = torch::randint(0, 10, {9, 12}, torch::kLong);
  EXPECT_LT((all_logits(fast, shared, own) - all_logits(reference, shared, own)).abs().max().item<double>(), 2e-4);
  // Image-prompted: one prompt for every row (the prefill runs once per caption and is copied),
  // and each row its own (a prefill per row).
  for (const torch::Tensor& prompt : {init.narrow(0, 0, 1).expand({9, 5}).contiguous(), own.narrow(1, 0, 5).contiguous()})
    EXPECT_LT((all_logits(fast, shared, own, prompt) - all_logits(reference, shared, own, prompt)).abs().max().item<double>(),
              2e-4);
  PriorDecoder half(prior, WeightFormat::bf16);
  EXPECT_LT((all_logits(half, shared, own) - all_logits(reference, shared, own)).abs().max().item<double>(), 0.1);
}

// The GPU's sampling path: the module and its cache on the prior's device, fed from the CPU,
// logits fp32 also under bf16 autocast (SPEC §3), and the same greedy tokens everywhere.
TEST(ReferenceDecoder, RunsWhereThePriorIsWithFp32LogitsAlsoUnderBf16) {
  torch::InferenceMode guard;
  const torch::Tensor text = torch::randint(0, 26, {3, 6}, torch::kLong);
  const torch::Tensor tokens = torch::randint(0, 10, {3, 12}, torch::kLong);
  SamplerSettings greedy;
  greedy.top_k = 1;
  ReferenceDecoder cpu(test_prior());
  const torch::Tensor want = all_logits(cpu, text, tokens);
  torch::Generator g = step_generator(1, 0, 0);
  const torch::Tensor want_tokens = sample_image_tokens(cpu, text, greedy, g);
  for (const c10::Device& device : test::devices()) {
    SCOPED_TRACE(device.str());
    Prior prior = test_prior();
    prior->to(device);
    ReferenceDecoder fp32(prior), bf16(prior, true);
    const torch::Tensor logits = all_logits(fp32, text, tokens);
    EXPECT_EQ(logits.device(), device);
    EXPECT_LT((logits.cpu() - want).abs().max().item<double>(), 1e-4);
    const torch::Tensor half = all_logits(bf16, text, tokens);
    EXPECT_EQ(half.scalar_type(), torch::kFloat32);
    EXPECT_GT((half.cpu() - want).abs().max().item<double>(), 0.0) << "bf16 autocast did not take effect";
    EXPECT_LT((half.cpu() - want).abs().max().item<double>(), 0.1);
    torch::Generator gen = step_generator(1, 0, 0);
    EXPECT_TRUE(torch::equal(sample_image_tokens(fp32, text, greedy, gen), want_tokens));
  }
}

// The GPU decoder's indexed steps are the module's steps: ReferenceDecoder's logits on every
// device, fp32 and bf16, over two sampling calls (the second, with another batch, must not replay
// the first one's graph); on a GPU the steps after the second replay a CUDA graph where the
// build has them.
TEST(GraphDecoder, IndexedStepsEqualTheModulesOnEveryDevice) {
  torch::InferenceMode guard;
  const torch::Tensor text = torch::randint(0, 26, {3, 6}, torch::kLong);
  const torch::Tensor tokens = torch::randint(0, 10, {3, 12}, torch::kLong);
  for (const c10::Device& device : test::devices()) {
    Prior prior = test_prior();
    prior->to(device);
    for (bool bf16 : {false, true}) {
      SCOPED_TRACE(device.str() + (bf16 ? ", bf16" : ", fp32"));
      ReferenceDecoder reference(prior, bf16);
      GraphDecoder graphed(prior, bf16);
      const torch::Tensor want = all_logits(reference, text, tokens).cpu();
      for (int64_t first : {0, 1}) {
        const torch::Tensor got = all_logits(graphed, text.narrow(0, first, 3 - first), tokens.narrow(0, first, 3 - first));
        EXPECT_EQ(got.device(), device);
        EXPECT_LT((got.cpu() - want.narrow(1, first, 3 - first)).abs().max().item<double>(), bf16 ? 5e-2 : 1e-5)
            << "call from row " << first;
      }
      if (device.is_cpu()) {
        EXPECT_EQ(graphed.graph_status(), "no CUDA graphs on a CPU");
      } else if (cuda_graphs_built()) {
        EXPECT_EQ(graphed.graph_status(), "replaying a CUDA graph");
      }
    }
  }
}

TEST(PriorDecoder, LowPrecisionWeightsKeepTheGreedyTokens) {
  Prior prior = test_prior(64);
  torch::InferenceMode guard;
  const torch::Tensor text = torch::randint(0, 26, {8, 6}, torch::kLong);
  SamplerSettings greedy;
  greedy.top_k = 1;
  PriorDecoder fp32(prior, WeightFormat::fp32);
  torch::Generator g = step_generator(1, 0, 0);
  const torch::Tensor want = sample_image_tokens(fp32, text, greedy, g);
  const torch::Tensor want_logits = all_logits(fp32, text, want);
  for (WeightFormat f : {WeightFormat::bf16, WeightFormat::int8}) {
    PriorDecoder low(prior, f);
    EXPECT_LT(low.step_weight_bytes(), fp32.step_weight_bytes());
    // Teacher-forced on the fp32 tokens: logits close, and the same argmax nearly everywhere.
    const torch::Tensor logits = all_logits(low, text, want);
    EXPECT_LT((logits - want_logits).abs().max().item<double>(), 0.05) << weight_format_name(f);
    const double agree = logits.argmax(-1).eq(want_logits.argmax(-1)).to(torch::kFloat64).mean().item<double>();
    EXPECT_GE(agree, 0.9) << weight_format_name(f);  // random weights: near-ties are common
  }
}

TEST(PriorDecoder, RejectsOutOfOrderStepsAndBadTokens) {
  Prior prior = test_prior();
  torch::InferenceMode guard;
  PriorDecoder fast(prior, WeightFormat::int8);
  const torch::Tensor text = torch::randint(0, 26, {2, 6}, torch::kLong);
  fast.start(text, {});
  EXPECT_THROW(fast.step(torch::zeros({2}, torch::kLong), 3), Error);
  EXPECT_THROW(fast.step(torch::full({2}, 10, torch::kLong), 0), Error);
  EXPECT_THROW(fast.start(torch::zeros({2, 5}, torch::kLong), {}), Error);
}
