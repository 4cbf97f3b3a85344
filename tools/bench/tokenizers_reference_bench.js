// Hugging Face's tokenizers library (Rust, through the Node.js binding @anush008/tokenizers):
// batch-encodes the "text" of every JSON line of CORPUS with TOKENIZER_JSON and prints tokens/s
// of the encoding alone (reading and JSON parsing excluded). Threads: RAYON_NUM_THREADS.
//   node tokenizers_reference_bench.js TOKENIZER_JSON CORPUS_JSONL
const fs = require('fs');
const {Tokenizer} = require('@anush008/tokenizers');

async function main() {
  const [file, corpus] = process.argv.slice(2, 4);
  const tok = Tokenizer.fromFile(file);
  const texts = new TextDecoder('utf-8').decode(fs.readFileSync(corpus)).split('\n')
                    .filter((l) => l.length > 0).map((l) => JSON.parse(l).text);
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
  await tok.encodeBatch(texts.slice(0, 64), {addSpecialTokens: false});  // warm up
  const start = process.hrtime.bigint();
  let tokens = 0;
  for (let i = 0; i < texts.length; i += 1024) {
    const encs = await tok.encodeBatch(texts.slice(i, i + 1024), {addSpecialTokens: false});
    for (const e of encs) tokens += e.getLength();
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`reference: ${texts.length} documents, ${tokens} tokens in ${secs.toFixed(2)} s: ` +
              `${(tokens / secs / 1e6).toFixed(2)}M tok/s, ${(bytes / secs / 1e6).toFixed(2)} MB/s, ` +
              `RAYON_NUM_THREADS=${process.env.RAYON_NUM_THREADS || 'all'}`);
}
main().catch((e) => {
  console.error(`tokenizers_reference_bench.js: ${e}`);
  process.exit(1);
});
