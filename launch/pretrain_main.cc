// `pretrain`: the training entry point, one process per rank under mpirun or Slurm.
//   pretrain --recipe FILE [--set section.key=value]... [--print-config] [--run-dir DIR]
//            [--resume STEP_DIR]   (without it: continue from <checkpoint dir>/latest if present,
//                                  unless checkpoint.resume=false)
//   pretrain --self-check [--tp N] [--fail-rank R [--fail-mode error|crash|hang]] [--comm-timeout
//   S]
// --self-check runs every collective on the world and on a TP x DP layout against closed forms.
// --fail-rank R makes rank R fail on purpose, to test that one failing rank ends the whole job:
// by returning an error, by crashing (SIGSEGV), or by hanging outside the collectives while its
// peers wait (they give up after --comm-timeout seconds).
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "braid/build_config.h"
#include "framework/core/config.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/core/system.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/dist/selfcheck.h"
#include "framework/train/device.h"
#include "framework/train/trainer.h"
#include "recipes/registry.h"

#include <filesystem>

namespace braid {
namespace {

constexpr char kUsage[] =
    "usage: pretrain --recipe FILE [--set section.key=value]... [--print-config] [--run-dir DIR]\n"
    "                [--resume CHECKPOINT_STEP_DIR]\n"
    "       pretrain --self-check [--tp N] [--fail-rank R [--fail-mode error|crash|hang]]\n"
    "                [--comm-timeout SECONDS]\n";

struct Args {
  std::string recipe;
  std::vector<std::string> overrides;
  bool print_config = false;
  std::string resume;  // a checkpoint step directory
  bool self_check = false;
  int tp = 0;  // 0 -> 2 when the world is even, else 1
  int fail_rank = -1;
  std::string fail_mode = "error";
  int comm_timeout_s = 0;
};

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_inline = false;
    if (size_t eq = flag.find('=');
        flag.rfind("--", 0) == 0 && eq != std::string::npos && flag.rfind("--set", 0) != 0) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline = true;
    }
    auto next = [&]() -> absl::StatusOr<std::string> {
      if (has_inline) return value;
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value.\n", kUsage));
      }
      return std::string(argv[++i]);
    };
    auto next_int = [&](int* out) -> absl::Status {
      BRAID_ASSIGN_OR_RETURN(std::string v, next());
      if (!absl::SimpleAtoi(v, out)) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": expected an integer, got '", v, "'."));
      }
      return absl::OkStatus();
    };
    if (flag == "--recipe") {
      BRAID_ASSIGN_OR_RETURN(a.recipe, next());
    } else if (flag == "--set") {
      BRAID_ASSIGN_OR_RETURN(std::string v, next());
      a.overrides.push_back(v);
    } else if (flag.rfind("--set=", 0) == 0) {
      a.overrides.push_back(flag.substr(6));
    } else if (flag == "--run-dir") {
      BRAID_ASSIGN_OR_RETURN(std::string v, next());
      a.overrides.push_back(absl::StrCat("logging.run_dir=", v));
    } else if (flag == "--resume") {
      BRAID_ASSIGN_OR_RETURN(a.resume, next());
    } else if (flag == "--print-config") {
      a.print_config = true;
    } else if (flag == "--self-check") {
      a.self_check = true;
    } else if (flag == "--tp") {
      BRAID_RETURN_IF_ERROR(next_int(&a.tp));
    } else if (flag == "--fail-rank") {
      BRAID_RETURN_IF_ERROR(next_int(&a.fail_rank));
    } else if (flag == "--fail-mode") {
      BRAID_ASSIGN_OR_RETURN(a.fail_mode, next());
      if (a.fail_mode != "error" && a.fail_mode != "crash" && a.fail_mode != "hang") {
        return absl::InvalidArgumentError("--fail-mode: expected error, crash or hang.");
      }
    } else if (flag == "--comm-timeout") {
      BRAID_RETURN_IF_ERROR(next_int(&a.comm_timeout_s));
    } else if (flag == "--help" || flag == "-h") {
      return absl::CancelledError(kUsage);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown argument '", argv[i], "'.\n", kUsage));
    }
  }
  if (!a.self_check && a.recipe.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--recipe FILE is required.\n", kUsage));
  }
  return a;
}

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
    std::string hosts;
    for (int r = 0; r < rt.world_size(); ++r) {
      std::string h;
      for (int i = 0; i < 64 && all[r][i].item<int>() != 0; ++i)
        h.push_back(static_cast<char>(all[r][i].item<int>()));
      absl::StrAppend(&hosts, r ? ", " : "", r, ":", h);
    }
    BLOG(INFO, "meta") << "world " << sizes.world_size << " = TP " << sizes.tp << " x DP "
                       << sizes.dp << "; ranks on hosts: " << hosts
                       << (rt.scheduler().empty() ? "" : "; " + rt.scheduler());
    BLOG(DEBUG, "meta") << "effective config:\n" << ConfigToYaml(config, &sizes);
  }
}

