#!/usr/bin/env bash
# m2u dataset pipeline vs the ffmpeg CLI and h5py, on the same files in the same run.
#
# Media: --input DIR takes the audio files in DIR (sorted, the first --files N);
# without it, the first N MIDI files of OpenMSX (Debian's openttd-openmsx, GPL-2.0)
# are rendered with the fluidsynth CLI (FluidR3_GM, 44.1 kHz stereo), cut to
# --seconds S and encoded with the ffmpeg CLI, in turn FLAC, Ogg Vorbis (q5) and
# MP3 (192k); they are cached under BUILD/bench_dataset/media.
#
# Then m2u-bench-dataset (eval/bench/bench_dataset.c) measures, in one process:
#   decode   m2u_audio_decode to 24 kHz mono vs `ffmpeg -i X -f null -` and
#            `ffmpeg -i X -ac 1 -ar 24000 -f f32le -` (and the soxr resampler),
#            file by file, audio-seconds per CPU-second;
#   survey   analysis (m2u_analyze per 10 s clip), fingerprint, built-in features;
#   build    `m2u-dataset build` (one process) with --recipes mucaps, then all;
#   read     every sample of the last build with the C reader and with h5py
#            (eval/bench/bench_shard_h5py.py), per sample and per batch of
#            --read-batch consecutive samples, samples/s and MB/s.
# It prints a table and writes every number to a JSON file.  Nothing is asserted
# on time; the load average is printed with the numbers.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/eval/bench/common.sh" # die, posint
BUILD="$ROOT/build"
INPUT=""
FILES=8
SECONDS_PER_FILE=60
JSON=""
REPS=1
READ_REPS=5
READ_BATCH=16
RECIPES=mucaps,all
LICENCE=""
PY=/usr/bin/python3
SOUNDFONT=/usr/share/sounds/sf2/FluidR3_GM.sf2
MIDI_DIR=/usr/share/games/openttd/baseset/openmsx
DO_BUILD=1
KEEP=0

usage() {
    cat <<EOF
usage: eval/bench/bench_dataset.sh [--build DIR] [--input DIR] [--files N] [--json PATH] [options]

  --build DIR      CMake build directory (default \$repo/build); m2u-bench-dataset,
                   m2u-dataset and the h5zstd plugin are (re)built there unless --no-build
  --no-build       use the binaries in DIR as they are
  --input DIR      audio files to use (flac, ogg, oga, opus, mp3, wav, m4a, aac; sorted);
                   default: render OpenMSX MIDI files (see --seconds)
  --files N        use the first N files (default $FILES; 0 = all)
  --seconds S      length of each rendered excerpt (default $SECONDS_PER_FILE; 0 = whole
                   piece); ignored with --input
  --reps R         decode + survey passes (default $REPS)
  --read-reps R    alternated C / h5py reading passes, best kept (default $READ_REPS)
  --read-batch B   consecutive samples per batched read, C and h5py (default $READ_BATCH)
  --recipes LIST   comma list of builds to time; each item is a --recipes value of
                   m2u-dataset or 'all' (default $RECIPES; 'none': no build, no reading)
  --licence L      licence given to the build (default GPL-2.0-only for OpenMSX,
                   'unspecified' with --input)
  --python PY      interpreter with h5py (default $PY; 'none' skips h5py)
  --json PATH      result file (default BUILD/bench_dataset.json)
  --keep           keep the built datasets (BUILD/bench_dataset/work.*)

example:
  eval/bench/bench_dataset.sh --files 8 --json build/bench_dataset.json
  eval/bench/bench_dataset.sh --input ~/music --files 20 --recipes mucaps --licence CC-BY-4.0
EOF
}


while (( $# )); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --no-build) DO_BUILD=0; shift; continue ;;
        --keep) KEEP=1; shift; continue ;;
        --build|--input|--files|--seconds|--reps|--read-reps|--read-batch|--recipes|--licence|--python|--json)
            (( $# >= 2 )) || die "missing value for $1"
            case $1 in
                --build) BUILD=$2 ;;
                --input) INPUT=$2 ;;
                --files) posint "$1" "$2" 0; FILES=$2 ;;
                --seconds) posint "$1" "$2" 0; SECONDS_PER_FILE=$2 ;;
                --reps) posint "$1" "$2" 1; REPS=$2 ;;
                --read-reps) posint "$1" "$2" 1; READ_REPS=$2 ;;
                --read-batch) posint "$1" "$2" 1; READ_BATCH=$2 ;;
                --recipes) RECIPES=$2 ;;
                --licence) LICENCE=$2 ;;
                --python) PY=$2 ;;
                --json) JSON=$2 ;;
            esac
            shift 2 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

command -v ffmpeg >/dev/null || die "the ffmpeg CLI is needed (apt-get install ffmpeg)"
BUILD=$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)
OUTDIR="$BUILD/bench_dataset"
JSON=${JSON:-$BUILD/bench_dataset.json}
mkdir -p "$OUTDIR" "$(dirname "$JSON")"

