#!/usr/bin/env bash
# m2u vs the Python scorers (issue 15): VGGish FAD + PaSST KL + CLAP score on N ten-second clips.
#
# Makes N reference and N generated clips (seeded music-like audio, 16-bit WAV, mostly 48 kHz,
# every 10th at 44.1 kHz and every 10th at 32 kHz, every 3rd stereo) with captions for the
# generated ones, and random full-size checkpoints in the layouts the real ones have (cached
# under the build directory): torchvggish's VGGish (72M parameters), hear21passt's
# passt_s_swa_p16_128_ap476 (768 wide, 12 blocks, 527 classes), transformers' ClapModel at
# laion/clap-htsat-unfused's sizes (HTSAT-tiny + RoBERTa-base, a locally trained byte-level BPE).
# Then times, in this one run and with the same thread count, each scorer on both sides:
#   m2u-eval fad --embed vggish   vs  fad_pytorch 0.0.6's vggish path (fad_embed + fad_score)
#   m2u-eval kl --passt           vs  M2UGen's KL (librosa.load(sr=32000), hear21passt logits)
#   m2u-eval clap                 vs  ClapFeatureExtractor + ClapModel get_audio/text_features
# and prints wall and CPU seconds, reference / m2u ratios, and whether the two scores agree
# within the tolerances of the tests (FAD also row by row: with fewer than 13 clips the
# covariances are singular and fad_score's float32 Newton-Schulz square root is ill-conditioned,
# so the embeddings and the exact distance of each side's rows decide).  Exits 1 when they
# disagree.  The reference pipelines are those of the fixture scripts
# (tests/make_{vggish,passt,clap}_fixtures.py); see eval/bench/bench_scorers_ref.py.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/eval/bench/common.sh" # die, posint
THREADS=2
CLIPS=100
SEED=15
BUILD="$ROOT/build"
PY=${PYTHON:-python3}
DO_BUILD=1
JSON=
CLIPS_SET=0
QUICK=0

usage() {
    cat <<USAGE
usage: eval/bench/bench_scorers.sh [--threads N] [--clips N] [--json FILE] [options]

  --threads N     threads for both sides (OMP_NUM_THREADS, OpenBLAS, torch.set_num_threads;
                  default $THREADS)
  --clips N       ten-second clips per folder (default $CLIPS; the CLAP score uses the N generated ones)
  --quick         4 clips (a check that everything runs; not a measurement)
  --seed S        seed of the synthetic clips (default $SEED)
  --json FILE     where to write the results (default BUILD/bench_scorers/bench_scorers.json)
  --build DIR     CMake build directory (default \$repo/build); m2u-eval is (re)built there
                  unless --no-build; clips and checkpoints are cached under it
  --no-build      use DIR/m2u-eval as it is
  --python PY     interpreter with torch, transformers, fad_pytorch, torchvggish, hear21passt,
                  timm, librosa, soxr (the fixture scripts' pins; default python3)
USAGE
}


while (( $# )); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --no-build) DO_BUILD=0; shift; continue ;;
        --quick) QUICK=1; shift; continue ;;
        --threads|--clips|--seed|--json|--build|--python)
            (( $# >= 2 )) || die "missing value for $1"
            case $1 in
                --threads) posint "$1" "$2" 1; THREADS=$2 ;;
                --clips) posint "$1" "$2" 2; CLIPS=$2; CLIPS_SET=1 ;;
                --seed) posint "$1" "$2" 0; SEED=$2 ;;
                --json) JSON=$2 ;;
                --build) BUILD=$2 ;;
                --python) PY=$2 ;;
            esac
            shift 2 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
(( QUICK && !CLIPS_SET )) && CLIPS=4

REF_PY="$ROOT/eval/bench/bench_scorers_ref.py"
BIN="$BUILD/m2u-eval"
CKPT="$BUILD/bench_ckpt"
OUTDIR="$BUILD/bench_scorers"
DATA="$OUTDIR/clips_${CLIPS}_seed$SEED"
JSON=${JSON:-$OUTDIR/bench_scorers.json}
"$PY" -c "import torch, transformers, librosa, soxr, timm, hear21passt, fad_pytorch" 2>/dev/null ||
    die "$PY cannot import torch, transformers, librosa, soxr, timm, hear21passt and fad_pytorch (see --help)"
