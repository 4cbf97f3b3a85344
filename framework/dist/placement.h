// Where the ranks run: which host holds which ranks, and whether each tensor-parallel group lies
// within one host. TP groups are consecutive ranks (ParallelLayout: rank = dp_rank * tp + tp_rank),
// so a launcher that places ranks per node in blocks (launch/launch.sh: --map-by ppr:R:node with R
// a multiple of TP) keeps every group on one host. A group that spans hosts still works, but its
// per-layer all-reduces then cross the network: that is worth a warning, not an error.
#pragma once

#include <string>
#include <vector>

namespace braid {

// "ranks on hosts: n1 = 0-1, n2 = 2-3; every TP group (size 2) within one host". Hosts in the
// order of their first rank; runs of consecutive ranks folded as "a-b".
std::string DescribePlacement(const std::vector<std::string>& host_of_rank, int tp_size);

// One message per TP group whose ranks lie on more than one host, naming the ranks and hosts and
// how to fix it; empty when every group lies within one host.
std::vector<std::string> TpGroupsAcrossHosts(const std::vector<std::string>& host_of_rank,
                                             int tp_size);

}  // namespace braid
