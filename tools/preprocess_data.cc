// `preprocess_data`: plain text or JSON Lines -> Megatron `.bin`/`.idx` (docs/formats.md).
//
//   preprocess_data --input FILE[,FILE|DIR|GLOB...]|- --output-prefix PREFIX
//       --tokenizer-type TYPE --vocab-file FILE (or --tokenizer-file tokenizer.json)
//       [--merge-file FILE] [--lowercase|--cased] [--json-keys text[,title...]]
//       [--text-format auto|jsonl|lines|paragraphs] [--append-eod] [--split-sentences]
//       [--keep-newlines] [--workers N] [--log-interval N] [--batch-docs N]
//   preprocess_data merge --output-prefix PREFIX INPUT_PREFIX...
//
// Megatron-LM's flags work unchanged: --tokenizer-type GPT2BPETokenizer | BertWordPieceLowerCase
// | BertWordPieceCase | SentencePieceTokenizer (--tokenizer-model for its model), --merge-file,
// --json-keys (comma- or space-separated), --split-sentences, --keep-newlines, --append-eod,
// --workers, --log-interval (documents between progress lines), --dataset-impl mmap.
//
// Output: {prefix}_{key}_{document|sentence}.bin/.idx, one pair per JSON key ("text" for plain
// text). Plain text is one document per line (lines) or documents separated by blank lines
// (paragraphs; auto picks jsonl for .jsonl/.json, else lines).
//
// Streaming: a reader thread cuts the input into batches of documents, N worker threads tokenize
// them (one tokenizer each), and the main thread writes batches strictly in input order, so the
// output is identical for any worker count; at most 4 x N batches are in flight, so memory does
// not grow with the corpus. Bad input (invalid UTF-8, binary data, a bad JSON line, a missing
// key, an empty document) is counted and reported with its line number. Outputs are written
// under temporary names and renamed when complete: an input that cannot be read, or one where
// most lines are bad (binary, the wrong format), leaves existing outputs as they were.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "framework/core/files.h"
#include "framework/core/flags.h"
#include "framework/core/json.h"
#include "framework/core/status.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/input_files.h"
#include "framework/data/sentences.h"
#include "framework/data/tokenizer.h"
#include "framework/data/unicode.h"

ABSL_FLAG(std::string, input, "",
          "text or JSON Lines to read: files (plain, .gz or .zst), directories and glob patterns, "
          "comma-separated; - for stdin");
ABSL_FLAG(std::string, output_prefix, "",
          "prefix of the {prefix}_{key}_{document|sentence}.bin/.idx written");
ABSL_FLAG(std::string, tokenizer_type, "",
          "gpt2 | wordpiece | sentencepiece | huggingface | tiktoken, or Megatron's "
          "GPT2BPETokenizer | BertWordPieceLowerCase | BertWordPieceCase | SentencePieceTokenizer "
          "| HuggingFaceTokenizer | TikTokenizer");
ABSL_FLAG(std::string, vocab_file, "",
          "vocab.json (gpt2), vocab.txt (wordpiece) or a SentencePiece .model");
ABSL_FLAG(std::string, tokenizer_model, "",
          "Megatron's name for the SentencePiece model, or the Hugging Face model's folder or "
          "tokenizer.json (as --vocab-file)");
ABSL_FLAG(std::string, tokenizer_file, "",
          "huggingface: the model's tokenizer.json; tiktoken: its rank file (as --vocab-file)");
ABSL_FLAG(bool, add_special_tokens, false,
          "huggingface: apply the file's post-processor to each document (e.g. LLaMA's <s>)");
ABSL_FLAG(std::string, tiktoken_pattern, "", "tiktoken: the split regex (default: LLaMA 3's)");
ABSL_FLAG(std::string, merges_file, "", "GPT-2 merges.txt");
ABSL_FLAG(std::string, merge_file, "", "Megatron's name for --merges-file");
ABSL_FLAG(bool, lowercase, false, "WordPiece: lowercase and strip accents (the default)");
ABSL_FLAG(bool, cased, false, "WordPiece: keep case and accents");
ABSL_FLAG(std::string, json_keys, "",
          "JSON keys to read, comma-separated, or space-separated as Megatron's (default text)");
ABSL_FLAG(std::string, text_format, "auto", "auto | jsonl | lines | paragraphs");
ABSL_FLAG(bool, append_eod, false, "append the end-of-document id to each document");
ABSL_FLAG(bool, split_sentences, false, "one sequence per sentence (BERT data)");
ABSL_FLAG(bool, keep_newlines, false,
          "with --split-sentences: keep the line breaks between sentences");
