#include <gtest/gtest.h>

#include "dalle/util/torch_api.h"

#include <torch/cuda.h>

#include "dalle/train/precision.h"
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

TEST(Device, AutoIsTheGpuWhenThereIsOneElseTheCpu) {
  EXPECT_EQ(device_from_name("auto").is_cuda(), torch::cuda::is_available());
}

// fp16 is real on CUDA (autocast in fp16) and emulated on CPUs (libtorch has no fast fp16 CPU
// matmul); bf16 is autocast everywhere; fp32 is neither.
TEST(Device, PrecisionPlansFollowTheDevice) {
  const c10::Device cpu(c10::kCPU), gpu(c10::kCUDA, 0);
  const PrecisionPlan fp16_cpu = precision_plan(Precision::fp16, cpu), fp16_gpu = precision_plan(Precision::fp16, gpu);
  EXPECT_FALSE(fp16_cpu.autocast);
  EXPECT_TRUE(fp16_cpu.emulate_fp16);
  EXPECT_TRUE(fp16_gpu.autocast);
  EXPECT_EQ(fp16_gpu.dtype, at::kHalf);
  EXPECT_FALSE(fp16_gpu.emulate_fp16);
  for (const c10::Device& d : {cpu, gpu}) {
    const PrecisionPlan bf16 = precision_plan(Precision::bf16, d), fp32 = precision_plan(Precision::fp32, d);
    EXPECT_TRUE(bf16.autocast);
    EXPECT_EQ(bf16.dtype, at::kBFloat16);
    EXPECT_FALSE(fp32.autocast || fp32.emulate_fp16);
  }
}

// Autocast guards restore what they found, and AutocastOff (the logits' fp32 island) turns off
// both devices' autocast.
TEST(Device, AutocastGuardsNestAndRestore) {
  EXPECT_FALSE(autocast_state(c10::DeviceType::CPU).enabled);
  {
    AutocastGuard outer(true);
    EXPECT_TRUE(autocast_state(c10::DeviceType::CPU).enabled);
    {
      AutocastOff off;
      EXPECT_FALSE(autocast_state(c10::DeviceType::CPU).enabled);
      EXPECT_FALSE(autocast_state(c10::DeviceType::CUDA).enabled);
    }
    EXPECT_TRUE(autocast_state(c10::DeviceType::CPU).enabled);
    const torch::Tensor a = torch::randn({4, 4});
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);
  }
  EXPECT_FALSE(autocast_state(c10::DeviceType::CPU).enabled);
  EXPECT_EQ(torch::matmul(torch::randn({4, 4}), torch::randn({4, 4})).scalar_type(), torch::kFloat32);
}
