#!/usr/bin/env bash
# The main job on the embedded default.  Today (numeric core only) it:
#   1. installs dependencies and builds m2u,
#   2. creates a small random LLaMA with the real LLaMA-2 tokenizer,
#   3. fine-tunes a LoRA adapter on the embedded caption text (data/demo/captions.txt),
#      showing held-out loss before and after,
#   4. generates from the adapted model and writes logits as .npy.
# As the dataset builder and trainer land, this grows into: build the embedded
# dataset, train stages 1 -> 2 -> 3 under mpirun, report.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
OUT=${M2U_DEMO_OUT:-build/demo}

bash launch/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS" --target m2u-llm
BIN=build/m2u-llm
mkdir -p "$OUT"

echo "== 1. a random 4-layer LLaMA (GQA, vocab 32000) with the LLaMA-2 tokenizer"
$BIN init --config configs/tiny_llama.json --tokenizer tests/fixtures/tokenizer/tokenizer.json \
  --out "$OUT/base" --seed 1 --std 0.05 --embed-std 0.1
echo "tokens of 'A calm piano melody':"
$BIN tokenize --model "$OUT/base" "A calm piano melody"

echo "== 2. LoRA fine-tuning on data/demo/captions.txt"
$BIN finetune --model "$OUT/base" --text data/demo/captions.txt --out "$OUT/adapter" \
  --steps 400 --batch 4 --seq 48 --lr 1e-2 --lora-r 16 --lora-alpha 32 --seed 1 --log "$OUT/finetune.jsonl"

echo "== 3. greedy generation with the adapter"
$BIN generate --model "$OUT/base" --adapter "$OUT/adapter" --prompt "A gentle piano" --max-new-tokens 24

echo "== 4. logits for diffing against transformers"
$BIN logits --model "$OUT/base" --adapter "$OUT/adapter" --text "A gentle piano melody" --out "$OUT/logits.npy"

echo
echo "done: adapter (PEFT format) in $OUT/adapter, training log in $OUT/finetune.jsonl"
