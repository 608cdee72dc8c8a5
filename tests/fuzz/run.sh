#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz/fuzz_*.c) into build-fuzz and run
# each for SECONDS; print executions and findings per target and a total.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]     (default: every target but the opt-in ones)
#
# Exit status: 0 when no target found anything, 1 on any crash, leak, timeout,
# out-of-memory or slow unit (the input is kept under build-fuzz/fuzz-findings/<target>/),
# 2 on a usage or build error.
#
# Before fuzzing, every committed reproducer in tests/fuzz/regressions/<target>/
# (inputs that crashed once and were fixed) is replayed; any failure counts.
# Each target keeps a growing corpus in build-fuzz/fuzz-corpus/<target> across
# runs (seeded from tests/fuzz/seeds and from the test fixtures, below), so
# repeated or long runs (hours: see NOTES / README "Fuzzing") build on each
# other.  Environment: JOBS (build parallelism, default nproc), FUZZ_NICE
# (nice level, default 10), FUZZ_ARGS (extra libFuzzer flags for every target).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
  echo "usage: tests/fuzz/run.sh SECONDS [TARGET...]" >&2
  exit 2
fi
SECONDS_EACH=$1
shift
JOBS=${JOBS:-$(nproc)}
NICE=${FUZZ_NICE:-10}
B=$ROOT/build-fuzz
FIX=$ROOT/tests/fixtures

DEFAULT_TARGETS=(safetensors safetensors_index torch torch_pickle tokenizer_bpe tokenizer_unigram unigram_charsmap
                 tokenizer_wordpiece tokenizer_bytelevel tokenize model_config peft_config train_config manifest
                 shard_schema media video records captioner http_captioner npy compare
                 meteor_wordnet meteor_paraphrase passt_schema clap)
# Only when named: byte-level mutation of HDF5 shards mostly finds libhdf5's own
# weaknesses on corrupt metadata (a 4 GiB malloc for a corrupt chunk size, leaks,
# crashes), which no m2u change can fix; m2u's defence is the manifest's hash,
# checked before a shard reaches libhdf5.  Run it to look for findings with an m2u
# frame that shard_schema (well-formed HDF5, broken schema) cannot reach.
OPT_IN_TARGETS=(shard)
ALL_TARGETS=("${DEFAULT_TARGETS[@]}" "${OPT_IN_TARGETS[@]}")
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${DEFAULT_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "run.sh: unknown target '$t' (${ALL_TARGETS[*]})" >&2; exit 2; }
done

# Per-target libFuzzer limits: the largest input (bytes) and the time one input
# may take (s).  train_config stays small: deep YAML nesting is quadratic until
# the parser caps it (issue 11), and a recipe is a small file anyway.
declare -A MAX_LEN=([safetensors]=65536 [safetensors_index]=8192 [torch]=65536 [torch_pickle]=16384
  [tokenizer_bpe]=32768 [tokenizer_unigram]=32768 [unigram_charsmap]=262144 [tokenizer_wordpiece]=32768 [tokenize]=2048 [model_config]=8192
  [peft_config]=4096 [train_config]=4096 [manifest]=8192 [shard]=65536 [shard_schema]=512 [media]=16384 [video]=16384 [records]=8192 [captioner]=4096 [http_captioner]=8192 [npy]=4096
  [compare]=16384
  [tokenizer_bytelevel]=32768
  [meteor_wordnet]=8192 [meteor_paraphrase]=8192
  [passt_schema]=96
  [clap]=8192)
declare -A TIMEOUT=([unigram_charsmap]=20 [media]=20 [video]=20 [captioner]=20 [http_captioner]=20 [shard]=20 [shard_schema]=20)
# libhdf5 has no frame pointers: the leak suppression (lsan.supp) needs the slow unwinder there
# shard_schema's inputs are short edit programs: let them reach max_len at once
declare -A FLAGS=([shard_schema]=-len_control=0 [passt_schema]=-len_control=0)
declare -A ASAN_EXTRA=([shard]=:fast_unwind_on_malloc=0)
export LSAN_OPTIONS=suppressions=$ROOT/tests/fuzz/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}

echo "== build (build-fuzz, clang, libFuzzer + ASan + UBSan)"
if [ ! -f "$B/CMakeCache.txt" ]; then
  mkdir -p "$B"
  CC=clang nice -n "$NICE" cmake -S . -B "$B" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DM2U_FUZZ=ON >"$B/configure.log" 2>&1 || { cat "$B/configure.log" >&2; exit 2; }
fi
bins=()
for t in "${TARGETS[@]}"; do bins+=(--target "fuzz_$t"); done
nice -n "$NICE" cmake --build "$B" -j "$JOBS" "${bins[@]}" >"$B/fuzz-build.log" 2>&1 ||
  { tail -40 "$B/fuzz-build.log" >&2; exit 2; }

