// `pretrain`: the training entry point, one process per rank under mpirun or Slurm.
//   pretrain --recipe FILE [--set section.key=value]... [--print-config] [--run-dir DIR]
//            [--resume STEP_DIR] [--status-file FILE]
//     (without --resume: continue from <checkpoint dir>/latest if present, unless
//     checkpoint.resume=false)
//   pretrain --self-check [--tp N] [--fail-rank R [--fail-mode error|crash|hang]]
//            [--comm-timeout S]
// Rank 0 records how the run ended in --status-file (default <run_dir>/status): "running",
// "completed step N", "preempted step N" (a stop signal; a checkpoint of step N was saved; rerun
// to resume), or "failed: <message>". The Slurm templates requeue on "preempted", whatever exit
// code mpirun reports.
// --self-check runs every collective on the world and on a TP x DP layout against closed forms.
// --fail-rank R makes rank R fail on purpose, to test that one failing rank ends the whole job:
// by returning an error, by crashing (SIGSEGV), or by hanging outside the collectives while its
// peers wait (they give up after --comm-timeout seconds).
#include <torch/torch.h>

#include <signal.h>
#include <chrono>
#include <cmath>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "braid/build_config.h"
#include "framework/core/config.h"
#include "framework/core/files.h"
#include "framework/core/flags.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/core/stop.h"
#include "framework/core/strings.h"
#include "framework/core/system.h"
#include "framework/dist/layout.h"
#include "framework/dist/placement.h"
#include "framework/dist/runtime.h"
#include "framework/dist/selfcheck.h"
#include "framework/train/checkpoint.h"
#include "framework/train/device.h"
#include "framework/train/trainer.h"
#include "recipes/plan.h"
#include "recipes/registry.h"

#include <filesystem>

