// Writes the tokenizer.json files of the kinds no npm package ships, each loaded and saved by
// Hugging Face's tokenizers library itself (so the file is what the library writes and reads):
//   bert-wordpiece.json  BERT uncased: BertNormalizer, BertPreTokenizer, WordPiece, BertProcessing
//                        (the vocabulary: tests/fixtures/tokenizers/wordpiece/vocab.txt)
//   unigram.json         a SentencePiece-style Unigram with byte fallback: NFKC, Metaspace
//                        (prepend_scheme "first"), Metaspace + ByteFallback + Fuse decoders
//                        (pieces and scores: UNIGRAM_VOCAB, spm_export_vocab's output)
//   gpt2-components.json GPT-2's BPE (tests/fixtures/tokenizers/gpt2) behind NFC, a Split, and
//                        ByteLevel with its regex; added tokens with lstrip, rstrip, single_word
//                        and normalized set
//   wordpiece-components.json NFKD + StripAccents + Lowercase + Replace(regex) + Strip, then
//                        WhitespaceSplit, Punctuation, Digits, Whitespace; a WordPiece decoder
//   gpt2-variants.json   GPT-2's BPE behind NFD and regex Replace, Splits merged with the previous
//                        piece, inverted, contiguous digits, ByteLevel without a prefix space
//   wordlevel-metaspace.json WordLevel over BERT's words behind Punctuation (merged with the next
//                        piece), Metaspace (always, not split), CharDelimiterSplit; a decoder chain
//                        of Metaspace (never) and BPEDecoder
//   node build_tokenizers.js REPO_ROOT UNIGRAM_VOCAB OUT_DIR
const fs = require('fs');
const path = require('path');
const {Tokenizer} = require('@anush008/tokenizers');

const [root, unigramVocab, out] = process.argv.slice(2, 5);
const fx = path.join(root, 'tests/fixtures/tokenizers');
const bertVocab = {};
fs.readFileSync(path.join(fx, 'wordpiece/vocab.txt'), 'utf8').split('\n').forEach((t, i) => {
  if (t.length > 0) bertVocab[t] = i;
});
const special = (id, content, extra = {}) => Object.assign(
    {id, content, single_word: false, lstrip: false, rstrip: false, normalized: false,
     special: true}, extra);

function save(name, spec) {
  const tok = Tokenizer.fromString(JSON.stringify(spec));
  tok.save(path.join(out, name), false);
}

const bertAdded = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => special(bertVocab[t], t));
save('bert-wordpiece.json', {
  version: '1.0', truncation: null, padding: null, added_tokens: bertAdded,
  normalizer: {type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true,
               strip_accents: null, lowercase: true},
  pre_tokenizer: {type: 'BertPreTokenizer'},
  post_processor: {type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101]},
  decoder: {type: 'WordPiece', prefix: '##', cleanup: true},
  model: {type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##',
          max_input_chars_per_word: 100, vocab: bertVocab},
});

const pieces = fs.readFileSync(unigramVocab, 'utf8').split('\n').filter((l) => l.length > 0)
                   .map((l) => { const [p, s] = l.split('\t'); return [p, Number(s)]; });
save('unigram.json', {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
  normalizer: {type: 'NFKC'},
  pre_tokenizer: {type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true},
  post_processor: {type: 'TemplateProcessing',
                   single: [{Sequence: {id: 'A', type_id: 0}}, {SpecialToken: {id: '</s>', type_id: 0}}],
                   pair: [{Sequence: {id: 'A', type_id: 0}}, {Sequence: {id: 'B', type_id: 1}}],
                   special_tokens: {'</s>': {id: '</s>', ids: [2], tokens: ['</s>']}}},
  decoder: {type: 'Sequence', decoders: [
    {type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true},
    {type: 'ByteFallback'}, {type: 'Fuse'}]},
  model: {type: 'Unigram', unk_id: 0, vocab: pieces, byte_fallback: true},
});

const gptVocab = JSON.parse(fs.readFileSync(path.join(fx, 'gpt2/vocab.json'), 'utf8'));
const merges = fs.readFileSync(path.join(fx, 'gpt2/merges.txt'), 'utf8').split('\n')
                   .filter((l) => l.length > 0 && !l.startsWith('#version'));