if (( DO_BUILD )); then
    mkdir -p "$BUILD"
    LOG="$BUILD/bench_scorers_build.log"
    { [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release; } > "$LOG" 2>&1 &&
        cmake --build "$BUILD" -j "$THREADS" --target m2u-eval >> "$LOG" 2>&1 ||
        { tail -n 30 "$LOG" >&2; die "building m2u-eval in $BUILD failed (log: $LOG)"; }
fi
[[ -x $BIN ]] || die "$BIN not found (drop --no-build, or point --build at a build directory)"
mkdir -p "$OUTDIR" "$CKPT"

# inputs, made once and cached (not timed)
if [[ ! -f $DATA/pairs.jsonl ]]; then
    rm -rf "$DATA"
    "$PY" "$REF_PY" data --out "$DATA" --clips "$CLIPS" --seed "$SEED"
fi
[[ -f $CKPT/vggish_random.pth ]] || "$PY" "$REF_PY" make-vggish "$CKPT/vggish_random.pth"
[[ -f $CKPT/passt_s_swa_p16_128_ap476_random.pt ]] || "$PY" "$REF_PY" make-passt "$CKPT/passt_s_swa_p16_128_ap476_random.pt"
[[ -f $CKPT/clap_htsat_unfused_random/preprocessor_config.json ]] || "$PY" "$REF_PY" make-clap "$CKPT/clap_htsat_unfused_random"

# One thread count for every pool: our OpenMP loops, OpenBLAS, torch's intra-op pool, MKL.
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
RUN="$OUTDIR/run"
rm -rf "$RUN"
mkdir -p "$RUN"
printf '{"clips": %d, "seed": %d, "threads": %d, "load": "%s", "machine": "%s"}\n' "$CLIPS" "$SEED" "$THREADS" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    > "$RUN/meta.json"
echo "scoring $CLIPS + $CLIPS ten-second clips with $THREADS thread(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# the reference's own output (hear21passt prints shapes, warnings) goes to RUN/ref_*.log
reference() {
    local name=$1; shift
    "$PY" "$REF_PY" "$name" "$@" --threads "$THREADS" --json "$RUN/ref_$name.json" > "$RUN/ref_$name.log" 2>&1 ||
        { tail -n 20 "$RUN/ref_$name.log" >&2; die "the $name reference failed (log: $RUN/ref_$name.log)"; }
    tail -n 1 "$RUN/ref_$name.log"
}
# each scorer: m2u, then the reference, back to back (a load change hits both alike)
echo "VGGish FAD"
"$PY" "$REF_PY" time --scorer fad --json "$RUN/m2u_fad.json" --stdout "$RUN/m2u_fad.txt" -- \
    "$BIN" fad --embed vggish --vggish "$CKPT/vggish_random.pth" --ref "$DATA/ref" --gen "$DATA/gen" \
    --dump-ref "$RUN/m2u_fad_ref.npy" --dump-gen "$RUN/m2u_fad_gen.npy"
reference fad --vggish "$CKPT/vggish_random.pth" --ref "$DATA/ref" --gen "$DATA/gen" --dump "$RUN/ref_fad"
echo "PaSST KL"
"$PY" "$REF_PY" time --scorer kl --json "$RUN/m2u_kl.json" --stdout "$RUN/m2u_kl.txt" -- \
    "$BIN" kl --passt "$CKPT/passt_s_swa_p16_128_ap476_random.pt" --ref "$DATA/ref" --gen "$DATA/gen"
reference kl --passt "$CKPT/passt_s_swa_p16_128_ap476_random.pt" --ref "$DATA/ref" --gen "$DATA/gen"
echo "CLAP score"
"$PY" "$REF_PY" time --scorer clap --json "$RUN/m2u_clap.json" --stdout "$RUN/m2u_clap.txt" -- \
    "$BIN" clap --clap "$CKPT/clap_htsat_unfused_random" --audio "$DATA/gen" --captions "$DATA/pairs.jsonl"
reference clap --clap "$CKPT/clap_htsat_unfused_random" --audio "$DATA/gen" --captions "$DATA/pairs.jsonl"

"$PY" "$REF_PY" report --dir "$RUN" --json "$JSON"
