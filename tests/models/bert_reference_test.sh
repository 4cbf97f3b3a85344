#!/usr/bin/env bash
# BERT end to end against an independent reference: train the tiny BERT a few steps on the
# default corpus at TP=2 (2 ranks), load the final weights at TP=1 and TP=2, and compare the MLM
# and binary-head logits (on a padded batch) with a BERT written in plain PyTorch
# (tests/models/bert_reference.py): within 1e-5. Then export the checkpoint as Hugging Face
# BertForPreTraining, check the reference on those files (HF names) gives the same logits, and
# import it back: bit-identical model tensors. The same for the tiny RoBERTa (recipe roberta, no
# binary head, one token type, full-sentence packs), exported as RobertaForMaskedLM: the reference
# computes RoBERTa's position ids from the input as Hugging Face does (after the padding id).
set -euo pipefail
build=$1
src=$2
bin=$build/bin
source "$src/tests/lib/e2e.sh"
"${mpi[@]}" -np 2 "$build/bin/pretrain" --recipe recipes/bert/tiny.yaml --set train.train_steps=6 \
  --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 --set logging.run_dir="$tmp/run" \
  > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
"$build/tests/bert_logits" "$tmp/run" > "$tmp/tp1.json"
"${mpi[@]}" -np 2 "$build/tests/bert_logits" "$tmp/run" > "$tmp/tp2.json"
/usr/bin/python3 tests/models/bert_reference.py "$tmp/run" "$tmp/tp1.json" "$tmp/tp2.json"
C=$build/bin/convert_checkpoint
ck=$tmp/run/checkpoints/step_00000006
$C export-hf --input "$ck" --output "$tmp/hf"
/usr/bin/python3 tests/models/bert_reference.py --hf "$tmp/hf" "$tmp/run" "$tmp/tp1.json"
$C reshard --input "$ck" --output "$tmp/tp1ck" --tp 1
$C import-hf --input "$tmp/hf" --output "$tmp/back" --recipe recipes/bert/tiny.yaml --tp 1
/usr/bin/python3 tests/lib/same_tensors.py "$tmp/tp1ck/tp0.safetensors" "$tmp/back/tp0.safetensors" model/ "BERT ours -> Hugging Face -> ours"
# RoBERTa: the same checks through RobertaForMaskedLM.
"${mpi[@]}" -np 2 "$build/bin/pretrain" --recipe recipes/roberta/tiny.yaml --set train.train_steps=6 \
  --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 --set logging.run_dir="$tmp/rob" \
  > "$tmp/rob.log" 2>&1 || { cat "$tmp/rob.log"; exit 1; }
grep -q "RoBERTa: 2 layers.*single segments.*dynamic masks, full-sentences packs" "$tmp/rob.log" ||
  { echo "FAIL: the RoBERTa run does not say its packing and masking"; cat "$tmp/rob.log"; exit 1; }
"$build/tests/bert_logits" "$tmp/rob" > "$tmp/rob1.json"
"${mpi[@]}" -np 2 "$build/tests/bert_logits" "$tmp/rob" > "$tmp/rob2.json"
/usr/bin/python3 tests/models/bert_reference.py "$tmp/rob" "$tmp/rob1.json" "$tmp/rob2.json"
ck=$tmp/rob/checkpoints/step_00000006
$C export-hf --input "$ck" --output "$tmp/rob-hf" > /dev/null
j=$tmp/rob-hf/config.json
grep -q '"architectures": \["RobertaForMaskedLM"\]' "$j" && grep -q '"pad_token_id": 0' "$j" &&
  grep -q '"max_position_embeddings": 65' "$j" && grep -q '"type_vocab_size": 1' "$j" ||
  { echo "FAIL: RoBERTa config.json"; cat "$j"; exit 1; }
/usr/bin/python3 tests/models/bert_reference.py --hf "$tmp/rob-hf" "$tmp/rob" "$tmp/rob1.json"
$C reshard --input "$ck" --output "$tmp/rob-tp1ck" --tp 1 > /dev/null
$C import-hf --input "$tmp/rob-hf" --output "$tmp/rob-back" --recipe recipes/roberta/tiny.yaml --tp 1 > /dev/null
/usr/bin/python3 tests/lib/same_tensors.py "$tmp/rob-tp1ck/tp0.safetensors" "$tmp/rob-back/tp0.safetensors" model/ "RoBERTa ours -> Hugging Face -> ours"
expect_error "model.binary_head: RoBERTa has no sentence-order head" \
  "$build/bin/pretrain" --recipe recipes/roberta/tiny.yaml --set model.binary_head=true --print-config
expect_error "data.packing: full_sentences packs sentences across documents" \
  "$build/bin/pretrain" --recipe recipes/bert/tiny.yaml --set data.packing=full_sentences --print-config
echo "ok   refused: RoBERTa with a binary head; full-sentence packs with sentence-order prediction"
