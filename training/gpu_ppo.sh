#!/usr/bin/env bash
# One-shot CUDA check of PPO and of optimize on CUDA on a GPU machine, run from
# the repository root there after the ONNX Runtime GPU parts were staged into /tmp/ort-parts
# (training/stage_ort_gpu.sh) and the binaries copied to $BIN (default /tmp/gbin):
#   promptist (release, stripped) and promptist-train (built here against torch 2.11.0).
# It makes a random GPT-2 117M checkpoint (the "SFT" policy) and a bundle with REAL-SIZE random
# SD 1.5 + CLIP ViT-L/14 graphs (fp16, the real aesthetic head), times `promptist optimize` on the
# CUDA EP, then runs a few PPO steps: policy on CUDA in tch, reward through the CUDA EP, and prints a
# short table last. Logs stay in $OUT/gpu_ppo (or /tmp/gpu_ppo).
set -uo pipefail
BIN="${BIN:-/tmp/gbin}"
DATA="${DATA:-/tmp/gdata}"
STEPS="${STEPS:-2}"
BATCH="${BATCH:-8}"
W=/tmp/gppo
LOG="${OUT:-/tmp}/gpu_ppo"
mkdir -p "$W" "$LOG"
source .device/ort-gpu/env.sh || exit 1
TORCH_LIB=/opt/torch/.venv/lib/python3.12/site-packages/torch/lib
export LD_LIBRARY_PATH="$TORCH_LIB:$LD_LIBRARY_PATH"
rows=()
stamp() { date +%s.%N; }
secs() { python3 -c "print(round($2 - $1, 1))"; }
run() { # name, command...: run, log, record seconds and status
  local name="$1"; shift
  local t0; t0=$(stamp)
  "$@" > "$LOG/$name.log" 2>&1; local rc=$?
  local dt; dt=$(secs "$t0" "$(stamp)")
  rows+=("$name: rc=$rc ${dt}s")
  echo "== $name rc=$rc ${dt}s"; tail -4 "$LOG/$name.log"
  return $rc
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
run make_policy "$BIN/promptist" make-tiny --preset gpt2 --tied --seed 0 --out "$W/sft" --bundle "$W/bundle" --dtype fp16
run add_score "$BIN/promptist" add-score --bundle "$W/bundle" --random sd15 vit-l14 --dtype fp16 --seed 1 \
  --aesthetic "$DATA/sac+logos+ava1-l14-linearMSE.pth" --clip-bpe "$DATA/bpe_simple_vocab_16e6.txt.gz"
du -sh "$W/bundle"
for i in 1 2; do
  run "optimize_cuda_$i" "$BIN/promptist" optimize "a red fox in the snow" --bundle "$W/bundle" --provider cuda --json
done
printf 'a red fox in the snow\na castle on a cliff\nan old wizard\na robot in a neon street\na cat on a sofa\na lighthouse at night\na dragon over a city\na forest path in autumn\n' > "$W/prompts.txt"
cat > "$W/ppo.json" <<JSON
{"steps": $STEPS, "batch_size": $BATCH, "num_beams": 16, "micro_batch": 16, "image_size": 512, "sd_steps": 20, "sd_max_batch": 16, "images_per_prompt": 2}
JSON
( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 1; done ) > "$LOG/mem.txt" 2>/dev/null &
sampler=$!
run ppo_cuda "$BIN/promptist-train" ppo --sft "$W/sft" --score-bundle "$W/bundle" --prompts "$W/prompts.txt" --config "$W/ppo.json" \
  --out "$W/ppo" --device cuda --provider cuda --no-progress
kill $sampler 2>/dev/null
cp "$W/ppo/metrics.jsonl" "$LOG/" 2>/dev/null
echo "---- table"
printf '%s\n' "${rows[@]}"
echo "peak GPU MiB during PPO: $(sort -n "$LOG/mem.txt" | tail -1)"
python3 - "$W/ppo/metrics.jsonl" <<'PY'
import json, sys
try:
    for l in open(sys.argv[1]):
        m = json.loads(l)
        print(f"step {m['step']}: rollout {m['rollout_s']:.1f}s reward {m['reward_s']:.1f}s update {m['update_s']:.1f}s "
              f"| images x {m['user_images']} y {m['candidate_images']} cache {m['cache_hit_rate']:.0%} "
              f"| reward {m['reward']:.3f} kl {m['kl']:.3f} len {m['response_len']:.1f} max_new {m['max_new_tokens']}")
except FileNotFoundError:
    print("no PPO metrics")
PY
