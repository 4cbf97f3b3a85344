// `pretrain`: starts the training process with the stop signals already held back.
//
// The trainer (braid-pretrain, next to this file's binary) loads LibTorch's ~300 libraries before
// any of its own code runs: a third of a second in which SIGUSR1 or SIGTERM (a Slurm warning, a
// preemption) would kill the rank. This launcher links nothing but the C library, so it starts in
// about a millisecond; it blocks SIGUSR1, SIGTERM and SIGINT and executes the trainer in the same
// process (same pid: mpirun and Slurm deliver their signals to it). The blocked mask survives the
// exec, so a signal sent during the loading waits; the trainer installs its handlers first thing
// and unblocks the signals, and the run stops cleanly at its first step boundary.
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGUSR1);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    fprintf(stderr, "pretrain: cannot find its own path: %s\n", strerror(errno));
    return 1;
  }
  self[n] = '\0';
  char* slash = strrchr(self, '/');
  char worker[PATH_MAX + 32];
  snprintf(worker, sizeof(worker), "%.*s/braid-pretrain", static_cast<int>(slash - self), self);
  execv(worker, argv);  // argv[0] stays "pretrain" for messages
  fprintf(stderr, "pretrain: cannot start %s: %s. HINT: rebuild (tools/setup.sh).\n", worker,
          strerror(errno));
  return 1;
}
