#!/usr/bin/env bash
# LoRA training step on LLaMA-2-7B shapes, m2u only: random weights stored in bf16 (as a 7B
# model is shipped and kept in memory), LoRA r=16 / alpha 32 on all seven linears, batch 1,
# sequence 128 and 512; step time, tokens/s, GFLOP/s against the machine's sgemm peak measured
# in the same run, and the process's peak resident memory.
#
# There is no PyTorch line: PyTorch eager + peft on this model in fp32 needs 27 GB for the
# weights alone, and the point of this line is the 7B step on one box of 24 GiB.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/eval/bench/common.sh" # die, posint
THREADS=$(nproc)
SEQS=128,512
STEPS=2
WARMUP=1
BUILD="$ROOT/build"
CKPT=""
DO_BUILD=1

usage() {
    cat <<EOF
usage: eval/bench/bench_llama7b.sh [--threads N] [--seqs 128,512] [--steps K] [options]

Times m2u's LoRA step on LLaMA-2-7B shapes (32 layers, 4096 wide, 11008 MLP, vocabulary
32000; random bf16 weights written once by m2u-llm init, 13.5 GB, cached). Needs about
15 GB of free memory at sequence 128 and 18 GB at 512, and 14 GB of disk for the checkpoint.

  --threads N   OpenMP and OpenBLAS threads (default: nproc = $(nproc))
  --seqs LIST   comma list of sequence lengths, batch 1 (default $SEQS)
  --steps K     timed steps per length (default $STEPS)
  --warmup W    untimed steps first (default $WARMUP)
  --build DIR   CMake build directory (default \$repo/build); m2u-bench-llama and m2u-llm are
                (re)built there unless --no-build; results go to DIR/bench_llama/m2u_7b_t<T>.json
  --no-build    use the binaries in DIR as they are
  --ckpt DIR    where the checkpoint is cached (default BUILD/bench_ckpt/7b_bf16)
  --python PY   accepted for symmetry with the other scripts; not used

example:
  eval/bench/bench_llama7b.sh --threads 2 --seqs 128 --steps 2
EOF
}


while (( $# )); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --no-build) DO_BUILD=0; shift; continue ;;
        --threads|--seqs|--steps|--warmup|--build|--ckpt|--python)
            (( $# >= 2 )) || die "missing value for $1"
            case $1 in
                --threads) posint "$1" "$2" 1; THREADS=$2 ;;
                --seqs) SEQS=$2 ;;
                --steps) posint "$1" "$2" 1; STEPS=$2 ;;
                --warmup) posint "$1" "$2" 0; WARMUP=$2 ;;
                --build) BUILD=$2 ;;
                --ckpt) CKPT=$2 ;;
                --python) ;;
            esac
            shift 2 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
IFS=, read -r -a SEQ_LIST <<< "$SEQS"
(( ${#SEQ_LIST[@]} )) || die "--seqs is empty"
for t in "${SEQ_LIST[@]}"; do posint "--seqs" "$t" 2; (( t <= 4096 )) || die "--seqs: $t is longer than the model's 4096 positions"; done
CKPT=${CKPT:-$BUILD/bench_ckpt/7b_bf16}
OUTDIR="$BUILD/bench_llama"

# Memory: 13.5 GB of weights (mmap'ed, shared with the page cache) + activations; refuse early
# with the reason rather than let the kernel kill the run.
need_gb=$(( 15 + ( $(printf '%s\n' "${SEQ_LIST[@]}" | sort -n | tail -1) > 128 ? 3 : 0 ) ))
avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
(( avail_kb / 1024 / 1024 >= need_gb )) ||
    die "needs about $need_gb GB of available memory, this machine has $(( avail_kb / 1024 / 1024 )) GB"

if (( DO_BUILD )); then
    mkdir -p "$BUILD"
    LOG="$BUILD/bench_llama7b_build.log"
    { [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release; } > "$LOG" 2>&1 &&
        cmake --build "$BUILD" -j "$(nproc)" --target m2u-bench-llama m2u-llm >> "$LOG" 2>&1 ||
        { tail -n 30 "$LOG" >&2; die "building m2u-bench-llama and m2u-llm in $BUILD failed (log: $LOG)"; }
fi
for b in m2u-bench-llama m2u-llm; do
    [[ -x $BUILD/$b ]] || die "$BUILD/$b not found (drop --no-build, or point --build at a build directory)"
done
mkdir -p "$OUTDIR"
rm -f "$OUTDIR"/m2u_7b_t*.json # the report lists what this run measured, nothing older

if [[ ! -f $CKPT/model.safetensors ]]; then
    mkdir -p "$(dirname "$CKPT")" # before df: df of a missing directory answers nothing
    avail_disk=$(df -Pk "$(dirname "$CKPT")" 2>/dev/null | awk 'NR == 2 {print $4}' || echo 0)
    (( ${avail_disk:-0} / 1024 / 1024 >= 14 )) || die "writing the checkpoint needs 14 GB of disk under $(dirname "$CKPT")"
    echo "writing a random LLaMA-2-7B-shaped bf16 checkpoint to $CKPT (once; about 5 minutes on 2 cores)"
    tmp="$CKPT.partial"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    cat > "$tmp/config.json.in" <<'EOF'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
 "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
 "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
 "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "vocab_size": 32000,
 "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2}
EOF
    "$BUILD/m2u-llm" init --config "$tmp/config.json.in" --tokenizer "$ROOT/tests/fixtures/tokenizer/tokenizer.json" \
        --out "$tmp/ckpt" --dtype bf16 --seed 7
    rm -rf "$CKPT"
    mv "$tmp/ckpt" "$CKPT"
    rm -rf "$tmp"
fi

export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
echo "m2u LoRA step on LLaMA-2-7B shapes (bf16 weights): threads $THREADS, batch 1, T in $SEQS," \
     "$WARMUP warm-up + $STEPS timed steps; load average $(cut -d' ' -f1-3 /proc/loadavg)"
first=1
for t in "${SEQ_LIST[@]}"; do
    # the sgemm peak is measured once, in the first run
    peak=0
    (( first )) && peak=2048
    first=0
    "$BUILD/m2u-bench-llama" --model "$CKPT" --name "7b_t$t" --batch 1 --seq "$t" --steps "$STEPS" \
        --warmup "$WARMUP" --threads "$THREADS" --peak-n "$peak" --precision bf16 --json "$OUTDIR/m2u_7b_t$t.json"
done
