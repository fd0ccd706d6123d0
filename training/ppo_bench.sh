#!/usr/bin/env bash
# PPO step benchmark on the tiny bundle (CPU): seconds per step split into rollout / reward /
# update, and the reward work the x-baseline cache saves (every step's pairs are scored a second
# time by a scorer that recomputes x's images on every call, as the reference code does; the two
# must give the same rewards bit for bit). Run from the repository root:
#   bash training/ppo_bench.sh            (about 3 min on 2 cores; STEPS=, BATCH=, BEAMS= to change)
# It makes a small SFT policy on the synthetic demo corpus (2 layers, 200 steps) and a score
# bundle with tiny RANDOM SD / CLIP graphs (torch-default init) and the real aesthetic head.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source training/env.sh
w="${PPO_BENCH_WORK:-target/ppo-bench}"
mkdir -p "$w"
cargo build -q -p promptist-train --bin promptist-train
cargo build -q --release -p promptist --bin promptist
t=target/debug/promptist-train
if [ ! -f "$w/sft/last/model.safetensors" ]; then
  $t demo-corpus --out "$w/corpus.jsonl" --n 400 --seed 1
  $t train-tokenizer --data "$w/corpus.jsonl" --source-kinds mc,mcm --seed 1 --vocab-size 512 --out "$w/tok"
  $t train --data "$w/corpus.jsonl" --source-kinds mc,mcm --seed 1 --val-fraction 0.1 --tokenizer "$w/tok/tokenizer.json" \
    --preset tiny --n-positions 128 --lr 3e-3 --batch-size 16 --micro-batch 16 --max-steps 200 --eval-every 200 \
    --save-every 200 --threads 1 --synthetic --no-progress --out "$w/sft"
fi
if [ ! -f "$w/score/unet/model.onnx" ] && [ ! -d "$w/score/unet" ]; then
  rm -rf "$w/score" && cp -r training/demo/bundle "$w/score"
  target/release/promptist add-score --bundle "$w/score" --tiny --init torch
fi
subjects=("a red fox" "a castle" "an old wizard" "a robot" "a cat" "a lighthouse" "a dragon" "a forest path" "a queen" "a ship")
settings=("" " in the snow" " at night" " by the sea" " in a garden" " on a hill")
: > "$w/prompts.txt"
for s in "${subjects[@]}"; do for t2 in "${settings[@]}"; do echo "$s$t2" >> "$w/prompts.txt"; done; done
cat > "$w/ppo.json" <<JSON
{"steps": ${STEPS:-10}, "batch_size": ${BATCH:-16}, "num_beams": ${BEAMS:-8}, "min_new_tokens": 8, "max_new_tokens": 24,
 "micro_batch": 16, "lr": 1e-4, "beta": 0.002, "image_size": 64, "sd_steps": 3, "sd_max_batch": 16}
JSON
$t ppo-bench --sft "$w/sft/last" --score-bundle "$w/score" --prompts "$w/prompts.txt" --config "$w/ppo.json" \
  --threads 1 --ort-threads 1 > "$w/bench.json"
echo "summary: $w/bench.json"
