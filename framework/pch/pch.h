// The precompiled header shared by every braid target: LibTorch and the standard library.
#pragma once
#include <torch/torch.h>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
