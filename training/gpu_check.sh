#!/usr/bin/env bash
# One-shot CUDA check of promptist-train on a GPU machine (docs/architecture.md: build on the CPU machine,
# send the binary). Build here first:  source training/env.sh && cargo build -p promptist-train
# then run from the repository root there (carry target/debug/promptist-train and target/demo-work):
#   bash training/gpu_check.sh > $OUT/gpu_check.log 2>&1
# It runs the 117M config (random init): the SFT-step benchmark on CUDA (fp32, against PyTorch +
# transformers when that Python has transformers), and short bf16 / fp16 / fp32 SFT runs on the
# synthetic demo corpus with the GPT-2 tokenizer, sampling GPU memory with nvidia-smi; a short
# table comes last.
set -uo pipefail
TORCH_PY="${TORCH_PY:-/opt/torch/.venv/bin/python}"
export LD_LIBRARY_PATH="$("$TORCH_PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))'):${LD_LIBRARY_PATH:-}"
bin="${BIN:-target/debug/promptist-train}"
corpus="${CORPUS:-target/demo-work/corpus.jsonl}"
out="${OUT:-/tmp}/gpu-check"
mkdir -p "$out"
[ -f "$corpus" ] || "$bin" demo-corpus --out "$corpus" --n 20000 --seed 0
ref=(--python "$TORCH_PY"); "$TORCH_PY" -c 'import transformers' 2>/dev/null || ref=(--no-reference)
peak() { # run a command while sampling GPU memory; prints the peak MiB last
  local log="$1"; shift
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.5; done ) > "$log.mem" 2>/dev/null &
  local sampler=$!
  "$@" > "$log" 2>&1; local rc=$?
  kill "$sampler" 2>/dev/null
  echo "rc=$rc peak_mib=$(sort -n "$log.mem" | tail -1)"
}
rows=()
for b in 8 32; do
  r=$(peak "$out/bench_b$b.log" "$bin" bench --preset gpt2 --device cuda --batch "$b" --seq 512 --steps 10 --warmup 3 --threads 8 "${ref[@]}")
  rows+=("bench gpt2 fp32 batch ${b}x512: $(grep '^{' "$out/bench_b$b.log") $r")
done
for p in bf16 fp16 fp32; do
  r=$(peak "$out/train_$p.log" "$bin" train --data "$corpus" --source-kinds mc,mcm --preset gpt2 --device cuda --precision "$p" \
      --batch-size 256 --micro-batch 64 --max-steps 20 --eval-every 20 --save-every 1000 --no-progress --out "$out/run_$p")
  tps=$("$TORCH_PY" -c "import json,sys; m=[json.loads(l) for l in open('$out/run_$p/metrics.jsonl')]; print(round(sum(x['tokens_per_s'] for x in m[3:])/max(1,len(m[3:]))), 'tok/s; loss', round(m[0]['train_loss'],3), '->', round(m[-1]['train_loss'],3), 'val', m[-1].get('val_loss'))" 2>&1)
  rows+=("train gpt2 $p 256/64 x20 steps: $tps $r")
done
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
printf '%s\n' "${rows[@]}"
