// `preprocess_data`: plain text or JSON Lines -> Megatron `.bin`/`.idx` (docs/formats.md).
//
//   preprocess_data --input FILE|- --output-prefix PREFIX --tokenizer-type gpt2|wordpiece|
//       sentencepiece --vocab-file FILE [--merges-file FILE] [--lowercase|--cased]
//       [--json-keys text[,title...]] [--text-format auto|jsonl|lines|paragraphs]
//       [--append-eod] [--split-sentences] [--workers N] [--batch-docs N]
//   preprocess_data merge --output-prefix PREFIX INPUT_PREFIX...
//
// Output: {prefix}_{key}_{document|sentence}.bin/.idx, one pair per JSON key ("text" for plain
// text). Plain text is one document per line (lines) or documents separated by blank lines
// (paragraphs; auto picks jsonl for .jsonl/.json, else lines).
//
// Streaming: a reader thread cuts the input into batches of documents, N worker threads tokenize
// them (one tokenizer each), and the main thread writes batches strictly in input order, so the
// output is identical for any worker count; at most 4 x N batches are in flight, so memory does
// not grow with the corpus. Bad input (invalid UTF-8, a bad JSON line, a missing key, an empty
// document) is counted and reported with its line number; nothing crashes.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "framework/core/json.h"
#include "framework/core/status.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/sentences.h"
#include "framework/data/tokenizer.h"
#include "framework/data/unicode.h"

namespace braid {
namespace {

constexpr char kUsage[] =
    "usage: preprocess_data --input FILE|- --output-prefix PREFIX\n"
    "         --tokenizer-type gpt2|wordpiece|sentencepiece --vocab-file FILE [--merges-file F]\n"
    "         [--lowercase|--cased] [--json-keys text[,k2...]]\n"
    "         [--text-format auto|jsonl|lines|paragraphs] [--append-eod] [--split-sentences]\n"
    "         [--workers N] [--batch-docs N]\n"
    "       preprocess_data merge --output-prefix PREFIX INPUT_PREFIX...\n";

struct Options {
  std::string input, output_prefix, format = "auto";
  TokenizerOptions tokenizer;
  std::vector<std::string> keys = {"text"};
  bool append_eod = false, split_sentences = false;
  int workers = 1;
  int batch_docs = 256;
};

enum Problem { kBadUtf8, kBadJson, kMissingKey, kEmpty, kNumProblems };
const char* kProblemNames[] = {"invalid UTF-8 (replaced with U+FFFD)", "bad JSON line",
                               "missing or non-string key", "empty document (skipped)"};

struct Doc {
  int64_t line = 0;
  std::vector<std::string> texts;  // one per key
};
struct Batch {
  int64_t seq = 0;
  std::vector<Doc> docs;
  int64_t bytes = 0;
};
struct Issue {
  int64_t line;
  Problem problem;
  std::string detail;
};
struct Result {
  int64_t seq = 0;
  // [key][doc] -> sentences -> tokens
  std::vector<std::vector<std::vector<std::vector<int32_t>>>> tokens;
  std::vector<Issue> issues;
  int64_t bytes = 0;
};

// A bounded queue with a close() that wakes every waiter.
template <typename T>
class Queue {
 public:
  explicit Queue(size_t cap) : cap_(cap) {}
  void Push(T v) {
    std::unique_lock<std::mutex> l(mu_);
    not_full_.wait(l, [&] { return q_.size() < cap_; });
    q_.push_back(std::move(v));
    not_empty_.notify_one();
  }
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> l(mu_);
    not_empty_.wait(l, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return std::nullopt;
    T v = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return v;
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  size_t cap_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> q_;
  bool closed_ = false;
};

// Reads documents and parses JSON on the reader thread; problems found here travel with the batch.
class Reader {
 public:
  Reader(const Options& o, std::istream& in) : o_(o), in_(in) {
    format_ = o.format;
    if (format_ == "auto") {
      bool json = absl::EndsWith(o.input, ".jsonl") || absl::EndsWith(o.input, ".json");
      format_ = json ? "jsonl" : "lines";
    }
  }