namespace braid {
namespace {

constexpr char kUsage[] =
    "usage: pretrain --recipe FILE [--set section.key=value]... [--run-dir DIR]\n"
    "                [--resume CHECKPOINT_STEP_DIR]\n"
    "                [--reset-position-ids] [--reset-attention-mask] [--eod-mask-loss]\n"
    "       pretrain --recipe FILE [--set section.key=value]... --print-config [--world-size N]\n"
    "       pretrain --recipe FILE [--set section.key=value]... --plan [--nodes N]\n"
    "                [--gpus-per-node N] [--gpu-memory-gb X] [--peak-tflops X] [--mfu F]\n"
    "                [--intra-node-gbps X] [--inter-node-gbps X]\n"
    "       pretrain --self-check [--tp N] [--fail-rank R [--fail-mode error|crash|hang]]\n"
    "                [--comm-timeout SECONDS]\n";

struct Args {
  std::string recipe;
  std::vector<std::string> overrides;
  bool print_config = false;
  bool plan = false;  // --plan: the planner's report for `cluster`
  ClusterSpec cluster;
  int world_size = 0;  // --print-config: plan for this many ranks (0: those launched)
  std::string resume;  // a checkpoint step directory
  std::string status_file;
  bool self_check = false;
  int tp = 0;  // 0 -> 2 when the world is even, else 1
  int fail_rank = -1;
  std::string fail_mode = "error";
  int comm_timeout_s = 0;
};

absl::Status SelfCheck(const Runtime& rt, const Args& args) {
  int tp = args.tp > 0 ? args.tp : (rt.world_size() % 2 == 0 ? 2 : 1);
  BLOG(INFO, "dist") << absl::StrFormat("self-check: %d ranks, %s, backend %s, torch %s",
                                        rt.world_size(), rt.mpi_version(), rt.world()->backend(),
                                        TORCH_VERSION);
  BLOG(INFO, "dist") << "rank " << rt.rank() << " on " << rt.host() << " local rank "
                     << rt.local_rank() << " of " << rt.local_size();
  if (args.comm_timeout_s > 0) SetCollectiveTimeout(args.comm_timeout_s);
  if (args.fail_rank == rt.rank()) {
    BLOG(WARNING, "dist") << "rank " << rt.rank() << " fails on purpose (--fail-rank "
                          << args.fail_rank << ", mode " << args.fail_mode << ")";
    if (args.fail_mode == "crash") std::raise(SIGSEGV);
    if (args.fail_mode == "hang") std::this_thread::sleep_for(std::chrono::hours(24));
    return absl::InternalError(
        absl::StrFormat("rank %d fails on purpose (--fail-rank %d)", rt.rank(), args.fail_rank));
  }
  BRAID_ASSIGN_OR_RETURN(ParallelLayout layout, ParallelLayout::Create(rt.world(), tp));
  int total = 0;
  for (const auto& comm : {layout.world, layout.tp, layout.dp}) {
    int n = 0;
    BRAID_RETURN_IF_ERROR(selfcheck::RunAll(*comm, &n));
    total += n;
    BLOG(INFO, "dist") << absl::StrFormat("group %-5s size %d (%s): %d collective checks passed",
                                          comm->name(), comm->size(), comm->backend(), n);
  }
  BLOG(INFO, "dist") << absl::StrFormat(
      "self-check passed: %d checks on world=%d = TP %d x DP %d; rank %d is (tp %d, dp %d)", total,
      layout.world_size, layout.tp_size, layout.dp_size, layout.rank, layout.tp_rank,
      layout.dp_rank);
  return absl::OkStatus();
}

// The run's metadata, once at the start: source revision, library versions, the BLAS, the layout
// and every rank's host, then the effective config (in the log file of rank 0).
void LogRunMetadata(const Runtime& rt, const Config& config, const DerivedSizes& sizes) {
  auto nccl = NcclVersion();
  BLOG(INFO, "meta") << absl::StrFormat("braid %s | LibTorch %s | %s | NCCL %s | BLAS %s",
                                        BRAID_GIT_REVISION, TORCH_VERSION, rt.mpi_version(),
                                        nccl.ok() ? *nccl : std::string("not built"), BlasInUse());
  at::Tensor name = torch::zeros({64}, torch::kInt);
  const std::string& host = rt.host();
  for (size_t i = 0; i < host.size() && i < 63; ++i) name[i] = static_cast<int>(host[i]);
  at::Tensor all = torch::zeros({rt.world_size(), 64}, torch::kInt);
  if (rt.world()->AllGather(name, all).ok() && rt.rank() == 0) {
    std::vector<std::string> host_of(rt.world_size());
    for (int r = 0; r < rt.world_size(); ++r) {
      for (int i = 0; i < 64 && all[r][i].item<int>() != 0; ++i)
        host_of[r].push_back(static_cast<char>(all[r][i].item<int>()));
    }
    BLOG(INFO, "meta") << "world " << sizes.world_size << " = TP " << sizes.tp << " x DP "
                       << sizes.dp << "; " << DescribePlacement(host_of, sizes.tp)
                       << (rt.scheduler().empty() ? "" : "; " + rt.scheduler());
    for (const std::string& w : TpGroupsAcrossHosts(host_of, sizes.tp)) BLOG(WARNING, "meta") << w;
    BLOG(DEBUG, "meta") << "effective config:\n" << ConfigToYaml(config, &sizes);
  }
}

// The checkpoint root of a config: checkpoint.dir, or <run_dir>/checkpoints.
std::string CheckpointRoot(const Config& config) {
  return config.checkpoint.dir.empty()
             ? (std::filesystem::path(config.logging.run_dir) / "checkpoints").string()
             : config.checkpoint.dir;
}

// Rank 0 takes the lock of the run directory and of the checkpoint directory (whatever run
// directory names it: two runs whose checkpoint.dir is one folder never share it); every rank
// learns whether it did (a collective), so none writes into a directory in use.
absl::Status LockRunDirectories(const Runtime& rt, const Config& config,
                                std::vector<std::unique_ptr<DirectoryLock>>* locks) {
  absl::Status status;
  if (rt.rank() == 0) {
    std::vector<std::pair<std::string, std::string>> dirs = {
        {config.logging.run_dir, "the run directory"},
        {CheckpointRoot(config), "the checkpoint directory"}};
    std::error_code ec;
    if (std::filesystem::weakly_canonical(dirs[0].first, ec) ==
        std::filesystem::weakly_canonical(dirs[1].first, ec)) {
      dirs.pop_back();  // checkpoint.dir is the run directory itself: one lock
    }
    for (const auto& [dir, what] : dirs) {
      absl::StatusOr<std::unique_ptr<DirectoryLock>> lock = DirectoryLock::Acquire(dir, what);
      if (!lock.ok()) {
        status = lock.status();
        break;
      }
      locks->push_back(*std::move(lock));
    }
  }
  torch::Tensor failed = torch::full({1}, status.ok() ? 0 : 1, torch::kInt);
  BRAID_RETURN_IF_ERROR(rt.world()->AllReduce(failed, ReduceOp::kMax));
  if (!status.ok()) return status;
  if (failed.item<int>() != 0) {
    return absl::FailedPreconditionError("rank 0 could not lock the run directory (see its log)");
  }
  return absl::OkStatus();
}

// This run's id (rank 0): <run_dir>/run_id, made at the run's first start. A run directory
// without one whose own checkpoint folder holds checkpoints (written before run ids existed, or
// the file deleted) takes the id of the newest of them; otherwise the id is new (UTC time and 32
// random bits). Checkpoints record it; checkpoint_policy.h refuses another run's.
absl::StatusOr<std::string> RunIdOf(const Config& config) {
  namespace fs = std::filesystem;
  const fs::path file = fs::path(config.logging.run_dir) / "run_id";
  if (std::ifstream in(file); in) {
    std::string id;
    if (in >> id && !id.empty()) return id;
  }
  std::string id;
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(CheckpointRoot(config), ec);
  const fs::path run = fs::weakly_canonical(config.logging.run_dir, ec);
  if (root.string().rfind(run.string() + "/", 0) == 0) {  // its own checkpoint folder
    const CheckpointListing found = ListCheckpoints(root.string());
    if (!found.complete.empty()) {
      absl::StatusOr<CheckpointOrigin> o =
          ReadCheckpointOrigin((root / found.complete.back()).string());
      if (o.ok()) id = o->run_id;
    }
  }
  if (id.empty()) {
    uint32_t bits = 0;
    std::ifstream urandom("/dev/urandom", std::ios::binary);
    urandom.read(reinterpret_cast<char*>(&bits), sizeof(bits));
    id = absl::StrFormat("%s-%08x",
                         absl::FormatTime("%Y%m%dT%H%M%S", absl::Now(), absl::UTCTimeZone()), bits);
  }
  BRAID_RETURN_IF_ERROR(WriteFileAtomically(file.string(), id + "\n"));
  return id;
}

// --print-config: the effective config with the derived sizes. The vocabulary comes from the
// tokenizer; when that cannot be read yet (the data not prepared), the sizes that need it say so.
absl::Status PrintConfig(const Runtime& rt, const Config& config, int world_size) {
  const int world = world_size > 0 ? world_size : rt.world_size();
  // Only a tokenizer file that is not there yet (the data not prepared) is worked around; any
  // other problem (a vocabulary size that contradicts the tokenizer) is the error a run gives.
  BRAID_ASSIGN_OR_RETURN(ResolvedRun run, ResolveRun(config, world, true));
  std::string text = FamilyConfigYaml(*run.family, run.config, &run.sizes);
  if (run.unresolved_vocab.empty()) {
    absl::StrAppend(
        &text, "# estimate: ", EstimateMemory(*run.family, run.config, run.sizes).ToString(), "\n");
  } else {  // the sizes that need no vocabulary are valid
    absl::StrAppend(&text, "# vocabulary not resolved: ", run.unresolved_vocab, "\n");
  }
  if (rt.rank() == 0) std::fputs(text.c_str(), stdout);
  return absl::OkStatus();
}

// --plan: the planner's report (recipes/plan.h) for the config on the cluster described by the
// flags, its sizes derived for nodes x GPUs per node ranks.
absl::Status Plan(const Runtime& rt, const Config& config, const ClusterSpec& cluster) {
  BRAID_ASSIGN_OR_RETURN(ResolvedRun run, ResolveRun(config, cluster.world()));
  if (rt.rank() == 0) {
    std::fputs(PlanReport(*run.family, run.config, run.sizes, cluster).c_str(), stdout);
  }
  return absl::OkStatus();
}

void RecordStatus(const std::string& path, const std::string& text);

// The embedded default corpus (build/data/fortunes: Debian's fortunes, a SentencePiece model,
// the preprocessed datasets) is made on first use by tools/data/prepare_default_corpus.sh (about
// 5 s) from the repository this binary was built in, when the config names a missing file of
// that folder: <build dir>/data/fortunes, the build this binary belongs to, or the folder the
// environment's BRAID_DEFAULT_CORPUS_DIR names (a node-local scratch folder; launch.sh passes
// BRAID_* variables to every rank). Only that folder: a path of the user's that merely looks like
// it is never written (the data loader reports it missing), and the script refuses a folder that
// holds some of the corpus files (it never writes over what is there). The script runs without a
// shell (RunProgram): no path is interpreted. Two rounds, every rank waiting for each: first rank 0
// prepares it; then the local rank 0 of any node that still lacks it (its folder is node-local, not
// shared) prepares its own. So on a shared filesystem one process writes the folder, never two
// nodes at once.
absl::Status PrepareDefaultCorpus(const Runtime& rt, const Config& c) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path bin = fs::read_symlink("/proc/self/exe", ec).parent_path();
  const char* chosen = std::getenv("BRAID_DEFAULT_CORPUS_DIR");
  const fs::path folder = fs::weakly_canonical(chosen != nullptr && *chosen != '\0'
                                                   ? fs::absolute(chosen, ec)
                                                   : bin.parent_path() / "data" / "fortunes",
                                               ec);
  const fs::path script = bin.parent_path().parent_path() / "tools/data/prepare_default_corpus.sh";
  auto missing = [&] {
    std::vector<std::string> files = {c.data.vocab_file};
    for (const std::string& p : c.data.paths) files.push_back(p + ".idx");
    for (const std::string& f : files) {
      std::error_code e;
      if (f.empty() || fs::exists(f, e)) continue;
      if (fs::weakly_canonical(fs::absolute(f, e), e).parent_path() == folder) return true;
    }
    return false;
  };
  for (int round = 0; round < 2; ++round) {
    const bool here = missing();
    torch::Tensor any = torch::full({1}, here ? 1 : 0, torch::kInt);
    BRAID_RETURN_IF_ERROR(rt.world()->AllReduce(any, ReduceOp::kMax));
    if (any.item<int>() == 0) return absl::OkStatus();
    const bool preparer = round == 0 ? rt.rank() == 0 : rt.local_rank() == 0;
    absl::Status prepared;
    if (preparer && here) {
      const std::string what = absl::StrCat("preparing the embedded default corpus in ",
                                            folder.string(), " (", script.string(), ")");
      if (round == 0) {
        BLOG(INFO, "data") << what;
      } else {  // a node whose folder is its own: say so from whichever rank it is
        BLOG(WARNING, "data") << what << " on " << rt.host() << ": not shared with rank 0's";
      }
      SetStopPhase("preparing the default corpus");
      prepared = RunProgram({"bash", script.string(), folder.string(), bin.string()},
                            /*stdout_to_stderr=*/true);
      SetStopPhase("start-up");
    }
    torch::Tensor bad = torch::full({1}, prepared.ok() ? 0 : 1, torch::kInt);
    BRAID_RETURN_IF_ERROR(rt.world()->AllReduce(bad, ReduceOp::kMax));
    if (bad.item<int>() != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("the config names the embedded default corpus (", folder.string(),
                       "), which is missing and could not be prepared",
                       prepared.ok() ? "" : absl::StrCat(": ", prepared.message()),
                       ". HINT: run tools/data/prepare_default_corpus.sh from the repository root "
                       "(launch/quickstart.sh does it) and read what it says."));
    }
  }
  return absl::OkStatus();
}

