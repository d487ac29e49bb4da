// Precompiled header shared by every target: libtorch dominates compile time.
#pragma once
#include "dalle/util/torch_api.h"
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>
