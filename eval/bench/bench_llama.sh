#!/usr/bin/env bash
# m2u vs PyTorch eager: LoRA fine-tuning throughput on random LLaMA checkpoints.
#
# For each config it writes a random LlamaForCausalLM checkpoint (fp32 safetensors,
# HF layout; cached under the build directory), then times, in this one run and with
# the same thread count, batch and sequence length:
#   m2u-bench-llama          (C: OpenMP + OpenBLAS)
#   bench_llama_torch.py run (transformers LlamaForCausalLM, eager attention, peft LoRA)
# A step is forward + cross-entropy + backward with LoRA r=16 (alpha 32) on all seven
# linears and a frozen base; no optimizer step on either side.  A config named NAME-bf16
# (15m-bf16, 110m-bf16) runs m2u with --precision bf16 (train.precision: bf16) against
# PyTorch with its forward under CPU bf16 autocast, on NAME's checkpoint.  It prints a table
# (tokens/s, m2u/torch ratio, m2u GFLOP/s against the sgemm peak measured by the C
# program) and writes all numbers to a JSON file.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/eval/bench/common.sh" # die, posint
THREADS=$(nproc)
CONFIGS=tiny,15m,110m,110m-bf16
BF16_TORCH_STEPS=1
STEPS=10
WARMUP=2
ROUNDS=3
BATCH=4
SEQ=128
BUILD="$ROOT/build"
CKPT=""
JSON=""
PY=${PYTHON:-python3}
DO_BUILD=1

usage() {
    cat <<EOF
usage: eval/bench/bench_llama.sh [--threads N] [--configs tiny,15m,110m] [--steps K] [options]

  --threads N      threads for both sides (default: nproc = $(nproc))
  --configs LIST   comma list of tiny (64 hidden, 2 layers, vocab 96), 15m (llama2.c
                   stories15M: 288 hidden, 6 layers), 110m (stories110M: 768 hidden,
                   12 layers), and 15m-bf16, 110m-bf16: the same checkpoints with m2u's
                   bf16 path against PyTorch's CPU bf16 autocast; default $CONFIGS
  --steps K        timed steps per side and config (default $STEPS)
  --warmup W       untimed steps first (default $WARMUP)
  --rounds R       m2u and PyTorch run alternately R times per config, and each side's
                   fastest round is reported (default $ROUNDS): on a shared or virtual machine
                   the speed drifts over minutes, and one round each can catch the two sides
                   at different speeds
  --bf16-torch-steps K
                   timed steps of PyTorch's bf16 autocast side, after one warm-up step and in
                   the first round only (default $BF16_TORCH_STEPS): on CPUs without AVX-512
                   BF16 or AMX its step is minutes long (about 160 s on 110m, 2 Zen 3 cores)
  --batch B        sequences per step (default $BATCH)
  --seq T          tokens per sequence (default $SEQ)
  --build DIR      CMake build directory (default \$repo/build); m2u-bench-llama is
                   (re)built there unless --no-build
  --no-build       use DIR/m2u-bench-llama as it is
  --ckpt DIR       where the random checkpoints are cached (default BUILD/bench_ckpt)
  --json PATH      result file (default BUILD/bench_llama/results.json)
  --python PY      interpreter with torch, transformers, peft (default python3)

example:
  eval/bench/bench_llama.sh --threads 2 --configs tiny,15m --steps 10 --json /tmp/bench.json
EOF
}


while (( $# )); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --no-build) DO_BUILD=0; shift; continue ;;
        --threads|--configs|--steps|--warmup|--rounds|--bf16-torch-steps|--batch|--seq|--build|--ckpt|--json|--python)
            (( $# >= 2 )) || die "missing value for $1"
            case $1 in
                --threads) posint "$1" "$2" 1; THREADS=$2 ;;
                --configs) CONFIGS=$2 ;;
                --steps) posint "$1" "$2" 1; STEPS=$2 ;;
                --warmup) posint "$1" "$2" 0; WARMUP=$2 ;;
                --rounds) posint "$1" "$2" 1; ROUNDS=$2 ;;
                --bf16-torch-steps) posint "$1" "$2" 1; BF16_TORCH_STEPS=$2 ;;
                --batch) posint "$1" "$2" 1; BATCH=$2 ;;
                --seq) posint "$1" "$2" 2; SEQ=$2 ;;
                --build) BUILD=$2 ;;
                --ckpt) CKPT=$2 ;;
                --json) JSON=$2 ;;
                --python) PY=$2 ;;
            esac
            shift 2 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