if (( DO_BUILD )); then
    LOG="$OUTDIR/build.log"
    { [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release; } > "$LOG" 2>&1 &&
        cmake --build "$BUILD" -j "$(nproc)" --target m2u-bench-dataset m2u-dataset h5zstd >> "$LOG" 2>&1 ||
        { tail -n 30 "$LOG" >&2; die "building in $BUILD failed (log: $LOG)"; }
fi
BIN="$BUILD/m2u-bench-dataset"
[[ -x $BIN ]] || die "$BIN not found (drop --no-build, or point --build at a build directory)"

# ---- the media ----------------------------------------------------------------------
MEDIA=()
if [[ -n $INPUT ]]; then
    [[ -d $INPUT ]] || die "--input $INPUT is not a folder"
    LICENCE=${LICENCE:-unspecified}
    while IFS= read -r -d '' f; do MEDIA+=("$f"); done < <(
        find "$INPUT" -maxdepth 1 -type f \( -iname '*.flac' -o -iname '*.ogg' -o -iname '*.oga' -o -iname '*.opus' \
             -o -iname '*.mp3' -o -iname '*.wav' -o -iname '*.m4a' -o -iname '*.aac' \) -print0 | sort -z)
    (( ${#MEDIA[@]} )) || die "no audio files in $INPUT"
    (( FILES == 0 || FILES >= ${#MEDIA[@]} )) || MEDIA=("${MEDIA[@]:0:FILES}")
else
    LICENCE=${LICENCE:-GPL-2.0-only}
    command -v fluidsynth >/dev/null ||
        die "rendering MIDI needs the fluidsynth CLI (apt-get install fluidsynth), or pass --input DIR"
    [[ -f $SOUNDFONT ]] || die "$SOUNDFONT missing (apt-get install fluid-soundfont-gm)"
    MIDIS=()
    while IFS= read -r -d '' f; do MIDIS+=("$f"); done < <(find "$MIDI_DIR" -maxdepth 1 -name '*.mid' -print0 | sort -z)
    (( ${#MIDIS[@]} )) || die "no MIDI files in $MIDI_DIR (apt-get install openttd-openmsx), or pass --input DIR"
    (( FILES == 0 || FILES >= ${#MIDIS[@]} )) || MIDIS=("${MIDIS[@]:0:FILES}")
    CACHE="$OUTDIR/media"
    mkdir -p "$CACHE"
    EXTS=(flac ogg mp3)
    CUT=()
    (( SECONDS_PER_FILE > 0 )) && CUT=(-t "$SECONDS_PER_FILE")
    tag=$([[ $SECONDS_PER_FILE -gt 0 ]] && echo "${SECONDS_PER_FILE}s" || echo full)
    k=0
    for m in "${MIDIS[@]}"; do
        ext=${EXTS[k % 3]}
        out="$CACHE/$(basename "${m%.mid}").$tag.$ext"
        if [[ ! -s $out ]]; then
            echo "bench_dataset.sh: rendering $(basename "$m") -> $(basename "$out")" >&2
            wav="$CACHE/.render.$$.wav"
            case $ext in
                flac) CODEC=(-c:a flac) ;;
                ogg) CODEC=(-c:a libvorbis -q:a 5) ;;
                mp3) CODEC=(-c:a libmp3lame -b:a 192k) ;;
            esac
            fluidsynth -ni -q -F "$wav" -r 44100 -g 0.5 "$SOUNDFONT" "$m" > "$CACHE/render.log" 2>&1 ||
                { tail -n 5 "$CACHE/render.log" >&2; die "fluidsynth failed on $m"; }
            ffmpeg -nostdin -hide_banner -v error -y -i "$wav" "${CUT[@]}" "${CODEC[@]}" "$out.tmp.$ext" &&
                mv "$out.tmp.$ext" "$out" || die "ffmpeg could not encode $out"
            rm -f "$wav"
        fi
        MEDIA+=("$out")
        k=$((k + 1))
    done
fi

# ---- run ------------------------------------------------------------------------------
WORK=$(mktemp -d "$OUTDIR/work.XXXXXX")
(( KEEP )) || trap 'rm -rf "$WORK"' EXIT
ARGS=(--json "$JSON" --reps "$REPS" --read-reps "$READ_REPS" --read-batch "$READ_BATCH" --licence "$LICENCE" --work "$WORK")
if [[ $RECIPES != none ]]; then
    [[ -x $BUILD/m2u-dataset ]] || die "$BUILD/m2u-dataset not found"
    ARGS+=(--dataset "$BUILD/m2u-dataset")
    IFS=, read -r -a RLIST <<< "$RECIPES"
    for r in "${RLIST[@]}"; do ARGS+=(--recipes "$r"); done
else
    ARGS+=(--recipes none)
fi
if [[ $PY != none ]] && "$PY" -c "import h5py, numpy" 2>/dev/null; then
    [[ -f $BUILD/hdf5-plugins/libh5zstd.so ]] ||
        echo "bench_dataset.sh: warning: no $BUILD/hdf5-plugins/libh5zstd.so; h5py will not read zstd" >&2
    ARGS+=(--python "$PY" --h5py-script "$ROOT/eval/bench/bench_shard_h5py.py" --plugin-dir "$BUILD/hdf5-plugins")
else
    [[ $PY == none ]] ||
        echo "bench_dataset.sh: $PY cannot import h5py (apt-get install python3-h5py); the h5py row is skipped" >&2
    ARGS+=(--python none)
fi
echo "bench_dataset.sh: ${#MEDIA[@]} files; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$BIN" "${ARGS[@]}" "${MEDIA[@]}"
(( KEEP )) && echo "datasets kept in $WORK"
exit 0
