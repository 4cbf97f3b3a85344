#include "framework/dist/placement.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace braid {
namespace {

// "0-1, 4, 6-7": sorted ranks with runs folded.
std::string FoldRanks(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    absl::StrAppend(&out, out.empty() ? "" : ",", ranks[i]);
    if (j > i) absl::StrAppend(&out, "-", ranks[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace

std::string DescribePlacement(const std::vector<std::string>& host_of_rank, int tp_size) {
  std::vector<std::string> hosts;
  std::vector<std::vector<int>> ranks;
  for (int r = 0; r < static_cast<int>(host_of_rank.size()); ++r) {
    auto it = std::find(hosts.begin(), hosts.end(), host_of_rank[r]);
    if (it == hosts.end()) {
      hosts.push_back(host_of_rank[r]);
      ranks.emplace_back();
      it = hosts.end() - 1;
    }
    ranks[it - hosts.begin()].push_back(r);
  }
  std::vector<std::string> parts;
  for (size_t h = 0; h < hosts.size(); ++h)
    parts.push_back(absl::StrCat(hosts[h], " = ", FoldRanks(ranks[h])));
  const size_t across = TpGroupsAcrossHosts(host_of_rank, tp_size).size();
  const int groups = tp_size > 0 ? static_cast<int>(host_of_rank.size()) / tp_size : 0;
  return absl::StrFormat("ranks on hosts: %s; %s", absl::StrJoin(parts, ", "),
                         across == 0
                             ? absl::StrFormat("every TP group (size %d) within one host", tp_size)
                             : absl::StrFormat("%d of %d TP groups span hosts", across, groups));
}

std::vector<std::string> TpGroupsAcrossHosts(const std::vector<std::string>& host_of_rank,
                                             int tp_size) {
  std::vector<std::string> out;
  if (tp_size < 2) return out;
  const int world = static_cast<int>(host_of_rank.size());
  for (int first = 0; first + tp_size <= world; first += tp_size) {
    std::vector<std::string> hosts;
    for (int r = first; r < first + tp_size; ++r) {
      if (std::find(hosts.begin(), hosts.end(), host_of_rank[r]) == hosts.end())
        hosts.push_back(host_of_rank[r]);
    }
    if (hosts.size() > 1) {
      out.push_back(absl::StrFormat(
          "the TP group of ranks %d-%d spans hosts %s: its all-reduces in every layer cross the "
          "network. HINT: start a multiple of parallel.tensor_parallel_size ranks per node, in "
          "blocks (launch/launch.sh --ranks-per-node R --tp T with R %% T == 0).",
          first, first + tp_size - 1, absl::StrJoin(hosts, ", ")));
    }
  }
  return out;
}

}  // namespace braid