// --print-config: the effective config with the derived sizes. The vocabulary comes from the
// tokenizer; when that cannot be read yet (the data not prepared), the sizes that need it say so.
absl::Status PrintConfig(const Runtime& rt, const Config& config) {
  BRAID_ASSIGN_OR_RETURN(const Family* family, FindFamily(config));
  BRAID_RETURN_IF_ERROR(family->Check(config));
  absl::StatusOr<ResolvedRun> run = ResolveRun(config, rt.world_size());
  std::string text;
  if (run.ok()) {
    text = ConfigToYaml(run->config, &run->sizes);
  } else {  // the sizes that need no vocabulary must still be valid
    BRAID_ASSIGN_OR_RETURN(DerivedSizes sizes, DeriveSizes(config, rt.world_size()));
    text = absl::StrCat(ConfigToYaml(config, &sizes),
                        "# vocabulary not resolved: ", run.status().message(), "\n");
  }
  if (rt.rank() == 0) std::fputs(text.c_str(), stdout);
  return absl::OkStatus();
}

absl::Status Pretrain(const Runtime& rt, const Args& args) {
  BRAID_ASSIGN_OR_RETURN(Config loaded, LoadConfig(args.recipe, args.overrides));
  if (args.print_config) return PrintConfig(rt, loaded);
  // Before anything is built or written: a device this machine cannot give is refused now.
  BRAID_RETURN_IF_ERROR(ResolveTrainDevice(loaded, rt.rank()).status());
  BRAID_ASSIGN_OR_RETURN(ResolvedRun run, ResolveRun(loaded, rt.world_size()));
  const Config& config = run.config;
  SetCollectiveTimeout(config.parallel.comm_timeout_s);
  SetLogAllRanks(config.logging.all_ranks);
  SetLogLevel(config.logging.level == "debug"     ? LogLevel::kDebug
              : config.logging.level == "warning" ? LogLevel::kWarning
              : config.logging.level == "error"   ? LogLevel::kError
                                                  : LogLevel::kInfo);
  {
    std::error_code ec;
    std::filesystem::create_directories(config.logging.run_dir + "/logs", ec);
    SetLogFile(absl::StrFormat("%s/logs/rank%d.log", config.logging.run_dir, rt.rank()));
  }
  LogRunMetadata(rt, config, run.sizes);
  int threads = static_cast<int>(config.train.threads);
  if (threads <= 0) {
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / rt.local_size());
  }
  torch::set_num_threads(threads);
  BRAID_ASSIGN_OR_RETURN(ParallelLayout layout,
                         ParallelLayout::Create(rt.world(), config.parallel.tensor_parallel_size));
  BLOG(INFO, "main") << absl::StrFormat(
      "%s: %d ranks (%s), TP %d x DP %d, recipe %s, run dir %s", args.recipe, rt.world_size(),
      rt.mpi_version(), layout.tp_size, layout.dp_size, config.recipe, config.logging.run_dir);
  const RunContext ctx{config, run.sizes, layout, rt.local_rank()};
  BRAID_ASSIGN_OR_RETURN(
      std::shared_ptr<TpModule> model,
      run.family->BuildModel(TpEnv{layout.tp, static_cast<uint64_t>(config.seed)}, config,
                             run.sizes));
  BRAID_ASSIGN_OR_RETURN(FamilyData data, run.family->BuildData(ctx));
  RecipeParts parts;
  parts.task = run.family->MakeTask(model, ctx);
  parts.train = data.train;
  parts.valid = data.valid;
  parts.notes = data.notes;
  parts.vocab_size = run.sizes.vocab_size;
  InstallStopSignalHandlers();
  TrainOptions options;
  options.resume_from = args.resume;
  BRAID_ASSIGN_OR_RETURN(TrainResult result,
                         Train(config, run.sizes, layout, std::move(parts), options));
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

int Main(int argc, char** argv) {
  absl::StatusOr<Args> args = ParseArgs(argc, argv);
  if (!args.ok()) {
    std::fputs(std::string(args.status().message()).c_str(), stderr);
    std::fputs("\n", stderr);
    return absl::IsCancelled(args.status()) ? 0 : 2;
  }
  absl::StatusOr<std::unique_ptr<Runtime>> rt = Runtime::Init(&argc, &argv);
  if (!rt.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(rt.status().message()).c_str());
    return 2;
  }
  absl::Status s = args->self_check ? SelfCheck(**rt, *args) : Pretrain(**rt, *args);
  if (absl::IsCancelled(s)) {  // preempted: every rank saved and agreed; exit together
    BLOG(WARNING, "main") << s.message();
    return kPreemptedExitCode;
  }
  if (!s.ok()) {
    BLOG(ERROR, "main") << s.message();
    // One rank's error ends the job: peers may be waiting in a collective for this rank.
    if ((*rt)->world_size() > 1) Runtime::Abort(1);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) { return braid::Main(argc, argv); }
