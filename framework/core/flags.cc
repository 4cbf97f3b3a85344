// Command-line parsing over Abseil flags (see flags.h).
#include "framework/core/flags.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <new>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/strings.h"

namespace braid {
namespace {

std::string g_program = "braid";

// Flags are written with dashes (--max-shard-mb, as Megatron's and most tools' are); ABSL_FLAG
// names use underscores.
std::string Dashed(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

// The flags defined in the tool's main file, by their dashed name.
// (Abseil reports a flag's file without its leading slashes.)
std::map<std::string, absl::CommandLineFlag*> ToolFlags(const char* main_file) {
  std::string file = main_file;
  file.erase(0, file.find_first_not_of('/'));
  std::map<std::string, absl::CommandLineFlag*> out;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->Filename() == file) out[Dashed(std::string(name))] = flag;
  }
  return out;
}

void PrintHelp(const CommandLine& spec) {
  std::string text = spec.usage;
  if (!text.empty() && text.back() != '\n') text += '\n';
  auto flags = ToolFlags(spec.main_file);
  if (!flags.empty()) text += "\nflags:\n";
  for (const auto& [name, flag] : flags) {
    const std::string def = flag->DefaultValue();
    absl::StrAppendFormat(&text, "  --%s%s\n      %s\n", name,
                          def.empty() ? "" : absl::StrCat(" (default: ", def, ")"), flag->Help());
  }
  text += "  --help, -h\n      this text\n";
  std::fputs(text.c_str(), stdout);
}

[[noreturn]] void OnTerminate() {
  std::string what = "an unknown exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      what =
          "out of memory (an allocation failed). HINT: a smaller model, batch or input, or "
          "more memory";
    } catch (const std::exception& x) {
      what = FirstLine(x.what());
    } catch (...) {
    }
  } else {
    what = "std::terminate without an exception";
  }
  std::fprintf(stderr, "%s: error: %s\n", g_program.c_str(), what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

}  // namespace

void UsageError(const std::string& message) {
  std::fprintf(stderr, "%s: %s\nsee %s --help\n", g_program.c_str(), message.c_str(),
               g_program.c_str());
  std::exit(2);
}

std::vector<std::string> ParseCommandLineOrExit(int argc, char** argv, const CommandLine& spec) {
  std::set_terminate(OnTerminate);
  if (argc > 0) {
    g_program = argv[0];
    if (size_t slash = g_program.rfind('/'); slash != std::string::npos) {
      g_program = g_program.substr(slash + 1);
    }
  }
  const auto flags = ToolFlags(spec.main_file);
  std::map<std::string, absl::Flag<std::vector<std::string>>*> repeated;
  std::map<std::string, std::vector<std::string>> repeated_values;
  for (auto* f : spec.repeated) {
    repeated[Dashed(std::string(absl::GetFlagReflectionHandle(*f).Name()))] = f;
  }
  std::vector<std::string> names;
  for (const auto& [name, f] : flags) names.push_back(name);

  std::vector<std::string> args;
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (flags_done || a.size() < 2 || a[0] != '-' || (a[1] != '-' && a != "-h")) {
      args.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      PrintHelp(spec);
      std::exit(0);
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    name = Dashed(name);  // --max_shard_mb works too
    auto it = flags.find(name);
    if (it == flags.end()) {
      const std::string guess = ClosestMatch(name, names);
      UsageError(absl::StrCat("unknown flag '--", name, "'.",
                              guess.empty() ? "" : absl::StrCat(" Did you mean '--", guess, "'?")));
    }
    absl::CommandLineFlag* flag = it->second;
    if (!inline_value) {
      if (flag->IsOfType<bool>()) {
        // --flag alone is true; "--flag 0" / "--flag 1" (and true/false) also work.
        const std::string next = i + 1 < argc ? argv[i + 1] : "";
        const bool explicit_value = next == "0" || next == "1" || next == "true" || next == "false";
        value = explicit_value ? next : "true";
        i += explicit_value ? 1 : 0;
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        UsageError(absl::StrCat("--", name, " needs a value."));
      }
    }
    if (repeated.count(name)) {
      repeated_values[name].push_back(value);
      continue;
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      UsageError(absl::StrCat("--", name, ": '", value, "' is not a valid value (", error, ")."));
    }
  }
  for (const auto& [name, values] : repeated_values) absl::SetFlag(repeated[name], values);
  const int n = static_cast<int>(args.size());
  if (n < spec.min_args || (spec.max_args >= 0 && n > spec.max_args)) {
    UsageError(spec.max_args == 0 ? absl::StrCat("unexpected argument '", args[0], "'.")
                                  : absl::StrFormat("expected %s arguments, got %d.",
                                                    spec.min_args == spec.max_args
                                                        ? absl::StrCat(spec.min_args)
                                                        : absl::StrCat(spec.min_args, " or more"),
                                                    n));
  }
  return args;
}

}  // namespace braid