ABSL_FLAG(int32_t, workers, 1, "tokenizing threads (at most 4 x the cores)");
ABSL_FLAG(int32_t, batch_docs, 256, "documents per batch handed to a worker");
ABSL_FLAG(int64_t, log_interval, 0,
          "documents between progress lines (0: every 0.5 s on a terminal, 10 s otherwise)");
ABSL_FLAG(std::string, dataset_impl, "mmap", "Megatron's; only mmap is written");

namespace braid {
namespace {

constexpr char kUsage[] =
    "usage: preprocess_data --input FILE[,FILE|DIR|GLOB...]|- --output-prefix PREFIX\n"
    "         --tokenizer-type gpt2|wordpiece|sentencepiece --vocab-file FILE [--merge-file F]\n"
    "         | --tokenizer-type huggingface|tiktoken --tokenizer-file FILE\n"
    "           [--add-special-tokens] [--tiktoken-pattern RE]\n"
    "         [--lowercase|--cased] [--json-keys text[,k2...]]\n"
    "         [--text-format auto|jsonl|lines|paragraphs] [--append-eod] [--split-sentences]\n"
    "         [--keep-newlines] [--workers N] [--log-interval N] [--batch-docs N]\n"
    "       preprocess_data merge --output-prefix PREFIX INPUT_PREFIX...\n"
    "Megatron-LM's spellings work too: --tokenizer-type GPT2BPETokenizer, BertWordPieceLowerCase,\n"
    "BertWordPieceCase, SentencePieceTokenizer (with --tokenizer-model), HuggingFaceTokenizer,\n"
    "TikTokenizer, --json-keys text title. Inputs may be gzip or zstd compressed (.gz, .zst).\n";

struct Options {
  std::string input, output_prefix, format = "auto";
  TokenizerOptions tokenizer;
  std::vector<std::string> keys = {"text"};
  bool append_eod = false, split_sentences = false, keep_newlines = false;
  int workers = 1;
  int batch_docs = 256;
  int64_t log_interval = 0;  // documents between progress lines; 0: every 0.5 s on a terminal
};

enum Problem { kBadUtf8, kBinary, kBadJson, kMissingKey, kEmpty, kNumProblems };
const char* kProblemNames[] = {"invalid UTF-8 (replaced with U+FFFD)",
                               "binary data (NUL or many control bytes)", "bad JSON line",
                               "missing or non-string key", "empty document (skipped)"};

struct Doc {
  int64_t line = 0;
  int file = 0;                    // index into the inputs
  bool bad_utf8 = false;           // a JSON line with invalid UTF-8 (replaced before parsing)
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
  int file = 0;
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

// Reads documents and parses JSON on the reader thread, file after file; problems found here
// travel with the batch. A file that ends without a newline ends its last document there.
class Reader {
 public:
  Reader(const Options& o, const std::vector<std::string>& inputs) : o_(o), inputs_(inputs) {
    format_ = o.format;
    if (format_ == "auto") {
      const std::string first = WithoutCompressionSuffix(inputs.front());
      bool json = absl::EndsWith(first, ".jsonl") || absl::EndsWith(first, ".json");
      format_ = json ? "jsonl" : "lines";
    }
  }
  // Not OK when a file could not be opened or was damaged (reading stopped there).
  const absl::Status& status() const { return status_; }

  // The next batch, or an empty one at the end of the input.
  Batch Next(std::vector<Issue>* issues) {
    Batch b;
    b.seq = seq_++;
    std::string line;
    while (static_cast<int>(b.docs.size()) < o_.batch_docs && NextLine(&line)) {
      b.bytes += line.size() + 1;
      if (format_ == "paragraphs") {
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
          FlushParagraph(&b);
          continue;
        }
        if (para_.empty()) {
          para_line_ = line_no_;
          para_file_ = file_;
        }
        if (!para_.empty()) para_ += "\n";
        para_ += line;
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (format_ == "lines") {
        b.docs.push_back(Doc{line_no_, file_, false, {line}});
        continue;
      }
      if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank JSONL line
      // The JSON reader takes valid UTF-8: invalid sequences become U+FFFD first, and the
      // document is counted as such.
      const bool bad_utf8 = !unicode::IsValidUtf8(line);
      if (bad_utf8) line = unicode::SanitizeUtf8(line);
      absl::StatusOr<JsonValue> json = ParseJson(line);
      if (!json.ok()) {
        issues->push_back({line_no_, kBadJson, std::string(json.status().message()), file_});
        continue;
      }
      Doc d{line_no_, file_, bad_utf8, {}};
      bool ok = true;
      for (const std::string& key : o_.keys) {
        const JsonValue* v = json->Find(key);
        if (v == nullptr || v->kind != JsonValue::Kind::kString) {
          issues->push_back({line_no_, kMissingKey, absl::StrCat("key \"", key, "\""), file_});
          ok = false;
          break;
        }
        d.texts.push_back(v->text);
      }
      if (ok) b.docs.push_back(std::move(d));
    }
    if (format_ == "paragraphs" && done_) FlushParagraph(&b);
    return b;
  }

