#!/usr/bin/env bash
# Reproduce the SYNTHETIC demo policy bundle (training/demo/bundle) from scratch, on the CPU:
#   bash training/demo/reproduce.sh            (from the repository root; about 15-25 min on a loaded 2-core machine)
# 1. a seeded synthetic corpus (plain subjects -> engineered prompts from modifier lists),
# 2. a small byte-level BPE tokenizer trained on it (so the embedding matrix is small),
# 3. SFT of a 4-layer, width-128 GPT-2 from random init with promptist-train,
# 4. export of the best checkpoint (by validation loss) as a promptist bundle.
# Everything is labelled synthetic: the corpus, the checkpoints and the bundle's manifest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
source training/env.sh
work="${DEMO_WORK:-target/demo-work}"
mkdir -p "$work"
cargo build -p promptist-train
bin=target/debug/promptist-train   # dependencies (libtorch calls) are optimised in the dev profile
$bin demo-corpus --out "$work/corpus.jsonl" --n 20000 --seed 0
$bin train-tokenizer --data "$work/corpus.jsonl" --source-kinds mc,mcm --seed 0 --vocab-size 1024 --out "$work/tokenizer"
# DEMO_RESUME=1 continues an interrupted run from $work/run/last (same result, bit for bit)
[ -n "${DEMO_RESUME:-}" ] || rm -rf "$work/run"
$bin train --data "$work/corpus.jsonl" --source-kinds mc,mcm --seed 0 --val-fraction 0.02 \
  --tokenizer "$work/tokenizer/tokenizer.json" --preset tiny --n-layer 4 --n-head 4 --n-embd 128 --n-positions 128 \
  --lr 1e-3 --warmup-steps 50 --weight-decay 0.1 --batch-size 64 --micro-batch 64 --max-steps 1000 \
  --eval-every 100 --save-every 100 --threads "${DEMO_THREADS:-1}" --synthetic --out "$work/run" ${DEMO_RESUME:+--resume}
rm -rf training/demo/bundle
$bin export --checkpoint "$work/run/best" --out training/demo/bundle --inline --name promptist-demo-synthetic \
  --description "SYNTHETIC demo policy: a 4-layer GPT-2 trained by promptist-train on a generated corpus (training/src/demo/corpus.rs), not on real prompts; shows the pipeline, not the paper's quality"
cp "$work/run/loss.png" training/demo/loss.png
cp "$work/run/metrics.jsonl" training/demo/metrics.jsonl
$bin generate --checkpoint "$work/run/best" --prompt "a red fox in the snow" --prompt "a castle on a cliff" \
  --prompt "portrait of an old wizard" --prompt "a robot in a neon street" --prompt "A cat" | tee training/demo/samples.txt
