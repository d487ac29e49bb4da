#include "dalle/eval/fid_eval.h"

#include "dalle/util/torch_api.h"

#include <cstdio>

#include "dalle/data/loader.h"
#include "dalle/eval/blur.h"
#include "dalle/eval/frechet.h"
#include "dalle/eval/inception.h"
#include "dalle/io/image.h"
#include "dalle/io/plot.h"
#include "dalle/rerank/reranker.h"
#include "dalle/sample/generate.h"
#include "dalle/train/checkpoint.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

using json = nlohmann::json;

std::string generated_path(const std::string& out, int64_t i) {
  char name[32];
  std::snprintf(name, sizeof(name), "%06lld.png", static_cast<long long>(i));
  return path_join(path_join(out, "generated"), name);
}

// One image per caption, `batch` captions sampled together (each row its own caption), or the
// reranker's best of `candidates` per caption. PNGs already in out/generated are kept.
torch::Tensor generate_for_captions(Bundle& bundle, const std::vector<std::string>& captions, const FidEvalOptions& o,
                                    const std::string& out) {
  const int64_t n = static_cast<int64_t>(captions.size());
  const int size = bundle.config.vae.image_size, grid = bundle.config.vae.grid();
  torch::Tensor images = torch::empty({n, size, size, 3}, torch::kUInt8);
  make_dirs(path_join(out, "generated"));
  const auto keep = [&](int64_t i, const Image& image, const PngText& text) {
    image_save_png(generated_path(out, i), image, text);
    images[i].copy_(image_to_tensor(image));
  };
  torch::InferenceMode inference;
  for (int64_t start = 0; start < n; start += o.batch) {
    const int64_t b = std::min<int64_t>(o.batch, n - start);
    bool all_there = true;
    for (int64_t i = start; i < start + b; ++i) {
      if (!path_exists(generated_path(out, i))) {
        all_there = false;
        break;
      }
      const Image kept = image_load(generated_path(out, i));
      if (kept.width != size || kept.height != size) throw file_error(generated_path(out, i), "was drawn by another model");
      images[i].copy_(image_to_tensor(kept));
    }
    if (!all_there) {
      if (o.candidates > 1) {
        for (int64_t i = start; i < start + b; ++i) {
          GenerateRequest r;
          r.prompt = captions[i];
          r.count = o.candidates;
          r.keep = 1;
          r.batch = std::min(o.candidates, 32);
          r.seed = o.seed * 1000003 + static_cast<uint64_t>(i);
          r.sampler = o.sampler;
          const GeneratedImage best = generate_images(bundle, r).front();
          keep(i, best.image, {{"prompt", captions[i]}, {"seed", std::to_string(r.seed)}});
        }
      } else {
        std::vector<torch::Tensor> rows;
        for (int64_t i = start; i < start + b; ++i) rows.push_back(encode_caption(bundle, captions[i]));
        const torch::Tensor text = torch::cat(rows);
        const torch::Tensor uncond = encode_caption(bundle, "").expand({b, text.size(1)}).contiguous();
        torch::Generator gen = step_generator(o.seed, start, 11);
        const torch::Tensor tokens = sample_image_tokens(bundle_decoder(bundle), text, o.sampler, gen, {}, uncond);
        const torch::Tensor decoded = bundle.vae->decode_tokens(tokens.view({b, grid, grid})).cpu();
        for (int64_t i = 0; i < b; ++i)
          keep(start + i, image_from_tensor(decoded[i]),
               {{"prompt", captions[start + i]}, {"seed", std::to_string(o.seed)}, {"row", std::to_string(start + i)}});
      }
    }
    if (o.progress) o.progress("sampling", start + b, n);
  }
  return images;
}

}  // namespace

