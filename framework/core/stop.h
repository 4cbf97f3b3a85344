// Stop signals: SIGUSR1, SIGTERM and SIGINT (a Slurm warning, a preemption or time limit, a
// Ctrl-C) ask a run to stop. The training loop honours them at its next step boundary, where
// every rank saves a checkpoint and exits with kPreemptedExitCode (checkpoint_policy.h). So that
// a signal always ends the process, in any phase (start-up, reading data, a step that does not
// finish), a watchdog thread gives the run a grace period from the signal to that boundary:
// max(BRAID_STOP_GRACE_S, default 120 s, and 3x the longest interval between step boundaries so
// far). Past it, or at a second stop signal before the boundary, the watchdog ends the process at
// once: the program RunProgram waits for is sent SIGTERM, rank 0's status file says "preempted
// (...)", and the exit code is kPreemptedExitCode; `latest` still names the previous checkpoint,
// so rerunning resumes from there. Once the loop acknowledges the stop (it is saving), the
// watchdog stands down: a save is never cut short by it.
#pragma once
#include <string>

namespace braid {

// Exit code of a run stopped by a signal (EX_TEMPFAIL): rerun to resume.
inline constexpr int kPreemptedExitCode = 75;

// Installs the handlers (async-signal-safe: they record the signal and its time). Called first
// thing, before any library's initialisers (launch/pretrain_main.cc).
void InstallStopSignalHandlers();
// Starts the watchdog thread (once main() runs: threads are not started before it).
void StartStopWatchdog();
// The first stop signal received, or 0.
int StopSignalReceived();
// The training loop reached a step boundary (the watchdog's measure of how long one takes).
void NoteStepBoundary();
// Every rank agreed to stop at this boundary and is saving: the watchdog stands down.
void AcknowledgeStop();
// Where the watchdog records how the run ended (rank 0's status file); empty: nowhere.
void SetStopStatusFile(const std::string& path);
// What the run is doing now, for the watchdog's message ("reading the data", "step 12").
void SetStopPhase(const char* phase);

}  // namespace braid