 private:
  void FlushParagraph(Batch* b) {
    if (!para_.empty()) b->docs.push_back(Doc{para_line_, para_file_, false, {para_}});
    para_.clear();
  }
  // The next line of the inputs; false at the end of the last one (or at a damaged one).
  bool NextLine(std::string* line) {
    while (!done_) {
      if (stream_ && std::getline(*stream_, *line)) {
        ++line_no_;
        return true;
      }
      if (buf_ && !buf_->status().ok()) {
        status_ = buf_->status();
        done_ = true;
        break;
      }
      if (stream_ && format_ == "paragraphs" && !para_.empty()) {
        // A paragraph ends with its file.
        *line = "";
        stream_.reset();
        buf_.reset();
        return true;
      }
      stream_.reset();
      buf_.reset();
      if (next_file_ >= inputs_.size()) {
        done_ = true;
        break;
      }
      file_ = static_cast<int>(next_file_++);
      line_no_ = 0;
      auto b = InputFileBuf::Open(inputs_[file_]);
      if (!b.ok()) {
        status_ = b.status();
        done_ = true;
        break;
      }
      buf_ = *std::move(b);
      stream_ = std::make_unique<std::istream>(buf_.get());
    }
    return false;
  }

  const Options& o_;
  const std::vector<std::string>& inputs_;
  std::unique_ptr<InputFileBuf> buf_;
  std::unique_ptr<std::istream> stream_;
  size_t next_file_ = 0;
  int file_ = 0;
  bool done_ = false;
  absl::Status status_;
  std::string format_;
  std::string para_;
  int64_t para_line_ = 0;
  int para_file_ = 0;
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
    // Binary data rather than text: a NUL byte, or more than a tenth of the bytes C0 controls
    // other than tab, newline, carriage return and form feed (text may hold a few: fortunes use
    // backspaces for overstrike). Such a document, like one with invalid UTF-8, is still written
    // (as Megatron would), but counted: an input where most documents are bad is refused whole.
    bool binary = false, bad_utf8 = d.bad_utf8;
    for (std::string& text : d.texts) {
      int64_t controls = 0;
      for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u == 0) controls = static_cast<int64_t>(text.size());
        if (u < 0x20 && u != '\t' && u != '\n' && u != '\r' && u != '\f') ++controls;
      }
      binary = binary || (!text.empty() && 10 * controls > static_cast<int64_t>(text.size()));
      if (!unicode::IsValidUtf8(text)) {  // (the check allocates nothing: documents may be huge)
        std::u32string cps;
        unicode::DecodeUtf8(text, &cps);
        bad_utf8 = true;
        text = unicode::EncodeUtf8(cps);
      }
      if (text.find_first_not_of(" \t\r\n") != std::string::npos) empty = false;
    }
    if (empty) {
      r.issues.push_back({d.line, kEmpty, ""});
      continue;
    }
    if (binary || bad_utf8) r.issues.push_back({d.line, binary ? kBinary : kBadUtf8, ""});
    for (size_t k = 0; k < o.keys.size(); ++k) {
      std::vector<std::vector<int32_t>> doc;
      if (o.split_sentences) {
        for (const std::string& s : SplitSentences(d.texts[k], o.keep_newlines)) {
          std::vector<int32_t> ids = EncodeInPieces(tok, s);
          if (!ids.empty()) doc.push_back(std::move(ids));
        }
      } else {
        // A long document in pieces (tokenizer.h): the tokenizer's memory stays bounded.
        doc.push_back(EncodeInPieces(tok, d.texts[k]));
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
  // The inputs, checked before any output is touched: readable files (or "-": stdin).
  BRAID_ASSIGN_OR_RETURN(const std::vector<std::string> inputs, ExpandInputs(o.input));
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> probe, MakeTokenizer(o.tokenizer));
  if (o.append_eod && probe->special().eod < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--append-eod: the ", probe->name(),
                                                   " vocabulary has no end-of-document token."));
  }
  // The ETA needs the text's size: known for plain files only.
  int64_t total_bytes = 0;
  for (const std::string& in : inputs) {
    struct stat st;
    if (in == "-" || WithoutCompressionSuffix(in) != in || ::stat(in.c_str(), &st) != 0) {
      total_bytes = 0;
      break;
    }
    total_bytes += st.st_size;
  }
  // The outputs: temporary files until every document is written (IndexedDatasetBuilder).
  const TokenDType dtype = TokenDTypeForVocab(probe->VocabSize());
  std::vector<std::unique_ptr<IndexedDatasetBuilder>> out;
  std::vector<std::string> prefixes;
  for (const std::string& key : o.keys) {
    prefixes.push_back(
        absl::StrCat(o.output_prefix, "_", key, "_", o.split_sentences ? "sentence" : "document"));
    std::vector<std::string> files;
    for (const std::string& in : inputs)
      if (in != "-") files.push_back(in);
    BRAID_RETURN_IF_ERROR(
        CheckOutputPath(prefixes.back() + ".bin", files, false, true, "--output-prefix"));
    BRAID_ASSIGN_OR_RETURN(auto b, IndexedDatasetBuilder::Create(prefixes.back(), dtype));
    out.push_back(std::move(b));
  }
  auto input_name = [&](int file) { return inputs[file] == "-" ? "stdin" : inputs[file]; };
  absl::Status read_status;