# ---- seed corpora (regenerated each run; small, from the fixtures) ----------
S=$B/fuzz-seeds
rm -rf "$S"
mkdir -p "$S"
seed() { # seed TARGET FILE...: copy files up to the target's max_len into its seed folder
  local t=$1; shift
  mkdir -p "$S/$t"
  for f in "$@"; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le "${MAX_LEN[$t]}" ] || continue
    cp "$f" "$S/$t/$(echo "${f#$ROOT/}" | tr '/' '_')"
  done
}
for t in "${ALL_TARGETS[@]}"; do
  mkdir -p "$S/$t"
  [ -d "tests/fuzz/seeds/$t" ] && cp tests/fuzz/seeds/$t/* "$S/$t/" 2>/dev/null
done
seed safetensors $(find "$FIX" -name '*.safetensors')
seed torch $(find "$FIX" -name '*.pth' -o -name '*.bin')
# torch_pickle takes data.pkl alone (the target wraps it in a zip)
python3 - "$S/torch_pickle" $(find "$FIX" -name '*.pth' -o -name '*.bin') <<'PY' || exit 2
import sys, zipfile
for f in sys.argv[2:]:
    with zipfile.ZipFile(f) as z:
        for n in z.namelist():
            if n == "data.pkl" or n.endswith("/data.pkl"):
                open(sys.argv[1] + "/" + f.replace("/", "_") + ".pkl", "wb").write(z.read(n))
PY
seed safetensors_index "$FIX/llama/mqa_bf16_sharded/model.safetensors.index.json"
# unigram_charsmap takes the binary charsmap alone (the target base64s it into a tokenizer.json)
python3 - "$FIX/t5/tokenizer.json" "$S/unigram_charsmap/t5.charsmap" <<'PY' || exit 2
import base64, json, sys
for n in json.load(open(sys.argv[1], encoding="utf-8"))["normalizer"]["normalizers"]:
    if n["type"] == "Precompiled":
        open(sys.argv[2], "wb").write(base64.b64decode(n["precompiled_charsmap"]))
PY
seed tokenizer_bpe "$FIX/export/base/tokenizer.json" "$FIX/roberta/model/tokenizer.json"
seed tokenizer_wordpiece "$FIX/bertscore/model/tokenizer.json"
# tokenize: lines of the tokenizer test cases (one text per seed)
python3 - "$FIX" "$S/tokenize" <<'EOF' || exit 2
import json, sys, os
fix, out = sys.argv[1], sys.argv[2]
n = 0
for path in (fix + "/tokenizer/cases.jsonl", fix + "/t5/unigram_cases.jsonl"):
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % 40: continue
            t = json.loads(line).get("text")
            if isinstance(t, str) and len(t.encode()) <= 2048:
                open(os.path.join(out, "case%04d" % n), "wb").write(t.encode()); n += 1
EOF
seed model_config $(find "$FIX" -name config.json -not -path '*/reference/*') ./configs/tiny_llama.json \
  $(find "$FIX" -name preprocessor_config.json)
seed peft_config $(find "$FIX" -name adapter_config.json)
seed train_config ./configs/*.yaml $(find "$FIX" -name '*.yaml')
seed npy $(find "$FIX" -name '*.npy')
seed compare "$FIX"/compare/*.json
seed meteor_wordnet "$FIX"/eval/meteor_data/*.exc
# clap: a mode byte (0 config.json, 1 preprocessor_config.json, 2 pairs JSONL, 3 pairs TSV), then the file
python3 - "$FIX/clap" "$S/clap" <<'PY' || exit 2
import sys
fix, out = sys.argv[1], sys.argv[2]
for mode, f in ((0, "/model/config.json"), (1, "/model/preprocessor_config.json"), (2, "/pairs.jsonl")):
    open(out + "/mode%d" % mode, "wb").write(bytes([mode]) + open(fix + f, "rb").read())
open(out + "/mode3", "wb").write(b"\x03short.wav\ta caption\r\nlong.wav\tanother one\n")
PY
if [[ " ${TARGETS[*]} " == *" shard "* ]]; then
  M2U_FUZZ_MAKE_SEEDS="$S/shard" "$B/tests/fuzz/fuzz_shard" >/dev/null 2>"$B/fuzz-seeds.log" ||
    { cat "$B/fuzz-seeds.log" >&2; exit 2; }
fi
ff() { ffmpeg -nostdin -loglevel error -y "$@" </dev/null || exit 2; }
if [[ " ${TARGETS[*]} " == *" media "* ]]; then
  # tiny media files of the kinds the dataset builder meets (ffmpeg CLI: a test dependency)
  m=$S/media
  ff -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=0.05" -c:a pcm_s16le "$m/sine.wav"
  ff -f lavfi -i "sine=frequency=330:sample_rate=8000:duration=0.05" -ac 2 -c:a pcm_u8 "$m/stereo_u8.wav"
  ff -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=0.1" -c:a flac "$m/sine.flac"
  ff -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=0.2" -c:a libvorbis "$m/sine.ogg" 2>/dev/null ||
    true
  ff -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=0.2" -c:a libmp3lame -b:a 8k "$m/sine.mp3"
  ff -f lavfi -i "testsrc=size=8x8:rate=1" -frames:v 1 "$m/img.png"
  ff -f lavfi -i "testsrc=size=16x16:rate=1" -frames:v 1 -q:v 5 "$m/img.jpg"
fi
if [[ " ${TARGETS[*]} " == *" video "* ]]; then
  # tiny clips of the containers and codecs MUVideo meets, plus the sampler's special cases:
  # a rotation tag, variable frame rate, an audio track, a start time that is not 0
  v=$S/video
  src="testsrc=size=16x16:rate=5:duration=1"
  ff -f lavfi -i "$src" -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 2 "$v/h264.mp4"
  ff -f lavfi -i "$src" -c:v mpeg4 -q:v 20 "$v/mpeg4.avi"
  ff -f lavfi -i "$src" -c:v libvpx -b:v 20k "$v/vp8.webm"
  ff -f lavfi -i "$src" -c:v mjpeg -q:v 20 "$v/mjpeg.avi"
  ff -f lavfi -i "$src" "$v/anim.gif"
  ff -f lavfi -i "$src" -c:v libx264 -preset ultrafast -pix_fmt yuv420p -metadata:s:v rotate=90 "$v/rot90.mp4"
  ff -f lavfi -i "$src" -vf "setpts='PTS+gt(N,2)*0.3/TB'" -fps_mode vfr -c:v libx264 -preset ultrafast \
    -pix_fmt yuv420p "$v/vfr.mkv"
  ff -f lavfi -i "$src" -f lavfi -i "sine=sample_rate=8000:duration=1" -c:v mpeg4 -q:v 20 -c:a pcm_u8 \
    "$v/with_audio.mov"
  ff -f lavfi -i "$src" -c:v mpeg4 -q:v 20 -output_ts_offset 7 "$v/offset.ts"
fi

# ---- replay committed reproducers, then fuzz ---------------------------------
FND=$B/fuzz-findings
LOGS=$B/fuzz-logs
mkdir -p "$FND" "$LOGS"
total_execs=0
total_findings=0
printf '\n%-22s %12s %9s %9s %s\n' target executions exec/s findings note
for t in "${TARGETS[@]}"; do
  bin=$B/tests/fuzz/fuzz_$t
  corpus=$B/fuzz-corpus/$t
  mkdir -p "$corpus" "$FND/$t"
  opts=(-max_len="${MAX_LEN[$t]}" -timeout="${TIMEOUT[$t]:-10}" -rss_limit_mb=2048 -close_fd_mask=3
        -artifact_prefix="$FND/$t/" -print_final_stats=1 ${FLAGS[$t]:-})
  findings=0
  note=""
  # a small quarantine: the media target frees FFmpeg buffers fast enough that the default
  # one alone passes the 2 GiB RSS limit (live heap stays ~25 MB)
  export ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=64${ASAN_EXTRA[$t]:-}
  if [ -d "tests/fuzz/regressions/$t" ] && [ -n "$(ls -A "tests/fuzz/regressions/$t")" ]; then
    if ! nice -n "$NICE" "$bin" "${opts[@]}" -runs=1 tests/fuzz/regressions/$t/* >"$LOGS/$t.replay.log" 2>&1; then
      findings=$((findings + 1))
      note="regression replay failed ($LOGS/$t.replay.log)"
    fi
  fi
  before=$(ls "$FND/$t" | wc -l)
  # shellcheck disable=SC2086
  nice -n "$NICE" "$bin" "${opts[@]}" -max_total_time="$SECONDS_EACH" ${FUZZ_ARGS:-} "$corpus" "$S/$t" \
    >"$LOGS/$t.log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$LOGS/$t.log" | tail -1 | awk '{print $2}')
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$LOGS/$t.log" | tail -1 | awk '{print $2}')
  [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "$LOGS/$t.log" | tail -1 | tr -d '#')
  execs=${execs:-0}
  new=$(( $(ls "$FND/$t" | wc -l) - before ))
  if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
    findings=$((findings + (new > 0 ? new : 1)))
    kind=$(grep -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [a-z -]+' \
      "$LOGS/$t.log" | head -1)
    [ -z "$kind" ] && kind=$(grep -m1 -E 'runtime error|m2u fuzz:' "$LOGS/$t.log")
    # libFuzzer keeps an input slower than 10 s as slow-unit-* and goes on (exit 0): a near-hang
    [ -z "$kind" ] && ls "$FND/$t" | grep -q '^slow-unit-' && kind="slow unit (an input took over 10 s)"
    note="${note:+$note; }${kind:-exit $rc}; input in $FND/$t/, log $LOGS/$t.log"
  fi
  printf '%-22s %12s %9s %9s %s\n' "$t" "$execs" "${rate:-?}" "$findings" "$note"
  total_execs=$((total_execs + execs))
  total_findings=$((total_findings + findings))
done
printf '%-22s %12s %9s %9s\n' TOTAL "$total_execs" "" "$total_findings"
[ "$total_findings" -eq 0 ]
