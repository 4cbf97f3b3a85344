// The NCCL backend compiles and links, and the library it linked answers (no GPU needed).
#include <gtest/gtest.h>

#include <cstdio>

#include "braid/build_config.h"
#include "framework/dist/communicator.h"

#if BRAID_HAVE_NCCL
#include <nccl.h>
#endif

namespace braid {
namespace {

TEST(Nccl, LinkedLibraryAnswersItsVersion) {
  if (!HaveNccl()) {
    absl::StatusOr<std::string> v = NcclVersion();
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.status().message().find("no NCCL backend"), std::string::npos);
    GTEST_SKIP() << "built without NCCL";
  }
#if BRAID_HAVE_NCCL
  absl::StatusOr<std::string> v = NcclVersion();
  ASSERT_TRUE(v.ok()) << v.status();
  std::printf("linked NCCL %s\n", v->c_str());  // tools/gpu/device_check.sh reports it
  // The library we linked is the major.minor of the header we compiled against.
  std::string header = std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + ".";
  EXPECT_EQ(v->rfind(header, 0), 0u) << "linked " << *v << ", header " << header;
  int code = 0;
  ASSERT_EQ(ncclGetVersion(&code), ncclSuccess);
  EXPECT_GE(code, 20000);
#endif
}

}  // namespace
}  // namespace braid