  // The next batch, or an empty one at the end of the input.
  Batch Next(std::vector<Issue>* issues) {
    Batch b;
    b.seq = seq_++;
    std::string line;
    std::string para;
    int64_t para_line = 0;
    while (static_cast<int>(b.docs.size()) < o_.batch_docs && std::getline(in_, line)) {
      ++line_no_;
      b.bytes += line.size() + 1;
      if (format_ == "paragraphs") {
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
          if (!para.empty()) b.docs.push_back(Doc{para_line, {para}});
          para.clear();
          continue;
        }
        if (para.empty()) para_line = line_no_;
        if (!para.empty()) para += "\n";
        para += line;
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (format_ == "lines") {
        b.docs.push_back(Doc{line_no_, {line}});
        continue;
      }
      if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank JSONL line
      absl::StatusOr<JsonValue> json = ParseJson(line);
      if (!json.ok()) {
        issues->push_back({line_no_, kBadJson, std::string(json.status().message())});
        continue;
      }
      Doc d{line_no_, {}};
      bool ok = true;
      for (const std::string& key : o_.keys) {
        const JsonValue* v = json->Find(key);
        if (v == nullptr || v->kind != JsonValue::Kind::kString) {
          issues->push_back({line_no_, kMissingKey, absl::StrCat("key \"", key, "\"")});
          ok = false;
          break;
        }
        d.texts.push_back(v->text);
      }
      if (ok) b.docs.push_back(std::move(d));
    }
    if (format_ == "paragraphs" && !para.empty()) {
      // A paragraph may continue into the next batch: keep reading until a blank line.
      while (std::getline(in_, line)) {
        ++line_no_;
        b.bytes += line.size() + 1;
        if (line.find_first_not_of(" \t\r") == std::string::npos) break;
        para += "\n" + line;
      }
      b.docs.push_back(Doc{para_line, {para}});
    }
    return b;
  }

 private:
  const Options& o_;
  std::istream& in_;
  std::string format_;
  int64_t seq_ = 0;
  int64_t line_no_ = 0;
};

Result Tokenize(const Tokenizer& tok, const Options& o, Batch batch) {
  Result r;
  r.seq = batch.seq;
  r.bytes = batch.bytes;
  r.tokens.resize(o.keys.size());
  for (Doc& d : batch.docs) {
    bool empty = true;
    for (std::string& text : d.texts) {
      std::u32string cps;
      if (!unicode::DecodeUtf8(text, &cps)) {
        r.issues.push_back({d.line, kBadUtf8, ""});
        text = unicode::EncodeUtf8(cps);
      }
      if (text.find_first_not_of(" \t\r\n") != std::string::npos) empty = false;
    }
    if (empty) {
      r.issues.push_back({d.line, kEmpty, ""});
      continue;
    }
    for (size_t k = 0; k < o.keys.size(); ++k) {
      std::vector<std::vector<int32_t>> doc;
      if (o.split_sentences) {
        for (const std::string& s : SplitSentences(d.texts[k])) {
          std::vector<int32_t> ids = tok.Encode(s);
          if (!ids.empty()) doc.push_back(std::move(ids));
        }
      } else {
        doc.push_back(tok.Encode(d.texts[k]));
      }
      if (o.append_eod && !doc.empty()) doc.back().push_back(tok.special().eod);
      r.tokens[k].push_back(std::move(doc));
    }
  }
  return r;
}

std::string Human(double v) {
  if (v >= 1e9) return absl::StrFormat("%.2fG", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e3) return absl::StrFormat("%.1fk", v / 1e3);
  return absl::StrFormat("%.0f", v);
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

absl::Status Run(const Options& o) {
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> probe, MakeTokenizer(o.tokenizer));
  if (o.append_eod && probe->special().eod < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--append-eod: the ", probe->name(),
                                                   " vocabulary has no end-of-document token."));
  }
  const TokenDType dtype = TokenDTypeForVocab(probe->VocabSize());
  std::vector<std::unique_ptr<IndexedDatasetBuilder>> out;
  std::vector<std::string> prefixes;
  for (const std::string& key : o.keys) {
    prefixes.push_back(
        absl::StrCat(o.output_prefix, "_", key, "_", o.split_sentences ? "sentence" : "document"));
    BRAID_ASSIGN_OR_RETURN(auto b, IndexedDatasetBuilder::Create(prefixes.back(), dtype));
    out.push_back(std::move(b));
  }

