// Pipeline schedules and layer splits without tensors (framework/parallel/pipeline_schedule.h):
//  - every schedule (all-forward-all-backward, 1F1B, interleaved) runs every micro-batch's forward
//    and backward through every chunk exactly once, and the ranks' schedules together never
//    deadlock (simulated: a receive waits, a send does not), for PP 1..8, V 1..4, m up to 24;
//  - 1F1B's bubble is exactly (PP - 1) / (m + PP - 1) with backward = 2 x forward (the textbook
//    closed form), interleaving shrinks it toward that divided by V, and 1F1B holds at most
//    PP - rank micro-batches in flight (all-forward-all-backward: m);
//  - the layer splits: even, accounted embedding/loss, explicit, and each refusal by its numbers.
#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "framework/parallel/pipeline_schedule.h"

namespace braid {
namespace {

std::vector<std::vector<PipeAction>> AllRanks(PipelineSchedule kind, int pp, int v, int m) {
  std::vector<std::vector<PipeAction>> out;
  for (int r = 0; r < pp; ++r) out.push_back(ScheduleOf(kind, pp, v, r, m));
  return out;
}

TEST(PipelineSchedule, EveryPassOnceAndNoDeadlock) {
  int checked = 0;
  for (PipelineSchedule kind :
       {PipelineSchedule::k1F1B, PipelineSchedule::kAllForwardAllBackward}) {
    for (int pp = 1; pp <= 8; ++pp) {
      for (int v = 1; v <= 4; ++v) {
        for (int m = 1; m <= 24; ++m) {
          if (!CheckSchedule(kind, pp, v, m).ok()) continue;
          const auto schedules = AllRanks(kind, pp, v, m);
          for (int r = 0; r < pp; ++r) {
            std::set<std::tuple<int, int, int>> seen;
            for (const PipeAction& a : schedules[r]) {
              EXPECT_TRUE(seen.insert({a.kind, a.micro, a.chunk}).second)
                  << "pp " << pp << " v " << v << " m " << m << " rank " << r;
              EXPECT_TRUE(a.micro >= 0 && a.micro < m && a.chunk >= 0 && a.chunk < v);
            }
            EXPECT_EQ(seen.size(), static_cast<size_t>(2 * m * v));
          }
          auto sim = SimulatePipeline(schedules, v);
          ASSERT_TRUE(sim.ok()) << "pp " << pp << " v " << v << " m " << m << ": " << sim.status();
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 500);
}

TEST(PipelineSchedule, OneFOneBBubbleIsTheClosedForm) {
  for (int pp : {1, 2, 4, 8}) {
    for (int m : {1, 4, 8, 16, 32}) {
      auto sim = SimulatePipeline(AllRanks(PipelineSchedule::k1F1B, pp, 1, m), 1);
      ASSERT_TRUE(sim.ok());
      EXPECT_NEAR(sim->bubble, TheoreticalBubble(pp, 1, m), 1e-12) << "pp " << pp << " m " << m;
      for (int r = 0; r < pp; ++r) EXPECT_EQ(sim->peak_in_flight[r], std::min(pp - r, m));
      auto afab = SimulatePipeline(AllRanks(PipelineSchedule::kAllForwardAllBackward, pp, 1, m), 1);
      ASSERT_TRUE(afab.ok());
      EXPECT_NEAR(afab->bubble, TheoreticalBubble(pp, 1, m), 1e-12);
      for (int r = 0; r < pp; ++r) EXPECT_EQ(afab->peak_in_flight[r], m);
    }
  }
}

TEST(PipelineSchedule, InterleavingShrinksTheBubble) {
  for (int pp : {2, 4}) {
    for (int m : {4, 8, 16}) {
      auto plain = SimulatePipeline(AllRanks(PipelineSchedule::k1F1B, pp, 1, m), 1);
      auto inter = SimulatePipeline(AllRanks(PipelineSchedule::k1F1B, pp, 2, m), 2, 0.5, 1.0);
      ASSERT_TRUE(plain.ok() && inter.ok());
      EXPECT_LT(inter->bubble, plain->bubble) << "pp " << pp << " m " << m;
      EXPECT_NEAR(inter->bubble, TheoreticalBubble(pp, 2, m), 0.05) << "pp " << pp << " m " << m;
    }
  }
}

TEST(PipelineSplit, EvenAccountedExplicitAndRefusals) {
  auto even = SplitLayers(8, {4, 1, {}, false, false});
  ASSERT_TRUE(even.ok());
  EXPECT_EQ(*even, (std::vector<int64_t>{2, 2, 2, 2}));
  auto accounted = SplitLayers(6, {4, 1, {}, true, true});
  ASSERT_TRUE(accounted.ok());
  EXPECT_EQ(*accounted, (std::vector<int64_t>{1, 2, 2, 1}));
  auto interleaved = SplitLayers(8, {2, 2, {}, false, false});
  ASSERT_TRUE(interleaved.ok());
  StagePlan r1 = PlanOfRank(*interleaved, 1, 2);
  ASSERT_EQ(r1.chunks.size(), 2u);
  EXPECT_EQ(r1.chunks[0].first_layer, 2);  // virtual stage 1
  EXPECT_EQ(r1.chunks[1].first_layer, 6);  // virtual stage 3, the last
  EXPECT_TRUE(r1.holds_output() && !r1.holds_embedding());
  EXPECT_EQ(r1.ChunkOfLayer(7), 1);
  EXPECT_EQ(r1.ChunkOfLayer(4), -1);

  auto odd = SplitLayers(7, {2, 2, {}, false, false});
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.status().message().find("2 x 2 = 4 stages do not divide the 7 layers"),
            std::string::npos)
      << odd.status();
  EXPECT_NE(odd.status().message().find("parallel.pipeline_layers"), std::string::npos);
  auto too_many = SplitLayers(3, {4, 1, {}, false, false});
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("left empty"), std::string::npos);
  auto listed = SplitLayers(6, {3, 1, {1, 3, 2}, false, false});
  ASSERT_TRUE(listed.ok());
  auto empty_middle = SplitLayers(6, {3, 1, {3, 0, 3}, false, false});
  ASSERT_FALSE(empty_middle.ok());
  EXPECT_NE(empty_middle.status().message().find("virtual stage 1 (pp rank 1) without layers"),
            std::string::npos)
      << empty_middle.status();
  auto wrong_sum = SplitLayers(6, {3, 1, {1, 1, 1}, false, false});
  ASSERT_FALSE(wrong_sum.ok());
  EXPECT_NE(wrong_sum.status().message().find("summing to 3"), std::string::npos);

  absl::Status few = CheckSchedule(PipelineSchedule::k1F1B, 4, 2, 6);
  EXPECT_NE(few.message().find("a step has 6 micro-batches"), std::string::npos) << few;
  EXPECT_TRUE(CheckSchedule(PipelineSchedule::k1F1B, 4, 1, 3).ok());  // 1F1B takes any m
}

}  // namespace
}  // namespace braid