json fid_eval(Bundle& bundle, const std::string& real_data, const FidEvalOptions& o, const std::string& out) {
  if (o.count < 2) throw Error("eval fid: need at least 2 images");
  const bool fid = !o.inception.empty();
  if (!fid && !bundle.reranker)
    throw Error("eval fid: give --inception WEIGHTS (see the README), or use a bundle with a reranker for fd_rerank");
  InceptionV3 inception{nullptr};
  if (fid) {
    inception = inception_v3_load(o.inception);  // fail before sampling, not after
    inception->to(bundle.device);               // the features are computed where the bundle runs
  }
  make_dirs(out);

  // The real images at the model's resolution (centre crops), with their first captions.
  LoaderOptions lo;
  lo.data = real_data;
  lo.image_size = bundle.config.vae.image_size;
  lo.holdout = 1.0;  // every sample: read in a fixed order, centre-cropped
  lo.require_caption = true;
  const HeldOutSet real = loader_read_holdout(lo, o.count);
  if (real.images.size(0) < 2) throw file_error(real_data, "holds fewer than 2 readable images with captions");
  const torch::Tensor generated = generate_for_captions(bundle, real.captions, o, out);

  const std::string metric = fid ? "fid" : "fd_rerank";
  const auto features = [&](const torch::Tensor& images_u8) {
    if (fid) return inception_features(inception, images_u8, 32);
    torch::InferenceMode inference;
    std::vector<torch::Tensor> parts;
    for (int64_t s = 0; s < images_u8.size(0); s += 64) {
      const torch::Tensor chunk = images_u8.narrow(0, s, std::min<int64_t>(64, images_u8.size(0) - s));
      parts.push_back(bundle.reranker->embed_images(chunk.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0)));
    }
    return torch::cat(parts).to(torch::kFloat32);
  };
  json results = json::array();
  std::vector<double> radii, distances;
  for (size_t k = 0; k < o.blur.size(); ++k) {
    const double r = o.blur[k];
    const torch::Tensor fr = features(gaussian_blur(real.images, r));
    const torch::Tensor fg = features(gaussian_blur(generated, r));
    const double d = frechet_distance(gaussian_stats(fr), gaussian_stats(fg));
    const KidResult kid = kernel_inception_distance(fr, fg, o.kid_subsets, o.kid_subset_size, o.seed);
    results.push_back({{"radius", r}, {metric, d}, {"kid", kid.mean}, {"kid_std", kid.std}});
    radii.push_back(r);
    distances.push_back(d);
    if (o.progress) o.progress("features", static_cast<int64_t>(k + 1), static_cast<int64_t>(o.blur.size()));
  }
  const json report = {
      {"metric", metric},
      {"features",
       !fid ? "the bundle's reranker image tower (rerank.safetensors): not comparable with published FID"
       : inception->variant() == InceptionVariant::fid
           ? "Inception-v3 pool3, the FID network (TensorFlow 2015 weights " + o.inception + "): comparable with published FID"
           : "Inception-v3 pool3, torchvision's network (weights " + o.inception +
                 "): comparable with torchvision-Inception FIDs, not with published (TensorFlow) ones"},
      {"model", bundle.path},
      {"real", real_data},
      {"images", real.images.size(0)},
      {"image_size", bundle.config.vae.image_size},
      {"candidates", o.candidates},
      {"seed", o.seed},
      {"blur", results}};
  write_file_atomic(path_join(out, "fid.json"), report.dump(2) + "\n");
  std::string md = "# dalle eval fid: " + bundle.config.name + " against " + real_data + "\n\n" +
                   std::to_string(real.images.size(0)) + " real and as many generated images at " +
                   std::to_string(bundle.config.vae.image_size) + " px; features: " + report["features"].get<std::string>() +
                   ".\n\n| blur radius | " + metric + " | KID (x1000) |\n|---|---|---|\n";
  for (const json& r : results) {
    char row[128];
    std::snprintf(row, sizeof(row), "| %g | %.3f | %.3f ± %.3f |\n", r["radius"].get<double>(), r[metric].get<double>(),
                  1000 * r["kid"].get<double>(), 1000 * r["kid_std"].get<double>());
    md += row;
  }
  write_file_atomic(path_join(out, "fid.md"), md);
  try {
    plot_curves(path_join(out, "fid_blur.png"), metric + " against blur (" + bundle.config.name + ")", "blur radius (px)",
                metric, radii, {{metric, distances}}, false);
  } catch (const Error& e) {
    std::fprintf(stderr, "eval fid: no plot: %s\n", e.what());
  }
  return report;
}

}  // namespace dalle