const n = Object.keys(gptVocab).length;
save('gpt2-components.json', {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [
    special(50256, '<|endoftext|>'),
    special(n, '<mask>', {lstrip: true}),
    special(n + 1, '[SEP]', {rstrip: true}),
    {id: n + 2, content: 'Pneumono', single_word: true, lstrip: false, rstrip: false,
     normalized: true, special: false},
    {id: n + 3, content: 'café', single_word: false, lstrip: false, rstrip: false,
     normalized: true, special: false},
  ],
  normalizer: {type: 'NFC'},
  pre_tokenizer: {type: 'Sequence', pretokenizers: [
    {type: 'Split', pattern: {String: '\n'}, behavior: 'MergedWithNext', invert: false},
    {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true}]},
  post_processor: {type: 'RobertaProcessing', sep: ['</s>', 50256], cls: ['<s>', 50256],
                   trim_offsets: true, add_prefix_space: true},
  decoder: {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true},
  model: {type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
          end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: gptVocab,
          merges},
});

save('gpt2-variants.json', {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [
    special(50256, '<|endoftext|>', {single_word: true}),
    special(n, '<mask>', {lstrip: true, rstrip: true}),
    {id: n + 1, content: 'the', single_word: true, lstrip: false, rstrip: false,
     normalized: true, special: false},
  ],
  normalizer: {type: 'Sequence', normalizers: [
    {type: 'NFD'}, {type: 'Replace', pattern: {Regex: '\\s{3,}'}, content: '   '}]},
  pre_tokenizer: {type: 'Sequence', pretokenizers: [
    {type: 'Split', pattern: {String: ','}, behavior: 'MergedWithPrevious', invert: false},
    {type: 'Split', pattern: {Regex: '[\\p{L}\\p{M}]+'}, behavior: 'Isolated', invert: true},
    {type: 'Digits', individual_digits: false},
    {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true}]},
  post_processor: {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true},
  decoder: {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true},
  model: {type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
          end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: gptVocab,
          merges},
});

save('wordlevel-metaspace.json', {
  version: '1.0', truncation: null, padding: null, added_tokens: bertAdded,
  normalizer: {type: 'Lowercase'},
  pre_tokenizer: {type: 'Sequence', pretokenizers: [
    {type: 'Punctuation', behavior: 'MergedWithNext'},
    {type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: false},
    {type: 'CharDelimiterSplit', delimiter: '\u2581'}]},
  post_processor: null,
  decoder: {type: 'Sequence', decoders: [
    {type: 'Metaspace', replacement: '_', prepend_scheme: 'never', split: false},
    {type: 'BPEDecoder', suffix: 'ing'}]},
  model: {type: 'WordLevel', unk_token: '[UNK]', vocab: bertVocab},
});

save('wordpiece-components.json', {
  version: '1.0', truncation: null, padding: null, added_tokens: bertAdded,
  normalizer: {type: 'Sequence', normalizers: [
    {type: 'NFKD'}, {type: 'StripAccents'}, {type: 'Lowercase'},
    {type: 'Replace', pattern: {Regex: '[0-9]{5,}'}, content: '[MASK]'},
    {type: 'Replace', pattern: {String: '\t'}, content: '    '},
    {type: 'Strip', strip_left: true, strip_right: true}]},
  pre_tokenizer: {type: 'Sequence', pretokenizers: [
    {type: 'WhitespaceSplit'},
    {type: 'Punctuation', behavior: 'Contiguous'},
    {type: 'Digits', individual_digits: true},
    {type: 'Split', pattern: {Regex: '[=\\-*_#]{3,}'}, behavior: 'Removed', invert: false},
    {type: 'Whitespace'}]},
  post_processor: {type: 'TemplateProcessing',
                   single: [{SpecialToken: {id: '[CLS]', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}},
                            {SpecialToken: {id: '[SEP]', type_id: 0}}],
                   pair: [{Sequence: {id: 'A', type_id: 0}}, {Sequence: {id: 'B', type_id: 1}}],
                   special_tokens: {'[CLS]': {id: '[CLS]', ids: [101], tokens: ['[CLS]']},
                                    '[SEP]': {id: '[SEP]', ids: [102], tokens: ['[SEP]']}}},
  decoder: {type: 'WordPiece', prefix: '##', cleanup: false},
  model: {type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##',
          max_input_chars_per_word: 100, vocab: bertVocab},
});
