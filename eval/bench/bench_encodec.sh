#!/usr/bin/env bash
# m2u vs PyTorch eager: EnCodec-32k decode speed (times real time), MusicGen's codec.
#
# Writes a random EncodecModel with facebook/encodec_32khz's exact config (cached under the build
# directory), then times, in this one run and with the same thread count and codes:
#   m2u-bench-encodec           (C: OpenMP + OpenBLAS)
#   bench_encodec_torch.py run  (transformers EncodecModel.decode)
# Prints both real-time factors, their ratio, and the max difference of the two decoded waveforms.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/eval/bench/common.sh" # die, posint
THREADS=$(nproc)
SECONDS_AUDIO=5
RUNS=3
WARMUP=1
BUILD="$ROOT/build"
PY=${PYTHON:-python3}
DO_BUILD=1

usage() {
    cat <<USAGE
usage: eval/bench/bench_encodec.sh [--threads N] [--seconds S] [options]

  --threads N     threads for both sides (default: nproc = $(nproc))
  --seconds S     audio length to decode (default $SECONDS_AUDIO; 50 frames per second)
  --runs K        timed runs per side (default $RUNS)
  --warmup W      untimed runs first (default $WARMUP)
  --build DIR     CMake build directory (default \$repo/build); m2u-bench-encodec is (re)built
                  there unless --no-build
  --no-build      use DIR/m2u-bench-encodec as it is
  --python PY     interpreter with torch, transformers, safetensors (default python3)
USAGE
}


while (( $# )); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --no-build) DO_BUILD=0; shift; continue ;;
        --threads|--seconds|--runs|--warmup|--build|--python)
            (( $# >= 2 )) || die "missing value for $1"
            case $1 in
                --threads) posint "$1" "$2" 1; THREADS=$2 ;;
                --seconds) posint "$1" "$2" 1; SECONDS_AUDIO=$2 ;;
                --runs) posint "$1" "$2" 1; RUNS=$2 ;;
                --warmup) posint "$1" "$2" 0; WARMUP=$2 ;;
                --build) BUILD=$2 ;;
                --python) PY=$2 ;;
            esac
            shift 2 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

TORCH_PY="$ROOT/eval/bench/bench_encodec_torch.py"
BIN="$BUILD/m2u-bench-encodec"
CKPT="$BUILD/bench_ckpt/encodec_32khz_random"
OUTDIR="$BUILD/bench_encodec"
"$PY" -c "import torch, transformers, safetensors" 2>/dev/null ||
    die "$PY cannot import torch, transformers and safetensors (pip install torch==2.5.1 transformers==4.46.3)"
if (( DO_BUILD )); then
    mkdir -p "$BUILD"
    LOG="$BUILD/bench_encodec_build.log"
    { [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release; } > "$LOG" 2>&1 &&
        cmake --build "$BUILD" -j "$(nproc)" --target m2u-bench-encodec >> "$LOG" 2>&1 ||
        { tail -n 30 "$LOG" >&2; die "building m2u-bench-encodec in $BUILD failed (log: $LOG)"; }
fi
[[ -x $BIN ]] || die "$BIN not found (drop --no-build, or point --build at a build directory)"
mkdir -p "$OUTDIR"

# One thread count for every pool: our OpenMP loops, OpenBLAS, torch's intra-op pool, MKL.
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS

[[ -f $CKPT/model.safetensors ]] || "$PY" "$TORCH_PY" make --out "$CKPT"
echo "EnCodec 32 kHz (random weights, real shape), $SECONDS_AUDIO s of audio, threads $THREADS," \
     "$WARMUP warm-up + $RUNS timed runs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" --model "$CKPT" --seconds "$SECONDS_AUDIO" --runs "$RUNS" --warmup "$WARMUP" --threads "$THREADS" \
       --audio "$OUTDIR/m2u_audio.npy" --json "$OUTDIR/m2u.json"
"$PY" "$TORCH_PY" run --model "$CKPT" --seconds "$SECONDS_AUDIO" --runs "$RUNS" --warmup "$WARMUP" \
      --threads "$THREADS" --audio "$OUTDIR/torch_audio.npy" --json "$OUTDIR/torch.json"
"$PY" "$TORCH_PY" report --m2u "$OUTDIR/m2u.json" --torch "$OUTDIR/torch.json" \
      --m2u-audio "$OUTDIR/m2u_audio.npy" --torch-audio "$OUTDIR/torch_audio.npy"