IFS=, read -r -a CFG_LIST <<< "$CONFIGS"
(( ${#CFG_LIST[@]} )) || die "--configs is empty"
for c in "${CFG_LIST[@]}"; do
    case $c in tiny|15m|110m|15m-bf16|110m-bf16) ;;
        *) die "unknown config '$c' (have tiny, 15m, 110m, 15m-bf16, 110m-bf16)" ;; esac
done
CKPT=${CKPT:-$BUILD/bench_ckpt}
OUTDIR="$BUILD/bench_llama"
JSON=${JSON:-$OUTDIR/results.json}
TORCH_PY="$ROOT/eval/bench/bench_llama_torch.py"
BIN="$BUILD/m2u-bench-llama"

"$PY" -c "import torch, transformers, peft, safetensors" 2>/dev/null ||
    die "$PY cannot import torch, transformers, peft and safetensors (pip install torch==2.5.1 transformers==4.46.3 peft==0.13.2)"

if (( DO_BUILD )); then
    mkdir -p "$BUILD"
    LOG="$BUILD/bench_llama_build.log"
    { [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release; } > "$LOG" 2>&1 &&
        cmake --build "$BUILD" -j "$(nproc)" --target m2u-bench-llama >> "$LOG" 2>&1 ||
        { tail -n 30 "$LOG" >&2; die "building m2u-bench-llama in $BUILD failed (log: $LOG)"; }
fi
[[ -x $BIN ]] || die "$BIN not found (drop --no-build, or point --build at a build directory)"
mkdir -p "$CKPT" "$OUTDIR" "$(dirname "$JSON")"

# One thread count for every pool: our OpenMP loops, OpenBLAS, torch's intra-op pool, MKL.
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export TOKENIZERS_PARALLELISM=false

echo "m2u vs PyTorch eager: threads $THREADS, B=$BATCH T=$SEQ, $WARMUP warm-up + $STEPS timed steps," \
     "$ROUNDS alternated rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
RESULTS=()
for c in "${CFG_LIST[@]}"; do
    base=${c%-bf16}
    [[ -f $CKPT/$base/config.json ]] || "$PY" "$TORCH_PY" make --config "$base" --out "$CKPT/$base"
    rm -f "$OUTDIR/m2u_$c.r"*.json "$OUTDIR/torch_$c.r"*.json
    for (( r = 1; r <= ROUNDS; r++ )); do
        if [[ $c == *-bf16 ]]; then
            "$BIN" --model "$CKPT/$base" --name "$c" --precision bf16 --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" \
                   --warmup "$WARMUP" --threads "$THREADS" --json "$OUTDIR/m2u_$c.r$r.json"
            RESULTS+=("$OUTDIR/m2u_$c.r$r.json")
            (( r == 1 )) || continue
            "$PY" "$TORCH_PY" run --model "$CKPT/$base" --name "$c" --autocast bf16 --batch "$BATCH" --seq "$SEQ" \
                  --steps "$BF16_TORCH_STEPS" --warmup 1 --threads "$THREADS" --json "$OUTDIR/torch_$c.r$r.json"
            RESULTS+=("$OUTDIR/torch_$c.r$r.json")
            continue
        fi
        "$BIN" --model "$CKPT/$c" --name "$c" --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" --warmup "$WARMUP" \
               --threads "$THREADS" --json "$OUTDIR/m2u_$c.r$r.json"
        "$PY" "$TORCH_PY" run --model "$CKPT/$c" --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" --warmup "$WARMUP" \
              --threads "$THREADS" --json "$OUTDIR/torch_$c.r$r.json"
        RESULTS+=("$OUTDIR/m2u_$c.r$r.json" "$OUTDIR/torch_$c.r$r.json")
    done
done
# each side's fastest round per config, also as m2u_<cfg>.json / torch_<cfg>.json (m2u-eval bench reads those)
"$PY" "$TORCH_PY" report --json "$JSON" --best-dir "$OUTDIR" "${RESULTS[@]}"
