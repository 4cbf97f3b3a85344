// Facts about the running process: the BLAS library LibTorch resolved, peak memory.
#pragma once
#include <string>

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

}  // namespace braid
