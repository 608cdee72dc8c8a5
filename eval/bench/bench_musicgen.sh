#!/usr/bin/env bash
# m2u vs PyTorch (transformers 4.46.3, CPU): MusicGen decoder LM generation throughput.
#
# Writes a random checkpoint with musicgen-<size>'s decoder shape (cached under the build
# directory), then times, in this one run and with the same thread count:
#   m2u-bench-musicgen              (C: models/nets/musicgen.c)
#   bench_musicgen_torch.py run     (MusicgenForConditionalGeneration.generate, EnCodec decode stubbed)
# Both: FRAMES frames (FRAMES + 3 decoder passes), classifier-free guidance (batch of two),
# top-k 250 sampling.  Prints frames/s, real-time factor (50 frames = 1 s of audio), CPU
# seconds and the m2u / torch speed ratios.  --torch-frames measures PyTorch on fewer frames
# (the per-frame rate is then extrapolated, and the output says so).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
THREADS=$(nproc)
SIZE=small
FRAMES=250
TORCH_FRAMES=
GUIDANCE=3
BUILD="$ROOT/build"
PY=${PYTHON:-python3}
DO_BUILD=1
CHECK=0

usage() {
    cat <<EOF2
usage: eval/bench/bench_musicgen.sh [--threads N] [--size small|medium|large] [--frames F] [options]

  --threads N        threads for both sides (default: nproc = $(nproc))
  --size S           decoder shape of musicgen-S (default $SIZE)
  --frames F         frames to generate, 50 per second of audio (default $FRAMES = 5 s)
  --torch-frames F   frames for the PyTorch side (default: --frames); fewer keeps the run short,
                     the rate is then per frame of that shorter run (labelled in the output)
  --guidance G       classifier-free guidance scale (default $GUIDANCE)
  --build DIR        CMake build directory (default \$repo/build); the bench is (re)built there
  --no-build         use DIR/m2u-bench-musicgen as it is
  --wait-policy P    set OMP_WAIT_POLICY=P (active|passive) for both sides; default: unset.
                     On an oversubscribed machine the default spinning of idle OpenMP
                     threads at barriers dominates both sides; passive is then the fair choice.
  --check            first compare m2u's logits of three CFG passes with transformers' at this
                     size (max relative error, same argmax); the timing runs only if it passes
  --python PY        interpreter with torch 2.5.1, transformers 4.46.3, safetensors
EOF2
}

die() { echo "bench_musicgen.sh: $*" >&2; exit 2; }
posint() { [[ $2 =~ ^[0-9]+$ ]] && (( $2 >= 1 )) || die "$1 expects a positive integer, got '$2'"; }

while (( $# )); do
    case $1 in
        --threads) posint "$1" "${2-}"; THREADS=$2; shift 2 ;;
        --size) [[ ${2-} =~ ^(small|medium|large)$ ]] || die "--size: small, medium or large"; SIZE=$2; shift 2 ;;
        --frames) posint "$1" "${2-}"; FRAMES=$2; shift 2 ;;
        --torch-frames) posint "$1" "${2-}"; TORCH_FRAMES=$2; shift 2 ;;
        --guidance) GUIDANCE=${2-}; shift 2 ;;
        --build) BUILD=${2-}; shift 2 ;;
        --no-build) DO_BUILD=0; shift ;;
        --check) CHECK=1; shift ;;
        --python) PY=${2-}; shift 2 ;;
        --wait-policy) [[ ${2-} =~ ^(active|passive)$ ]] || die "--wait-policy: active or passive"; export OMP_WAIT_POLICY=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
TORCH_FRAMES=${TORCH_FRAMES:-$FRAMES}

if (( DO_BUILD )); then
    [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j "$THREADS" --target m2u-bench-musicgen >/dev/null
fi
BIN=$BUILD/m2u-bench-musicgen
[[ -x $BIN ]] || die "$BIN not found (build it or drop --no-build)"

CKPT=$BUILD/bench/musicgen-$SIZE
if [[ ! -f $CKPT/model.safetensors ]]; then
    echo "writing a random musicgen-$SIZE decoder checkpoint to $CKPT ..." >&2
    "$PY" "$ROOT/eval/bench/bench_musicgen_torch.py" make "$CKPT" --size "$SIZE"
fi

if (( CHECK )); then
    "$PY" "$ROOT/eval/bench/bench_musicgen_torch.py" check "$CKPT" "$CKPT/check_enc.f32" "$CKPT/check_ref.npy"
    OMP_NUM_THREADS=$THREADS "$BIN" "$CKPT" --logits "$CKPT/check_enc.f32" "$CKPT/check_m2u.f32"
    "$PY" "$ROOT/eval/bench/bench_musicgen_torch.py" compare "$CKPT/check_ref.npy" "$CKPT/check_m2u.f32" \
        || die "m2u's logits differ from transformers' (see above)"
fi

echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "musicgen-$SIZE decoder, guidance $GUIDANCE, top-k 250 sampling, $THREADS thread(s), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}"
M2U=$(OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$BIN" "$CKPT" "$FRAMES" "$GUIDANCE")
echo "$M2U"
TORCH=$(OMP_NUM_THREADS=$THREADS "$PY" "$ROOT/eval/bench/bench_musicgen_torch.py" run "$CKPT" --frames "$TORCH_FRAMES" \
        --threads "$THREADS" --guidance "$GUIDANCE")
echo "$TORCH"
"$PY" - "$M2U" "$TORCH" <<'EOF2'
import json, sys
m, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
# per decoder pass, so runs of different lengths compare (attention grows with position, so a
# shorter torch run slightly favours torch)
mp, tp = m["seconds"] / m["passes"], t["seconds"] / t["passes"]
mc, tc = m["cpu_seconds"] / m["passes"], t["cpu_seconds"] / t["passes"]
note = "" if m["frames"] == t["frames"] else f" (torch measured on {t['frames']} frames, rates per pass extrapolated)"
print(f"m2u:   {m['frames_per_s']:.2f} frames/s, real-time factor {m['rtf']:.2f}, {1000*mp:.1f} ms/pass wall, {1000*mc:.1f} ms/pass CPU")
print(f"torch: {t['frames_per_s']:.2f} frames/s, real-time factor {t['rtf']:.2f}, {1000*tp:.1f} ms/pass wall, {1000*tc:.1f} ms/pass CPU{note}")
print(f"speed-up m2u / torch: {tp/mp:.2f}x wall, {tc/mc:.2f}x CPU time")
EOF2
