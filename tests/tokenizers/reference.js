// The reference: Hugging Face's tokenizers library (Rust, through the Node.js binding
// @anush008/tokenizers). Reads JSON Lines {"text": ...} (invalid UTF-8 decoded as U+FFFD, one per
// maximal invalid subpart, the WHATWG decoder's rule) and writes {"ids": [...], "text": decoded}.
//   node reference.js TOKENIZER_JSON CORPUS_JSONL OUT_JSONL [--add-special-tokens]
const fs = require('fs');
const {Tokenizer} = require('@anush008/tokenizers');

async function main() {
  const [file, corpus, out] = process.argv.slice(2, 5);
  const addSpecial = process.argv.includes('--add-special-tokens');
  const tok = Tokenizer.fromFile(file);
  const lines = new TextDecoder('utf-8').decode(fs.readFileSync(corpus)).split('\n');
  const texts = lines.filter((l) => l.length > 0).map((l) => JSON.parse(l).text);
  const outLines = [];
  const batch = 256;
  for (let i = 0; i < texts.length; i += batch) {
    const encs = await tok.encodeBatch(texts.slice(i, i + batch), {addSpecialTokens: addSpecial});
    const ids = encs.map((e) => e.getIds());
    const decoded = await tok.decodeBatch(ids, false);
    for (let k = 0; k < ids.length; ++k) {
      outLines.push(JSON.stringify({ids: ids[k], text: decoded[k]}));
    }
  }
  fs.writeFileSync(out, outLines.join('\n') + '\n');
}
main().catch((e) => {
  console.error(`reference.js: ${e}`);
  process.exit(1);
});
