#!/usr/bin/env bash
# Issue 16's GPU table in one command: DPO at the 1.28 B shape (TRL, "before", each technique,
# all together, + activation checkpointing, SFT padded/packed) then the 0.39 B shape (TRL, before,
# all), bf16, batch 8 pairs x 512 tokens, up to 300 steps each.
#
# Time: everything below stops within LIMIT seconds (default 270), so a machine start (1-2 min)
# plus this, twice, fits the 15 minutes of device time a task gets.  To fit, each configuration
# trains for at most PER seconds (default 12) after its first step, usually well under 300
# steps; the table says how many steps each one ran.  Results are written as they come, so a
# run cut short still leaves what it measured under $OUT.
#
# The device image has torch, transformers and accelerate but not TRL or datasets. Once, on the
# dev machine, in the repo root (wheels are pure Python):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 -d .whl trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
# then call the device tool with: command "bash benchmarks/gpu_run.sh", carry [".whl"], timeout_s 330.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/var/bench}"
mkdir -p "$OUT"
LIMIT="${LIMIT:-270}"
PER="${PER:-12}"
PY="${PY:-python3}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
start=$(date +%s)
left() { echo $(( LIMIT - ($(date +%s) - start) )); }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
$PY -c "import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__)" \
  >> "$OUT/gpu.txt" 2>&1
# flash-attention's varlen kernel when it is installed (true padding-free attention); else SDPA,
# which gets a block-diagonal mask from the packed position ids.
ATTN=$($PY -c "import importlib.util as u; print('flash_attention_2' if u.find_spec('flash_attn') else 'sdpa')")
COMMON=(--steps 300 --batch-size 8 --seq-len 512 --max-seconds "$PER" --attn "$ATTN" --in-process)

big=$(( $(left) * 7 / 10 ))
timeout "$big" $PY benchmarks/alignment_gpu.py --size 1.28b "${COMMON[@]}" --budget-s $(( big - 15 )) \
  --configs trl,before,all,precompute,packing,all_ckpt,sft_before,sft --json "$OUT/gpu_1.28b.json" \
  2>&1 | tee "$OUT/gpu_1.28b.log"
rest=$(( $(left) - 5 ))
if [ "$rest" -gt 40 ]; then
  timeout "$rest" $PY benchmarks/alignment_gpu.py --size 0.39b "${COMMON[@]}" --budget-s $(( rest - 10 )) \
    --configs trl,before,all --json "$OUT/gpu_0.39b.json" 2>&1 | tee "$OUT/gpu_0.39b.log"
fi
echo "total $(( $(date +%s) - start )) s of $LIMIT"