  std::ifstream file;
  std::istream* in = &std::cin;
  int64_t total_bytes = 0;
  if (o.input != "-") {
    file.open(o.input, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat(o.input, ": cannot open the input."));
    struct stat st;
    if (::stat(o.input.c_str(), &st) == 0) total_bytes = st.st_size;
    in = &file;
  }
  const std::string input_name = o.input == "-" ? "stdin" : o.input;

  Queue<Batch> todo(4 * o.workers);
  Queue<Result> done(4 * o.workers);
  std::vector<Issue> reader_issues;
  std::mutex reader_issues_mu;
  std::thread reader([&] {
    Reader r(o, *in);
    while (true) {
      std::vector<Issue> issues;
      Batch b = r.Next(&issues);
      {
        std::lock_guard<std::mutex> l(reader_issues_mu);
        reader_issues.insert(reader_issues.end(), issues.begin(), issues.end());
      }
      bool last = b.docs.empty() && b.bytes == 0;
      todo.Push(std::move(b));
      if (last) break;
    }
    todo.Close();
  });
  std::vector<std::thread> workers;
  std::atomic<int> live{o.workers};
  std::vector<std::unique_ptr<Tokenizer>> tokenizers;
  tokenizers.push_back(std::move(probe));
  for (int w = 1; w < o.workers; ++w) {
    BRAID_ASSIGN_OR_RETURN(auto t, MakeTokenizer(o.tokenizer));
    tokenizers.push_back(std::move(t));
  }
  for (int w = 0; w < o.workers; ++w) {
    workers.emplace_back([&, w] {
      while (auto b = todo.Pop()) done.Push(Tokenize(*tokenizers[w], o, std::move(*b)));
      if (--live == 0) done.Close();
    });
  }

  // Write in input order.
  const bool tty = ::isatty(STDERR_FILENO);
  std::map<int64_t, Result> pending;
  int64_t next = 0, docs = 0, bytes = 0;
  int64_t counts[kNumProblems] = {};
  int reported = 0;
  const double start = Now();
  double last_report = start;
  absl::Status status;
  auto report = [&](const Issue& i) {
    ++counts[i.problem];
    if (++reported <= 20) {
      std::fprintf(stderr, "%s%s:%ld: %s%s%s\n", tty ? "\n" : "", input_name.c_str(),
                   static_cast<long>(i.line), kProblemNames[i.problem],
                   i.detail.empty() ? "" : ": ", i.detail.c_str());
    } else if (reported == 21) {
      std::fprintf(stderr, "%s(further problems are counted, not printed)\n", tty ? "\n" : "");
    }
  };
  while (auto r = done.Pop()) {
    pending.emplace(r->seq, std::move(*r));
    for (auto it = pending.find(next); it != pending.end(); it = pending.find(++next)) {
      Result& res = it->second;
      for (const Issue& i : res.issues) report(i);
      for (size_t k = 0; k < out.size() && status.ok(); ++k) {
        for (const auto& doc : res.tokens[k]) {
          for (const auto& seq : doc) {
            status.Update(out[k]->AddSequence(seq.data(), static_cast<int64_t>(seq.size())));
          }
          out[k]->EndDocument();
        }
      }
      docs += static_cast<int64_t>(res.tokens[0].size());
      bytes += res.bytes;
      pending.erase(it);
    }
    double now = Now();
    if (now - last_report >= (tty ? 0.5 : 10.0)) {
      last_report = now;
      double rate = out[0]->num_tokens() / (now - start);
      std::string eta = total_bytes > 0 && bytes > 0
                            ? absl::StrFormat("  %3.0f%%  ETA %.0fs", 100.0 * bytes / total_bytes,
                                              (total_bytes - bytes) / (bytes / (now - start)))
                            : "";
      std::fprintf(stderr, "%s[preprocess] %s docs  %s tokens  %s tok/s  %.2f MB/s%s%s",
                   tty ? "\r" : "", Human(docs).c_str(), Human(out[0]->num_tokens()).c_str(),
                   Human(rate).c_str(), bytes / (now - start) / 1e6, eta.c_str(),
                   tty ? "   " : "\n");
    }
  }
  reader.join();
  for (auto& t : workers) t.join();
  for (const Issue& i : reader_issues) report(i);
  BRAID_RETURN_IF_ERROR(status);
  for (auto& b : out) BRAID_RETURN_IF_ERROR(b->Finish());

