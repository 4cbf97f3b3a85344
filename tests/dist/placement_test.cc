// Rank placement: the host summary and the TP-group-across-hosts check
// (framework/dist/placement.h).
#include "framework/dist/placement.h"

#include <gtest/gtest.h>

namespace braid {
namespace {

TEST(Placement, TwoNodesTpWithinEach) {
  const std::vector<std::string> hosts = {"n1", "n1", "n2", "n2"};
  EXPECT_EQ(DescribePlacement(hosts, 2),
            "ranks on hosts: n1 = 0-1, n2 = 2-3; every TP group (size 2) within one host");
  EXPECT_TRUE(TpGroupsAcrossHosts(hosts, 2).empty());
  // DP across nodes only: TP 1 never spans.
  EXPECT_TRUE(TpGroupsAcrossHosts(hosts, 1).empty());
}

TEST(Placement, TpGroupAcrossHostsIsNamed) {
  // Round-robin placement (--map-by node) puts TP partners on different hosts.
  const std::vector<std::string> hosts = {"n1", "n2", "n1", "n2"};
  EXPECT_EQ(DescribePlacement(hosts, 2),
            "ranks on hosts: n1 = 0,2, n2 = 1,3; 2 of 2 TP groups span hosts");
  auto w = TpGroupsAcrossHosts(hosts, 2);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("ranks 0-1 spans hosts n1, n2"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("ranks 2-3 spans hosts n1, n2"), std::string::npos) << w[1];
  EXPECT_NE(w[0].find("HINT"), std::string::npos);
  // TP 4 over 3 + 1 ranks per host: the one group spans.
  EXPECT_EQ(TpGroupsAcrossHosts({"a", "a", "a", "b"}, 4).size(), 1u);
  EXPECT_TRUE(TpGroupsAcrossHosts({"a", "a", "a", "a", "b", "b", "b", "b"}, 4).empty());
}

TEST(Placement, OneHost) {
  EXPECT_EQ(DescribePlacement({"vm"}, 1),
            "ranks on hosts: vm = 0; every TP group (size 1) within one host");
}

}  // namespace
}  // namespace braid