  Queue<Batch> todo(4 * o.workers);
  Queue<Result> done(4 * o.workers);
  std::vector<Issue> reader_issues;
  std::mutex reader_issues_mu;
  std::thread reader([&] {
    Reader r(o, inputs);
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
    read_status = r.status();
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
  int64_t next = 0, docs = 0, bytes = 0, next_report_docs = o.log_interval;
  int64_t counts[kNumProblems] = {};
  int reported = 0;
  const double start = Now();
  double last_report = start;
  absl::Status status;
  auto report = [&](const Issue& i) {
    ++counts[i.problem];
    if (++reported <= 20) {
      std::fprintf(stderr, "%s%s:%ld: %s%s%s\n", tty ? "\n" : "", input_name(i.file).c_str(),
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
    const bool due =
        o.log_interval > 0 ? docs >= next_report_docs : now - last_report >= (tty ? 0.5 : 10.0);
    if (due) {
      next_report_docs = docs + o.log_interval;
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
  BRAID_RETURN_IF_ERROR(read_status);  // a damaged archive: nothing is written
  BRAID_RETURN_IF_ERROR(status);
  // Refuse to write what is not a corpus: no document at all (an empty input, every line bad),
  // or mostly binary data or invalid UTF-8 (a binary file, the wrong encoding); the existing
  // outputs stay as they were. Some bad lines in a corpus are reported and skipped.
  int64_t bad = 0;
  for (int p = 0; p < kNumProblems; ++p) bad += counts[p];
  const int64_t not_text = counts[kBadUtf8] + counts[kBinary];  // written, but suspicious
  const int64_t seen = docs + bad - not_text;
  if (docs == 0 || 2 * not_text > docs) {
    std::string summary;
    for (int p = 0; p < kNumProblems; ++p) {
      if (counts[p] > 0) {
        absl::StrAppend(&summary, summary.empty() ? "" : ", ", counts[p], " x ", kProblemNames[p]);
      }
    }
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s. Nothing was written. HINT: the input must be UTF-8 text, one document per "
        "line (or JSON Lines with the --json-keys, --text-format jsonl).",
        inputs.size() == 1 ? input_name(0) : absl::StrCat(inputs.size(), " inputs"),
        seen == 0 ? "the input holds no document (it is empty)"
                  : absl::StrFormat("%d of %d documents are bad (%s)", bad, seen, summary)));
  }
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
  // Every input must open, and the output must be none of them, before anything is written.
  std::vector<std::string> input_files;
  for (const std::string& in : inputs) {
    BRAID_RETURN_IF_ERROR(IndexedDataset::Open(in).status());
    input_files.push_back(in + ".bin");
    input_files.push_back(in + ".idx");
  }
  for (const char* ext : {".bin", ".idx"}) {
    BRAID_RETURN_IF_ERROR(
        CheckOutputPath(output + ext, input_files, false, true, "--output-prefix"));
  }
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
  CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage = kUsage;
  cl.max_args = -1;
  std::vector<std::string> args = ParseCommandLineOrExit(argc, argv, cl);
  const bool merge = !args.empty() && args[0] == "merge";
  Options o;
  o.input = absl::GetFlag(FLAGS_input);
  o.output_prefix = absl::GetFlag(FLAGS_output_prefix);
  o.format = absl::GetFlag(FLAGS_text_format);
  o.tokenizer.vocab_file = absl::GetFlag(FLAGS_vocab_file);
  if (!absl::GetFlag(FLAGS_tokenizer_model).empty()) {
    o.tokenizer.vocab_file = absl::GetFlag(FLAGS_tokenizer_model);
  }
  if (!absl::GetFlag(FLAGS_tokenizer_file).empty()) {
    o.tokenizer.vocab_file = absl::GetFlag(FLAGS_tokenizer_file);
  }
  o.tokenizer.add_special_tokens = absl::GetFlag(FLAGS_add_special_tokens);
  o.tokenizer.tiktoken_pattern = absl::GetFlag(FLAGS_tiktoken_pattern);
  o.tokenizer.merges_file = absl::GetFlag(FLAGS_merges_file).empty()
                                ? absl::GetFlag(FLAGS_merge_file)
                                : absl::GetFlag(FLAGS_merges_file);
  o.tokenizer.lowercase = !absl::GetFlag(FLAGS_cased);
  if (!absl::GetFlag(FLAGS_tokenizer_type).empty()) {
    absl::Status t = SetTokenizerType(absl::GetFlag(FLAGS_tokenizer_type), &o.tokenizer);
    if (!t.ok()) UsageError(std::string(t.message()));
  }
  if (!o.tokenizer.tiktoken_pattern.empty() && o.tokenizer.type != "tiktoken") {
    UsageError("--tiktoken-pattern applies to --tokenizer-type tiktoken only.");
  }
  if (absl::GetFlag(FLAGS_cased)) o.tokenizer.lowercase = false;
  if (absl::GetFlag(FLAGS_lowercase)) o.tokenizer.lowercase = true;
  const std::string keys = absl::GetFlag(FLAGS_json_keys);
  o.keys = keys.empty() ? std::vector<std::string>{"text"}
                        : std::vector<std::string>(absl::StrSplit(keys, ',', absl::SkipEmpty()));
  o.append_eod = absl::GetFlag(FLAGS_append_eod);
  o.split_sentences = absl::GetFlag(FLAGS_split_sentences);
  o.keep_newlines = absl::GetFlag(FLAGS_keep_newlines);
  o.batch_docs = absl::GetFlag(FLAGS_batch_docs);
  o.log_interval = absl::GetFlag(FLAGS_log_interval);
  if (absl::GetFlag(FLAGS_dataset_impl) != "mmap") {
    UsageError("--dataset-impl: only mmap (Megatron's indexed format) is written.");
  }
  if (o.batch_docs < 1 || o.log_interval < 0) {
    UsageError("--batch-docs must be positive and --log-interval not negative.");
  }
  const int requested = absl::GetFlag(FLAGS_workers);
  if (requested < 1) UsageError("--workers must be 1 or more.");
  // More workers than the cores can run only cost memory (each holds a tokenizer and batches).
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  o.workers = std::min(requested, 4 * cores);
  if (o.workers < requested) {
    std::fprintf(stderr, "[preprocess] --workers %d capped at %d (4 x %d cores)\n", requested,
                 o.workers, cores);
  }
  if (o.format != "auto" && o.format != "jsonl" && o.format != "lines" &&
      o.format != "paragraphs") {
    UsageError("--text-format: expected auto, jsonl, lines or paragraphs.");
  }
  absl::Status s;
  if (merge) {
    if (o.output_prefix.empty()) UsageError("merge needs --output-prefix.");
    s = Merge(o.output_prefix, std::vector<std::string>(args.begin() + 1, args.end()));
  } else {
    // Megatron's --json-keys takes several words: text title -> keys text, title.
    for (const std::string& extra : args) {
      if (keys.empty()) UsageError(absl::StrCat("unexpected argument '", extra, "'."));
      o.keys.push_back(extra);
    }
    if (o.keys.empty()) UsageError("--json-keys names no key.");
    if (o.input.empty() || o.output_prefix.empty() || o.tokenizer.type.empty()) {
      UsageError("--input, --output-prefix and --tokenizer-type are required.");
    }
    s = Run(o);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "preprocess_data: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) { return braid::Main(argc, argv); }
