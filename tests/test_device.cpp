#include <gtest/gtest.h>

#include "dalle/util/torch_api.h"

#include <torch/cuda.h>

#include "dalle/util/device.h"
#include "dalle/util/error.h"

using namespace dalle;

TEST(Device, NamesParseOrAreClearErrors) {
  EXPECT_TRUE(device_from_name("cpu").is_cpu());
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cudax", "CPU"}) EXPECT_THROW(device_from_name(bad), Error) << bad;
  if (torch::cuda::is_available()) {
    EXPECT_TRUE(device_from_name("cuda").is_cuda());
    EXPECT_THROW(device_from_name("cuda:" + std::to_string(torch::cuda::device_count())), Error);
  } else {
    // A CPU build says so instead of failing at the first tensor.
    try {
      device_from_name("cuda:0");
      FAIL() << "no CUDA here, yet cuda:0 was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA"), std::string::npos) << e.what();
    }
  }
}

TEST(Device, SeededCpuGeneratorsRepeat) {
  at::Generator a = seeded_generator(c10::Device(c10::kCPU), 42), b = seeded_generator(c10::Device(c10::kCPU), 42);
  EXPECT_TRUE(torch::equal(torch::rand({8}, a), torch::rand({8}, b)));
}