absl::Status Pretrain(const Runtime& rt, const Args& args, std::string* status_file) {
  BRAID_ASSIGN_OR_RETURN(Config loaded, LoadConfig(args.recipe, args.overrides));
  if (!args.print_config && !args.plan) BRAID_RETURN_IF_ERROR(PrepareDefaultCorpus(rt, loaded));
  if (args.print_config) return PrintConfig(rt, loaded, args.world_size);
  if (args.plan) return Plan(rt, loaded, args.cluster);
  // Before anything is built or written: a device this machine cannot give is refused now.
  BRAID_RETURN_IF_ERROR(ResolveTrainDevice(loaded, rt.rank()).status());
  BRAID_ASSIGN_OR_RETURN(ResolvedRun run, ResolveRun(loaded, rt.world_size()));
  const Config& config = run.config;
  // Before anything is allocated: a run this machine cannot hold is refused with the estimate.
  BRAID_RETURN_IF_ERROR(
      CheckMemory(EstimateMemory(*run.family, config, run.sizes), config, rt.local_size()));
  SetCollectiveTimeout(config.parallel.comm_timeout_s);
  SetLogAllRanks(config.logging.all_ranks);
  SetLogLevel(config.logging.level == LogChoice::kDebug     ? LogLevel::kDebug
              : config.logging.level == LogChoice::kWarning ? LogLevel::kWarning
              : config.logging.level == LogChoice::kError   ? LogLevel::kError
                                                            : LogLevel::kInfo);
  // The run directory (and a separate checkpoint directory) belongs to this job alone: rank 0
  // locks it before any rank writes there.
  std::vector<std::unique_ptr<DirectoryLock>> locks;
  BRAID_RETURN_IF_ERROR(LockRunDirectories(rt, config, &locks));
  if (rt.rank() == 0) {
    *status_file = args.status_file.empty()
                       ? (std::filesystem::path(config.logging.run_dir) / "status").string()
                       : args.status_file;
    RecordStatus(*status_file, "running");
    SetStopStatusFile(*status_file);  // the stop watchdog records a stop it ends there
  }
  {
    std::error_code ec;
    std::filesystem::create_directories(config.logging.run_dir + "/logs", ec);
    BRAID_RETURN_IF_ERROR(
        SetLogFile(absl::StrFormat("%s/logs/rank%d.log", config.logging.run_dir, rt.rank())));
  }
  LogRunMetadata(rt, config, run.sizes);
  int threads = static_cast<int>(config.train.threads);
  if (threads <= 0) {
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / rt.local_size());
  }
  torch::set_num_threads(threads);
  BRAID_ASSIGN_OR_RETURN(ParallelLayout layout,
                         ParallelLayout::Create(rt.world(), config.parallel.tensor_parallel_size,
                                                config.parallel.pipeline_parallel_size,
                                                config.parallel.expert_parallel_size));
  BLOG(INFO, "main") << absl::StrFormat(
      "%s: %d ranks (%s), TP %d x DP %d x PP %d%s, recipe %s, run dir %s", args.recipe,
      rt.world_size(), rt.mpi_version(), layout.tp_size, layout.dp_size, layout.pp_size,
      layout.ep_size > 1 ? absl::StrFormat(" (experts: EP %d of DP)", layout.ep_size) : "",
      config.recipe, config.logging.run_dir);
  const RunContext ctx{config, run.sizes, layout, rt.local_rank()};
  BRAID_ASSIGN_OR_RETURN(
      std::shared_ptr<TpModule> model,
      run.family->BuildModel(
          TpEnv{layout.tp, static_cast<uint64_t>(config.seed), config.parallel.sequence_parallel,
                layout.pp_rank, layout.ep_size > 1 ? layout.ep : nullptr},
          config, run.sizes));
  if (config.parallel.sequence_parallel) {
    if (layout.tp_size == 1) {
      BLOG(INFO, "main") << "parallel.sequence_parallel: TP is 1, nothing to split";
    } else {
      BLOG(INFO, "main") << "parallel.sequence_parallel: norms, dropout and residual adds on 1/"
                         << layout.tp_size << " of each sequence per rank";
    }
  }
  BRAID_ASSIGN_OR_RETURN(FamilyData data, run.family->BuildData(ctx));
  RecipeParts parts;
  parts.task = run.family->MakeTask(model, ctx);
  parts.train = data.train;
  parts.valid = data.valid;
  parts.notes = data.notes;
  parts.vocab_size = run.sizes.vocab_size;
  TrainOptions options;
  options.resume_from = args.resume;
  if (rt.rank() == 0) {
    BRAID_ASSIGN_OR_RETURN(options.run_id, RunIdOf(config));
  }
  BRAID_ASSIGN_OR_RETURN(TrainResult result,
                         Train(config, run.sizes, layout, std::move(parts), options));
  SetStopPhase("finishing (final weights, status)");
  if (rt.rank() == 0) {
    RecordStatus(
        *status_file,
        absl::StrFormat("%s step %d", result.preempted ? "preempted" : "completed", result.steps));
  }
  if (result.preempted) {
    return absl::CancelledError(absl::StrFormat(
        "stopped by a signal at step %d after saving a checkpoint; run the same command again "
        "to resume",
        result.steps));
  }
  BLOG(INFO, "main") << absl::StrFormat("done: %d steps (%d skipped), final valid loss %.4f",
                                        result.steps, result.skipped_steps, result.last_eval_loss);
  return absl::OkStatus();
}

