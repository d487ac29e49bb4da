#include "dalle/prior/onednn_matmul.h"

#include "dalle/util/error.h"

#if DALLE_HAVE_ONEDNN
#include <ATen/Parallel.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "dalle/prior/vector_math.h"
#endif

namespace dalle {

#if DALLE_HAVE_ONEDNN

namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}
dnnl::stream& cpu_stream() {
  static dnnl::stream stream(cpu_engine());
  return stream;
}
}  // namespace

struct OnednnMatmul::Impl {
  int64_t in, out;
  std::vector<uint16_t> weight;  // [out, in]: the [in, out] matrix in column-major ("ba")
  std::vector<float> bias;
  dnnl::memory weight_mem, bias_mem;
  std::vector<uint16_t> x16;  // the activations rounded to bf16
  // The weights reordered into each blocked layout a primitive asked for (usually one): a plain
  // matrix would be repacked on every call, which costs as much as the product at 32 rows.
  std::vector<dnnl::memory> blocked;
  struct Primitive {
    dnnl::matmul matmul;
    dnnl::memory weights;
  };
  // One primitive per (rows, epilogue): made on first use, kept (a step's row count repeats).
  std::map<std::pair<int64_t, int>, Primitive> primitives;

  Primitive& primitive(int64_t rows, Epilogue epilogue) {
    const auto key = std::make_pair(rows, static_cast<int>(epilogue));
    auto it = primitives.find(key);
    if (it != primitives.end()) return it->second;
    const dnnl::memory::desc src({rows, in}, dt::bf16, tag::ab), wei({in, out}, dt::bf16, tag::any),
        b({1, out}, dt::f32, tag::ab), dst({rows, out}, dt::f32, tag::ab);
    dnnl::post_ops ops;
    if (epilogue == Epilogue::gelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    if (epilogue == Epilogue::accumulate) ops.append_sum(1.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, b, dst), attr, cpu_engine());
    dnnl::memory weights;
    for (const dnnl::memory& w : blocked)
      if (w.get_desc() == pd.weights_desc()) weights = w;
    if (!weights) {
      weights = dnnl::memory(pd.weights_desc(), cpu_engine());
      dnnl::reorder(weight_mem, weights).execute(cpu_stream(), weight_mem, weights);
      cpu_stream().wait();
      blocked.push_back(weights);
    }
    return primitives.emplace(key, Primitive{dnnl::matmul(pd), weights}).first->second;
  }
};

bool OnednnMatmul::available() { return true; }

OnednnMatmul::OnednnMatmul(const uint16_t* weight, const float* bias, int64_t in, int64_t out)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.in = in;
  m.out = out;
  m.weight.assign(weight, weight + in * out);
  m.bias.assign(bias, bias + out);
  m.weight_mem = dnnl::memory({{in, out}, dt::bf16, tag::ba}, cpu_engine(), m.weight.data());
  m.bias_mem = dnnl::memory({{1, out}, dt::f32, tag::ab}, cpu_engine(), m.bias.data());
}

OnednnMatmul::~OnednnMatmul() = default;

void OnednnMatmul::run(const float* x, int64_t rows, float* y, Epilogue epilogue) {
  Impl& m = *impl_;
  if (static_cast<int64_t>(m.x16.size()) < rows * m.in) m.x16.resize(static_cast<size_t>(rows * m.in));
  at::parallel_for(0, rows, 8, [&](int64_t b, int64_t e) {
    vec_to_bf16(x + b * m.in, m.x16.data() + b * m.in, (e - b) * m.in);
  });
  Impl::Primitive& prim = m.primitive(rows, epilogue);
  dnnl::memory src({{rows, m.in}, dt::bf16, tag::ab}, cpu_engine(), m.x16.data());
  dnnl::memory dst({{rows, m.out}, dt::f32, tag::ab}, cpu_engine(), y);
  prim.matmul.execute(cpu_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, prim.weights},
                                     {DNNL_ARG_BIAS, m.bias_mem}, {DNNL_ARG_DST, dst}});
  cpu_stream().wait();
}

#else

struct OnednnMatmul::Impl {};
bool OnednnMatmul::available() { return false; }
OnednnMatmul::OnednnMatmul(const uint16_t*, const float*, int64_t, int64_t) {
  throw Error("this build of dalle has no oneDNN (CMake option DALLE_ONEDNN)");
}
OnednnMatmul::~OnednnMatmul() = default;
void OnednnMatmul::run(const float*, int64_t, float*, Epilogue) {}

#endif

}  // namespace dalle
