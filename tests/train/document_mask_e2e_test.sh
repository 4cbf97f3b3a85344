#!/usr/bin/env bash
# Document-masked packing through pretrain (--reset-position-ids --reset-attention-mask
# --eod-mask-loss, Megatron-LM's flags), on the default corpus (fortunes of ~20-60 tokens packed
# into samples of 64):
#  1. the flags become data.reset_position_ids, data.reset_attention_mask, data.eod_mask_loss
#     (--print-config) and the log says what they do;
#  2. TP 2 and PP 2 (the pipeline's last stage masks the labels itself) against TP 1, 20 steps:
#     losses within 1e-5; the masks change the losses (the comparison can fail);
#  3. a recipe without a tokenizer is refused by name, and with a hint;
#  4. RoBERTa's full-sentence packs with --reset-attention-mask (attention within the documents
#     the packs join with </s>): TP 2 against TP 1 within 1e-5, the mask changes the losses; BERT's
#     one-document packs refuse the option by name.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
flags=(--reset-position-ids --reset-attention-mask --eod-mask-loss)
common=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
        --set logging.interval=100 --set train.micro_batch_size=2 --set train.global_batch_size=4)
# 1.
"$bin/pretrain" "${common[@]}" "${flags[@]}" --print-config > "$tmp/config.txt"
for k in reset_position_ids reset_attention_mask eod_mask_loss; do
  grep -q "^  $k: true" "$tmp/config.txt" || { echo "FAIL: data.$k not set by its flag"; cat "$tmp/config.txt"; exit 1; }
done
# 2.
run 1 "$tmp/serial" "${flags[@]}"
grep -q "documents split at each end-of-document token: positions restart, attention within each document, loss skips" \
  "$tmp/serial.log" || { echo "FAIL: the log does not say the documents are split"; cat "$tmp/serial.log"; exit 1; }
run 2 "$tmp/tp2" "${flags[@]}" --set parallel.tensor_parallel_size=2
compare "$tmp/serial" "$tmp/tp2" 1e-5 "document masks: TP 2 against TP 1"
run 2 "$tmp/pp2" "${flags[@]}" --set parallel.pipeline_parallel_size=2
compare "$tmp/serial" "$tmp/pp2" 1e-5 "document masks: PP 2 against TP 1"
run 1 "$tmp/plain"
if compare "$tmp/serial" "$tmp/plain" 1e-3 "masked against plain" > /dev/null 2>&1; then
  echo "FAIL: the document masks left the losses unchanged"; exit 1
fi
echo "ok   the document masks change the losses"
# 3.
expect_error "data.reset_attention_mask: set data.vocab_file" \
  "$bin/pretrain" --recipe recipes/gpt/tiny.yaml --set data.vocab_file= --set model.vocab_size=300 \
  --reset-attention-mask --run-dir "$tmp/none"
grep -q "HINT\|(a SentencePiece .model)" "$tmp/out.txt" || { echo "FAIL: no hint"; cat "$tmp/out.txt"; exit 1; }
! grep -q "terminate called\|Aborted" "$tmp/out.txt"
echo "ok   no tokenizer: refused by name"
# 4.
common=(--recipe recipes/roberta/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
        --set logging.interval=100 --set train.micro_batch_size=4 --set model.hidden_dropout=0
        --set model.attention_dropout=0)
run 1 "$tmp/rb-serial" --reset-attention-mask
grep -q "full-sentences (attention within each document) packs" "$tmp/rb-serial.log" ||
  { echo "FAIL: the RoBERTa log does not say the documents are split"; cat "$tmp/rb-serial.log"; exit 1; }
run 2 "$tmp/rb-tp2" --reset-attention-mask --set parallel.tensor_parallel_size=2
compare "$tmp/rb-serial" "$tmp/rb-tp2" 1e-5 "RoBERTa document masks: TP 2 against TP 1"
run 1 "$tmp/rb-plain"
# Early in training the attention is near uniform: the mask moves the losses by ~1e-5 relative
# (up to 8e-5 relative over these 20 steps), TP's rounding by 2e-7.
if compare "$tmp/rb-serial" "$tmp/rb-plain" 5e-6 "masked against plain" > /dev/null 2>&1; then
  echo "FAIL: the RoBERTa document masks left the losses unchanged"; exit 1
fi
echo "ok   the RoBERTa document masks change the losses"
expect_error "data.reset_attention_mask: only full-sentence packs hold several documents" \
  "$bin/pretrain" --recipe recipes/bert/tiny.yaml --reset-attention-mask --print-config
echo "ok   BERT's one-document packs: refused by name"
