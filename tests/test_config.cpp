#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "dalle/util/torch_api.h"

#include "dalle/bundle/bundle.h"
#include "dalle/bundle/config.h"
#include "dalle/util/error.h"
#include "test_paths.h"

using namespace dalle;

namespace {

int64_t count_params(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

ModelConfig preset(const std::string& name) {
  return config_load(std::string(DALLE_SOURCE_DIR) + "/configs/" + name + ".json");
}

}  // namespace

TEST(Config, PresetsLoadAndRoundTrip) {
  for (const char* name : {"tiny", "small", "paper", "gpu-1b"}) {
    const ModelConfig c = preset(name);
    EXPECT_EQ(c.name, name);
    const ModelConfig again = config_from_json(config_to_json(c), "roundtrip");
    EXPECT_EQ(config_to_json(again), config_to_json(c));
  }
}

TEST(Config, PaperPresetHasThePapersDvaeParameterCounts) {
  const ModelConfig c = preset("paper");
  EXPECT_EQ(dvae_encoder_param_count(c.vae), 53786240);
  EXPECT_EQ(dvae_decoder_param_count(c.vae), 43829766);
  EXPECT_EQ(c.vae.grid(), 32);
  // 12 * layers * d^2 is the paper's ~12.09B in the blocks; embeddings and heads add the rest.
  const int64_t prior = prior_param_count(c.prior, 32, 32, 8192);
  EXPECT_GT(prior, 12000000000LL);
  EXPECT_LT(prior, 12400000000LL);
}

TEST(Config, GpuPresetIsAboutOnePointThreeBillionParameters) {
  const ModelConfig c = preset("gpu-1b");
  EXPECT_EQ(c.vae.grid(), 32);
  EXPECT_EQ(c.prior.text_len, 256);
  const int64_t prior = prior_param_count(c.prior, 32, 32, c.vae.vocab);
  EXPECT_GT(prior, 1250000000LL);
  EXPECT_LT(prior, 1350000000LL);
}

TEST(Config, ParameterFormulasMatchTheBuiltModules) {
  for (const char* name : {"tiny", "small"}) {
    const ModelConfig c = preset(name);
    Dvae vae(c.vae);
    EXPECT_EQ(count_params(*vae->encoder), dvae_encoder_param_count(c.vae)) << name;
    EXPECT_EQ(count_params(*vae->decoder), dvae_decoder_param_count(c.vae)) << name;
    Prior prior = prior_create(c);
    EXPECT_EQ(count_params(*prior), prior_param_count(c.prior, c.vae.grid(), c.vae.grid(), c.vae.vocab)) << name;
  }
}

TEST(Config, BottleneckGainsDefaultToThePapersNetwork) {
  // Bundles written before the gains existed load as the paper's network (gains 1).
  nlohmann::json j = config_to_json(preset("tiny"));
  j["vae"].erase("logit_gain");
  j["vae"].erase("codebook_gain");
  const ModelConfig old = config_from_json(j, "old.json");
  EXPECT_EQ(old.vae.logit_gain, 1.0);
  EXPECT_EQ(old.vae.codebook_gain, 1.0);
  EXPECT_EQ(preset("paper").vae.logit_gain, 1.0);
  EXPECT_EQ(preset("paper").vae.codebook_gain, 1.0);
  j["vae"]["codebook_gain"] = 0.0;
  try {
    config_from_json(j, "my.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vae.codebook_gain"), std::string::npos) << e.what();
  }
}

TEST(Config, UnknownKeysAndBadValuesAreErrorsNamingTheField) {
  nlohmann::json j = config_to_json(preset("tiny"));
  j["vae"]["n_hidden"] = 3;
  try {
    config_from_json(j, "my.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vae.n_hidden"), std::string::npos) << e.what();
  }
  j = config_to_json(preset("tiny"));
  j["prior"]["heads"] = 3;  // 64 is not divisible by 3
  EXPECT_THROW(config_from_json(j, "my.json"), Error);
  j = config_to_json(preset("tiny"));
  j["vae"]["image_size"] = "big";
  EXPECT_THROW(config_from_json(j, "my.json"), Error);
  j = config_to_json(preset("tiny"));
  j["vae_train"]["decoder_finetune_loss"] = "l1";
  try {
    config_from_json(j, "my.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("decoder_finetune_loss"), std::string::npos) << e.what();
  }
}

TEST(Config, SampleSectionCarriesTheBundlesSamplingSettings) {
  // Configs without the section sample as the paper (temperature 1, no truncation, no guidance).
  nlohmann::json j = config_to_json(preset("tiny"));
  j.erase("sample");
  const ModelConfig plain = config_from_json(j, "old.json");
  EXPECT_EQ(plain.sample.temperature, 1.0);
  EXPECT_EQ(plain.sample.cfg_scale, 1.0);
  j["sample"] = {{"cfg_scale", 3.0}, {"top_k", 64}};
  const ModelConfig guided = config_from_json(j, "guided.json");
  EXPECT_EQ(guided.sample.cfg_scale, 3.0);
  EXPECT_EQ(guided.sample.top_k, 64);
  EXPECT_EQ(guided.sample.top_p, 1.0);
  EXPECT_EQ(config_to_json(config_from_json(config_to_json(guided), "again")), config_to_json(guided));
  for (const auto& [key, bad] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"temperature", -1.0}, {"top_k", -1}, {"top_p", 1.5}, {"cfg_scale", -2.0}, {"guidance", 2.0}}) {
    nlohmann::json b = j;
    b["sample"][key] = bad;
    try {
      config_from_json(b, "my.json");
      FAIL() << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("sample." + key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("my.json"), std::string::npos) << e.what();
    }
  }
}
