// The command lines of braid's tools, on Abseil's flags library. A tool defines its flags with
// ABSL_FLAG in its main file and calls ParseCommandLineOrExit first thing:
//   --name=value | --name value | --bool | --bool=false | --bool 0; "--" ends the flags.
//   --help / -h: the usage and every flag of the tool (default and help) on stdout, exit 0.
//   A usage error (an unknown flag, with the closest known name; a missing or unparsable value; a
//   wrong number of arguments): one line naming it and "see --help" on stderr, exit 2.
// Repeatable flags (--set a=1 --set b=2) are std::vector<std::string> flags named in `repeated`:
// each occurrence appends its value as written (no splitting at commas).
#pragma once
#include <string>
#include <vector>

#include "absl/flags/flag.h"

namespace braid {

struct CommandLine {
  const char* main_file = "";  // __FILE__ of the tool's main: its flags are those defined there
  std::string usage;           // the synopsis lines --help prints first
  std::vector<absl::Flag<std::vector<std::string>>*> repeated;
  int min_args = 0;  // positional arguments (a subcommand, files)
  int max_args = 0;  // -1: any number
};

// Parses argv into the tool's flags; returns the positional arguments. Exits on --help (0) and
// on a usage error (2). Also installs the tool's last line of defence: an exception no code
// caught (an allocation that failed, a LibTorch check) ends the process with "<tool>: error:
// <its first line>" and exit status 1, never std::terminate's abort and core dump.
std::vector<std::string> ParseCommandLineOrExit(int argc, char** argv, const CommandLine& spec);

// A usage error found after parsing (a value out of range, a missing required flag): prints
// "<tool>: message" and "see --help" and exits with 2.
[[noreturn]] void UsageError(const std::string& message);

}  // namespace braid