  double secs = std::max(1e-9, Now() - start);
  std::fprintf(stderr,
               "%s[preprocess] done: %ld documents, %ld sequences, %ld tokens (%s) in "
               "%.2f s: %s tok/s, %.2f MB/s of text, %d worker(s)\n",
               tty ? "\n" : "", static_cast<long>(out[0]->num_documents()),
               static_cast<long>(out[0]->num_sequences()), static_cast<long>(out[0]->num_tokens()),
               TokenDTypeName(dtype), secs, Human(out[0]->num_tokens() / secs).c_str(),
               bytes / secs / 1e6, o.workers);
  for (int p = 0; p < kNumProblems; ++p) {
    if (counts[p] > 0) {
      std::fprintf(stderr, "[preprocess] %ld x %s\n", static_cast<long>(counts[p]),
                   kProblemNames[p]);
    }
  }
  for (const std::string& p : prefixes)
    std::fprintf(stderr, "[preprocess] wrote %s.bin/.idx\n", p.c_str());
  return absl::OkStatus();
}

absl::Status Merge(const std::string& output, const std::vector<std::string>& inputs) {
  if (inputs.empty()) return absl::InvalidArgumentError("merge: no input prefixes given.");
  BRAID_ASSIGN_OR_RETURN(auto first, IndexedDataset::Open(inputs[0]));
  BRAID_ASSIGN_OR_RETURN(auto b, IndexedDatasetBuilder::Create(output, first->dtype()));
  first.reset();
  for (const std::string& in : inputs) BRAID_RETURN_IF_ERROR(b->AddDataset(in));
  BRAID_RETURN_IF_ERROR(b->Finish());
  std::fprintf(stderr, "[preprocess] merged %zu datasets into %s: %ld documents, %ld tokens\n",
               inputs.size(), output.c_str(), static_cast<long>(b->num_documents()),
               static_cast<long>(b->num_tokens()));
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  Options o;
  bool merge = argc > 1 && std::string(argv[1]) == "merge";
  std::vector<std::string> positional;
  for (int i = merge ? 2 : 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    std::optional<std::string> v;
    if (a == "--input" && (v = value()))
      o.input = *v;
    else if (a == "--output-prefix" && (v = value()))
      o.output_prefix = *v;
    else if (a == "--tokenizer-type" && (v = value()))
      o.tokenizer.type = *v;
    else if (a == "--vocab-file" && (v = value()))
      o.tokenizer.vocab_file = *v;
    else if (a == "--merges-file" && (v = value()))
      o.tokenizer.merges_file = *v;
    else if (a == "--json-keys" && (v = value()))
      o.keys = absl::StrSplit(*v, ',', absl::SkipEmpty());
    else if (a == "--text-format" && (v = value()))
      o.format = *v;
    else if (a == "--workers" && (v = value()) && absl::SimpleAtoi(*v, &o.workers) &&
             o.workers > 0) {
    } else if (a == "--batch-docs" && (v = value()) && absl::SimpleAtoi(*v, &o.batch_docs) &&
               o.batch_docs > 0) {
    } else if (a == "--lowercase")
      o.tokenizer.lowercase = true;
    else if (a == "--cased")
      o.tokenizer.lowercase = false;
    else if (a == "--append-eod")
      o.append_eod = true;
    else if (a == "--split-sentences")
      o.split_sentences = true;
    else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (merge && a.rfind("--", 0) != 0)
      positional.push_back(a);
    else {
      std::fprintf(stderr, "preprocess_data: bad or incomplete argument '%s'\n%s", a.c_str(),
                   kUsage);
      return 2;
    }
  }
  absl::Status s;
  if (merge) {
    s = o.output_prefix.empty() ? absl::InvalidArgumentError("merge needs --output-prefix")
                                : Merge(o.output_prefix, positional);
  } else if (o.input.empty() || o.output_prefix.empty() || o.tokenizer.type.empty()) {
    s = absl::InvalidArgumentError("--input, --output-prefix and --tokenizer-type are required.");
  } else if (o.format != "auto" && o.format != "jsonl" && o.format != "lines" &&
             o.format != "paragraphs") {
    s = absl::InvalidArgumentError("--text-format: expected auto, jsonl, lines or paragraphs.");
  } else {
    s = Run(o);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "preprocess_data: %s\n", std::string(s.message()).c_str());
    if (absl::IsInvalidArgument(s) && s.message().find("required") != absl::string_view::npos)
      std::fputs(kUsage, stderr);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) { return braid::Main(argc, argv); }