// Writes how the run stands to the status file (rank 0; atomically; best effort).
void RecordStatus(const std::string& path, const std::string& text) {
  if (path.empty()) return;
  absl::Status s = WriteFileAtomically(path, text + "\n");
  if (!s.ok()) BLOG(WARNING, "main") << "cannot record the run's status: " << s.message();
}

int Main(int argc, char** argv, const Args& args) {
  absl::StatusOr<std::unique_ptr<Runtime>> rt = Runtime::Init(&argc, &argv);
  if (!rt.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(rt.status().message()).c_str());
    return 1;
  }
  std::string status_file;  // known once the run directory is (Pretrain sets it)
  StartStopWatchdog();
  absl::Status s;
  // No exception reaches the user as a crash: one that escapes (an allocation the estimate did
  // not foresee, a LibTorch check) ends the run with its message, like any other error.
  try {
    s = args.self_check ? SelfCheck(**rt, args) : Pretrain(**rt, args, &status_file);
  } catch (const std::bad_alloc&) {
    s = absl::ResourceExhaustedError(
        "out of memory. HINT: a smaller model, micro batch or sequence, more tensor parallelism, "
        "or fewer ranks per node (--print-config prints the estimate).");
  } catch (const std::exception& e) {
    s = absl::InternalError(absl::StrCat("unexpected error: ", FirstLine(e.what())));
  }
  const bool rank0 = (*rt)->rank() == 0;
  if (absl::IsCancelled(s)) {  // preempted: every rank saved and agreed; exit together
    BLOG(WARNING, "main") << s.message();
    return kPreemptedExitCode;
  }
  if (!s.ok()) {
    BLOG(ERROR, "main") << s.message();
    if (rank0) RecordStatus(status_file, absl::StrCat("failed: ", s.message()));
    // One rank's error ends the job: peers may be waiting in a collective for this rank.
    if ((*rt)->world_size() > 1) Runtime::Abort(1);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace braid

ABSL_FLAG(std::string, recipe, "", "the recipe YAML to train");
ABSL_FLAG(std::vector<std::string>, set, {}, "section.key=value override (repeatable)");
ABSL_FLAG(bool, print_config, false, "print the effective config and the derived sizes, then exit");
ABSL_FLAG(int32_t, world_size, 0,
          "--print-config: the number of ranks to plan for (default: the ranks launched)");
ABSL_FLAG(bool, plan, false,
          "print the planner's memory and step-time estimate for the cluster below, then exit");
ABSL_FLAG(int32_t, nodes, 1, "--plan: nodes");
ABSL_FLAG(int32_t, gpus_per_node, 8, "--plan: GPUs per node");
ABSL_FLAG(double, gpu_memory_gb, 80, "--plan: memory per GPU, GB");
ABSL_FLAG(double, peak_tflops, 989, "--plan: peak matmul rate per GPU in the training precision");
ABSL_FLAG(double, mfu, 0.4, "--plan: the fraction of the peak the compute is assumed to reach");
ABSL_FLAG(double, intra_node_gbps, 450, "--plan: GB/s per GPU within a node");
ABSL_FLAG(double, inter_node_gbps, 50, "--plan: GB/s per GPU between nodes");
ABSL_FLAG(std::string, run_dir, "", "the run directory (logging.run_dir)");
ABSL_FLAG(
    bool, reset_position_ids, false,
    "Megatron-LM's spelling of data.reset_position_ids=true (positions restart per document)");
ABSL_FLAG(bool, reset_attention_mask, false,
          "Megatron-LM's spelling of data.reset_attention_mask=true (attention within documents)");
ABSL_FLAG(
    bool, eod_mask_loss, false,
    "Megatron-LM's spelling of data.eod_mask_loss=true (no loss after end-of-document tokens)");
ABSL_FLAG(std::string, resume, "", "a checkpoint step directory to continue from");
ABSL_FLAG(std::string, status_file, "",
          "where rank 0 records how the run ended (default <run_dir>/status)");
ABSL_FLAG(bool, self_check, false, "check every collective against closed forms, then exit");
ABSL_FLAG(int32_t, tp, 0,
          "--self-check: the TP size of the layout checked (default 2 on an even world)");
ABSL_FLAG(int32_t, fail_rank, -1, "--self-check: this rank fails on purpose (tests)");
ABSL_FLAG(std::string, fail_mode, "error",
          "--self-check: how --fail-rank fails: error | crash | hang");
ABSL_FLAG(int32_t, comm_timeout, 0, "--self-check: seconds a collective waits for a peer");

// First of all, before any library's initialisers (the dynamic loader runs the executable's
// .preinit_array first): the stop signal handlers, then the signals the launcher
// (pretrain_launcher.cc) held back while LibTorch loaded are let through. A stop signal during
// start-up is kept for the first step boundary (the run saves and stops) instead of killing it.
static void InstallEarlySignalHandlers(int, char**, char**) {
  braid::InstallStopSignalHandlers();
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGUSR1);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_UNBLOCK, &stop, nullptr);
}
__attribute__((section(".preinit_array"),
               used)) static void (*const kEarlySignals)(int, char**,
                                                         char**) = &InstallEarlySignalHandlers;

