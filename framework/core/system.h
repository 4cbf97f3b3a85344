// Facts about the running process (the BLAS library LibTorch resolved, peak memory) and running
// another program without a shell.
#pragma once
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace braid {

// The loaded shared objects whose name mentions BLAS (resolved through symlinks: Debian picks the
// BLAS behind libblas.so.3 with update-alternatives), plus OpenBLAS's own configuration string.
std::string BlasInUse();
// Whether this process's output reaches a terminal. Under mpirun the ranks' stdout is a pty
// whatever the user did with mpirun's, so there it asks about the parent (mpirun)'s stdout.
bool OutputIsTerminal();
// The machine's physical memory (MemTotal), in bytes; 0 when unknown.
double MachineMemoryBytes();
// Peak resident set size of this process (VmHWM), in MB.
double PeakRssMb();
// Seconds on the steady clock (for durations).
double SteadySeconds();

// Runs the program argv[0] (looked up on PATH when it has no slash) with the arguments argv[1..]
// as they are: no shell reads them, so no path or value can run a command (the tree's source
// check, tests/check_no_shell.sh, refuses std::system and popen). Its standard output goes to
// this process's standard error when `stdout_to_stderr`. Waits for it; an error names the program
// when it cannot start, is killed by a signal or exits with a non-zero status.
absl::Status RunProgram(const std::vector<std::string>& argv, bool stdout_to_stderr = false);
// The pid of the program RunProgram is waiting for, or 0 (a process that must end at once ends it
// too: framework/core/stop.h).
int RunningChildPid();

}  // namespace braid
