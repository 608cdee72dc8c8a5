#!/usr/bin/env bash
# m2u vs PyTorch eager: MERT feature-extraction throughput (audio seconds per second).
#
# Writes a random MERT-v1-sized HubertModel checkpoint (cached under the build
# directory), then times, in this one run and with the same thread count and audio:
#   m2u-bench-mert           (C: OpenMP + OpenBLAS)
#   bench_mert_torch.py run  (transformers HubertModel, eager attention)
# One run = normalisation + forward with all hidden states + per-layer time means.
# Prints both rates, their ratio, and the max relative difference of the layer means, and
# each side's GFLOP/s (m2u: front end and layers apart) against the sgemm peak of the same
# run.  The sides alternate --rounds times and each keeps its fastest round: this machine's
# speed drifts by tens of percent over minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/eval/bench/common.sh" # die, posint
THREADS=$(nproc)
CONFIG=95m
SECONDS_AUDIO=10
RUNS=3
WARMUP=1
ROUNDS=3
BUILD="$ROOT/build"
PY=${PYTHON:-python3}
DO_BUILD=1

usage() {
    cat <<EOF
usage: eval/bench/bench_mert.sh [--threads N] [--config 95m|330m] [--seconds S] [options]

  --threads N     threads for both sides (default: nproc = $(nproc))
  --config C      95m (MERT-v1-95M shapes, post-norm) or 330m (MERT-v1-330M, pre-norm); default $CONFIG
  --seconds S     audio length per run, at 24 kHz (default $SECONDS_AUDIO)
  --runs K        timed runs per side (default $RUNS)
  --warmup W      untimed runs first (default $WARMUP)
  --rounds R      m2u and PyTorch run alternately R times; each side's fastest round is
                  reported (default $ROUNDS)
  --build DIR     CMake build directory (default \$repo/build); m2u-bench-mert is (re)built
                  there unless --no-build
  --no-build      use DIR/m2u-bench-mert as it is
  --python PY     interpreter with torch, transformers, safetensors (default python3)

example:
  eval/bench/bench_mert.sh --threads 2 --seconds 10 --rounds 3
EOF
}


while (( $# )); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --no-build) DO_BUILD=0; shift; continue ;;
        --threads|--config|--seconds|--runs|--warmup|--rounds|--build|--python)
            (( $# >= 2 )) || die "missing value for $1"
            case $1 in
                --threads) posint "$1" "$2" 1; THREADS=$2 ;;
                --config) [[ $2 == 95m || $2 == 330m ]] || die "unknown config '$2' (95m, 330m)"; CONFIG=$2 ;;
                --seconds) posint "$1" "$2" 1; SECONDS_AUDIO=$2 ;;
                --runs) posint "$1" "$2" 1; RUNS=$2 ;;
                --warmup) posint "$1" "$2" 0; WARMUP=$2 ;;
                --rounds) posint "$1" "$2" 1; ROUNDS=$2 ;;
                --build) BUILD=$2 ;;
                --python) PY=$2 ;;
            esac
            shift 2 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

TORCH_PY="$ROOT/eval/bench/bench_mert_torch.py"
BIN="$BUILD/m2u-bench-mert"
CKPT="$BUILD/bench_ckpt/mert_$CONFIG"
OUTDIR="$BUILD/bench_mert"
"$PY" -c "import torch, transformers, safetensors" 2>/dev/null ||
    die "$PY cannot import torch, transformers and safetensors (pip install torch==2.5.1 transformers==4.46.3)"
if (( DO_BUILD )); then
    mkdir -p "$BUILD"
    LOG="$BUILD/bench_mert_build.log"
    { [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release; } > "$LOG" 2>&1 &&
        cmake --build "$BUILD" -j "$(nproc)" --target m2u-bench-mert >> "$LOG" 2>&1 ||
        { tail -n 30 "$LOG" >&2; die "building m2u-bench-mert in $BUILD failed (log: $LOG)"; }
fi
[[ -x $BIN ]] || die "$BIN not found (drop --no-build, or point --build at a build directory)"
mkdir -p "$OUTDIR"

# One thread count for every pool: our OpenMP loops, OpenBLAS, torch's intra-op pool, MKL.
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS

[[ -f $CKPT/config.json ]] || "$PY" "$TORCH_PY" make --config "$CONFIG" --out "$CKPT"
echo "MERT $CONFIG, $SECONDS_AUDIO s of audio, threads $THREADS, $WARMUP warm-up + $RUNS timed runs, $ROUNDS alternated rounds;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$OUTDIR"/m2u.r*.json "$OUTDIR"/torch.r*.json "$OUTDIR"/*_means.r*.npy
for (( r = 1; r <= ROUNDS; r++ )); do
    "$BIN" --model "$CKPT" --seconds "$SECONDS_AUDIO" --runs "$RUNS" --warmup "$WARMUP" --threads "$THREADS" \
           --means "$OUTDIR/m2u_means.r$r.npy" --json "$OUTDIR/m2u.r$r.json"
    "$PY" "$TORCH_PY" run --model "$CKPT" --seconds "$SECONDS_AUDIO" --runs "$RUNS" --warmup "$WARMUP" \
          --threads "$THREADS" --means "$OUTDIR/torch_means.r$r.npy" --json "$OUTDIR/torch.r$r.json"
done
# each side's fastest round, also as m2u.json / torch.json (+ _means.npy), which m2u-eval bench reads
"$PY" "$TORCH_PY" report --out-dir "$OUTDIR" --rounds "$ROUNDS" --model "$CKPT"
