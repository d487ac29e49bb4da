// `dalle rerank train`: the contrastive reranker's training loop on image-caption pairs streamed
// from any source data/loader.h reads, with SPEC §3's augmentation: AdamW, warm-up then cosine decay, EMA, a held-out split
// scored by caption->image retrieval, metrics.jsonl, atomic checkpoints and exact resume.
// The run folder holds rerank.safetensors (EMA weights, self-describing), config.json and the
// tokenizer; copy rerank.safetensors into a bundle to have `dalle generate` rerank with it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "dalle/bundle/config.h"

namespace dalle {

class DistGroup;

struct RerankTrainOptions {
  std::string data;       // image-caption source
  std::string out;        // run folder
  std::string tokenizer;  // tokenizer file; empty = learn one from the captions
  int64_t steps = -1;     // -1 = config
  uint64_t seed = 0;
  bool resume = false;
  int threads = 0;
  int64_t val_every = 500;
  int64_t save_every = 500;
  int64_t max_images = -1;  // only the first N pairs of the data (name order), -1 = all
  int workers = 2;           // image decoding + augmentation threads
  int64_t shuffle_buffer = 1000;
  bool quiet = false;
  std::string device = "cpu";  // cpu, cuda, cuda:N or auto (util/device.h)
  bool tf32 = false;           // fp32 products on TF32 tensor cores (CUDA)
  // Data parallelism (dist/): this rank's process group (nullptr: one process). rerank.batch is
  // per rank, and each rank's contrastive loss takes its negatives from its own batch.
  std::shared_ptr<DistGroup> dist;
};

struct RetrievalAccuracy {
  double top1 = 0, top5 = 0;
  int pool = 0;   // candidates per caption
  int pairs = 0;  // captions scored
};

struct RerankTrainResult {
  double first_loss = 0, last_loss = 0;
  RetrievalAccuracy val;
  int64_t steps = 0;
};

RerankTrainResult rerank_train(const ModelConfig& preset, const RerankTrainOptions& options);

}  // namespace dalle