int main(int argc, char** argv) {
  braid::CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage = braid::kUsage;
  cl.repeated = {&FLAGS_set};
  braid::ParseCommandLineOrExit(argc, argv, cl);
  braid::Args a;
  a.recipe = absl::GetFlag(FLAGS_recipe);
  a.overrides = absl::GetFlag(FLAGS_set);
  if (!absl::GetFlag(FLAGS_run_dir).empty()) {
    a.overrides.push_back("logging.run_dir=" + absl::GetFlag(FLAGS_run_dir));
  }
  if (absl::GetFlag(FLAGS_reset_position_ids))
    a.overrides.push_back("data.reset_position_ids=true");
  if (absl::GetFlag(FLAGS_reset_attention_mask)) {
    a.overrides.push_back("data.reset_attention_mask=true");
  }
  if (absl::GetFlag(FLAGS_eod_mask_loss)) a.overrides.push_back("data.eod_mask_loss=true");
  a.print_config = absl::GetFlag(FLAGS_print_config);
  a.world_size = absl::GetFlag(FLAGS_world_size);
  if (a.world_size < 0) braid::UsageError("--world-size must not be negative.");
  if (a.world_size > 0 && !a.print_config)
    braid::UsageError("--world-size goes with --print-config.");
  a.plan = absl::GetFlag(FLAGS_plan);
  a.cluster.nodes = absl::GetFlag(FLAGS_nodes);
  a.cluster.gpus_per_node = absl::GetFlag(FLAGS_gpus_per_node);
  a.cluster.gpu_memory_gb = absl::GetFlag(FLAGS_gpu_memory_gb);
  a.cluster.peak_tflops = absl::GetFlag(FLAGS_peak_tflops);
  a.cluster.mfu = absl::GetFlag(FLAGS_mfu);
  a.cluster.intra_node_gbps = absl::GetFlag(FLAGS_intra_node_gbps);
  a.cluster.inter_node_gbps = absl::GetFlag(FLAGS_inter_node_gbps);
  if (a.plan && a.print_config) braid::UsageError("--plan and --print-config are separate modes.");
  if (!a.plan) {  // a cluster flag set to something else than its default without --plan
    for (const absl::CommandLineFlag* f : {&absl::GetFlagReflectionHandle(FLAGS_nodes),
                                           &absl::GetFlagReflectionHandle(FLAGS_gpus_per_node),
                                           &absl::GetFlagReflectionHandle(FLAGS_gpu_memory_gb),
                                           &absl::GetFlagReflectionHandle(FLAGS_peak_tflops),
                                           &absl::GetFlagReflectionHandle(FLAGS_mfu),
                                           &absl::GetFlagReflectionHandle(FLAGS_intra_node_gbps),
                                           &absl::GetFlagReflectionHandle(FLAGS_inter_node_gbps)}) {
      if (f->CurrentValue() != f->DefaultValue()) {
        braid::UsageError(
            absl::StrCat("--", absl::StrReplaceAll(f->Name(), {{"_", "-"}}), " goes with --plan."));
      }
    }
  }
  // Written so that NaN fails every test (NaN compares false with everything).
  auto positive = [](double v) { return v > 0 && std::isfinite(v); };
  if (a.cluster.nodes < 1 || a.cluster.gpus_per_node < 1 || !positive(a.cluster.gpu_memory_gb) ||
      !positive(a.cluster.peak_tflops) || !(a.cluster.mfu > 0 && a.cluster.mfu <= 1) ||
      !positive(a.cluster.intra_node_gbps) || !positive(a.cluster.inter_node_gbps)) {
    braid::UsageError(
        "--nodes and --gpus-per-node must be at least 1, the memory, rates and bandwidths "
        "positive finite numbers, and --mfu in (0, 1].");
  }
  a.resume = absl::GetFlag(FLAGS_resume);
  a.status_file = absl::GetFlag(FLAGS_status_file);
  a.self_check = absl::GetFlag(FLAGS_self_check);
  a.tp = absl::GetFlag(FLAGS_tp);
  a.fail_rank = absl::GetFlag(FLAGS_fail_rank);
  a.fail_mode = absl::GetFlag(FLAGS_fail_mode);
  a.comm_timeout_s = absl::GetFlag(FLAGS_comm_timeout);
  if (!a.self_check && a.recipe.empty()) braid::UsageError("--recipe FILE is required.");
  if (a.fail_mode != "error" && a.fail_mode != "crash" && a.fail_mode != "hang") {
    braid::UsageError("--fail-mode: expected error, crash or hang.");
  }
  if (a.tp < 0 || a.comm_timeout_s < 0)
    braid::UsageError("--tp and --comm-timeout must not be negative.");
  return braid::Main(argc, argv, a);
}
