#!/usr/bin/env bash
# The main job on the embedded default, as a new user runs it:
#   1. install dependencies and build m2u;
#   2. make a small random LLaMA (GQA, vocab 32000) with the LLaMA-family tokenizer;
#   3. build the embedded dataset with `m2u-dataset build` on 2 MPI ranks: the OpenMSX
#      music (31 MIDI pieces, GPL-2.0, from Debian's openttd-openmsx package, rendered
#      with the FluidR3 General MIDI soundfont) plus images and videos this script makes
#      with FFmpeg's test sources (CC0) -> MUCaps, MusicQA, MUEdit (verified edits),
#      MUImage and MUVideo samples with built-in features in HDF5 shards, and its card;
#   4. train the small stage 1 -> 2 -> 3 recipes under mpirun -np 2, each stage
#      continuing from the previous one's trainables;
#   5. evaluate: stage 1's captions and stage 3's answers on the test split (caption
#      metrics, attribute agreement, an HTML report with the training curves);
#   6. export stage 3 as a PEFT adapter and as an M2UGen checkpoint.pth;
#   7. make music: a small random MusicGen (`m2u-generate init`, conditioning width = the
#      stage 3 projector's out_dim), then stage 3 answers a MUImage prompt about one of the
#      demo's pictures and its [AUD] states -> projector -> MusicGen -> EnCodec -> WAV;
#   8. print a summary.
# The shards hold the built-in features (no encoder checkpoint is downloaded); with
# MERT / ViT / ViViT / T5 checkpoints, pass --mert/--vit/--vivit/--t5 to m2u-dataset build.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
OUT=build/demo

bash launch/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS" --target m2u-llm m2u-dataset m2u-train m2u-eval m2u-export m2u-generate h5zstd
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

echo "== 1. a random 4-layer LLaMA (GQA 4/2 heads, vocab 32000)"
build/m2u-llm init --config configs/tiny_llama.json --tokenizer tests/fixtures/tokenizer/tokenizer.json \
  --out "$OUT/base" --seed 1 --std 0.05 --embed-std 0.1
echo "tokens of 'A calm piano melody':"
build/m2u-llm tokenize --model "$OUT/base" "A calm piano melody"

echo "== 2. the embedded dataset"
# images and videos for MUImage / MUVideo, made here (CC0): warm, cold, dark, bright,
# busy and calm pictures, moving and still videos, one with its own soundtrack.  The
# random sources are seeded, so every run makes the same files and the same dataset.
MEDIA="$OUT/media"
if [ ! -f "$MEDIA/.complete-v2" ]; then
  # new media: a dataset built from other files cannot be resumed, so it goes too
  rm -rf "$MEDIA" "$OUT/dataset" && mkdir -p "$MEDIA"
  ff() { ffmpeg -v error -y "$@"; }
  ff -f lavfi -i "gradients=s=320x240:c0=0xff5a00:c1=0xffd040:nb_colors=2:seed=3" -frames:v 1 "$MEDIA/sunset.png"
  ff -f lavfi -i "color=c=0x1c3a78:s=320x240,noise=alls=12:allf=t" -frames:v 1 "$MEDIA/deep_blue.png"
  ff -f lavfi -i "color=c=0x0c0c14:s=320x240,noise=alls=25:allf=t" -frames:v 1 "$MEDIA/night.png"
  ff -f lavfi -i "gradients=s=320x240:c0=0x90ff50:c1=0xfff060:nb_colors=2:seed=7" -frames:v 1 "$MEDIA/meadow.png"
  ff -f lavfi -i "mandelbrot=s=320x240" -frames:v 1 "$MEDIA/fractal.png"
  ff -f lavfi -i "smptebars=s=320x240" -frames:v 1 "$MEDIA/bars.png"
  ff -f lavfi -i "cellauto=s=320x240:rule=110:seed=1" -frames:v 1 "$MEDIA/automaton.png"
  ff -f lavfi -i "life=s=320x240:mold=10:seed=1:life_color=#ff8000:death_color=#002040" -frames:v 30 -update 1 "$MEDIA/colony.png"
  ff -f lavfi -i "testsrc2=s=320x240:r=15:d=8" -f lavfi -i "sine=frequency=392:beep_factor=4:duration=8" \
     -shortest -pix_fmt yuv420p "$MEDIA/testcard_beeps.mp4"
  ff -f lavfi -i "mandelbrot=s=320x240:r=15" -t 6 -pix_fmt yuv420p "$MEDIA/zoom.mp4"
  ff -f lavfi -i "life=s=320x240:r=15:mold=10:seed=2" -t 6 -pix_fmt yuv420p "$MEDIA/life.mp4"
  ff -f lavfi -i "gradients=s=320x240:r=15:speed=0.02:c0=0x203080:c1=0x602040:nb_colors=2:seed=5" -t 6 -pix_fmt yuv420p \
     "$MEDIA/drift.mp4"
  touch "$MEDIA/.complete-v2"
fi
# the build resumes: run it again and finished work is kept
bash launch/mpirun.sh --tool m2u-dataset 2 build --input data/demo/openmsx.jsonl --input "$MEDIA" \
  --licence CC0-1.0 --attribution "made by launch/demo.sh with FFmpeg's lavfi test sources" \
  --max-clips 2 --valid 0.15 --test 0.1 --out "$OUT/dataset"
echo
sed -n '1,20p' "$OUT/dataset/README.md"
echo "(the whole card: $OUT/dataset/README.md; skipped and dropped items: $OUT/dataset/errors.jsonl)"
HDF5_PLUGIN_PATH=build/hdf5-plugins h5dump -H "$OUT/dataset/shard-r000-00000.h5" | grep -c DATASET | \
  xargs echo "datasets in shard-r000-00000.h5 (read by h5dump through the zstd plugin):"

echo "== 3. stages 1 -> 2 -> 3 on 2 MPI ranks"
# the recipes as written (they point at build/demo/base and build/demo/dataset)
COMMON=(run.threads=1 eval.max_new_tokens=24)
rm -rf "$OUT/runs"
for s in 1 2 3; do
  bash launch/mpirun.sh 2 "configs/tiny_stage$s.yaml" "${COMMON[@]}" 2>&1 | tee "$OUT/stage$s.log"
done

echo "== 4. evaluation on the test split"
rm -rf "$OUT/eval" "$OUT/export"
build/m2u-eval run --run "$OUT/runs/tiny_stage1" --split test --kinds mucaps --out "$OUT/eval/stage1"
build/m2u-eval run --run "$OUT/runs/tiny_stage3" --split test --kinds musicqa,muedit --out "$OUT/eval/stage3"

echo "== 5. export"
build/m2u-export peft --base "$OUT/base" --run "$OUT/runs/tiny_stage3" --out "$OUT/export/peft" 2>&1 | tail -2
build/m2u-export m2ugen --base "$OUT/base" --run "$OUT/runs/tiny_stage3" --out "$OUT/export/m2ugen" 2>&1 | tail -2

echo "== 6. music from stage 3 (random tiny MusicGen: the sound is noise-like; README "Making music" for real weights)"
# the conditioning width must be the projector's out_dim (configs/tiny_stage3.yaml: 768)
rm -rf "$OUT/musicgen-tiny" "$OUT/music"
mkdir -p "$OUT/music"
build/m2u-generate init --out "$OUT/musicgen-tiny" --text-hidden 768 --seed 1
# An edit request with a music input (MUEdit, the recipe stage 3 saw most often with an
# [AUD] answer): the 4-layer model answers it with the [AUD] block.  Asked to compose for a
# picture ("Compose music that fits this image." with sunset.png) it answers in words only,
# and m2u-generate then writes no WAV; both are printed here.
build/m2u-generate --run "$OUT/runs/tiny_stage3" --musicgen "$OUT/musicgen-tiny" \
  --prompt "Compose music that fits this image." --image "$MEDIA/sunset.png" \
  --seconds 4 --seed 1 --out "$OUT/music/sunset.wav" || true
if build/m2u-generate --run "$OUT/runs/tiny_stage3" --musicgen "$OUT/musicgen-tiny" \
     --prompt "Make this music quieter by about 9 dB." --music "$MEDIA/testcard_beeps.mp4" \
     --seconds 4 --seed 1 --out "$OUT/music/quieter.wav"; then
  MUSIC="$OUT/music/quieter.wav (settings, answer and hashes: quieter.wav.json)"
else
  MUSIC="none (stage 3's answer had no [AUD] block or generation failed: see above)"
fi

echo
echo "== summary"
for s in 1 2 3; do
  grep -h "done:" "$OUT/stage$s.log" | sed "s/^m2u-train: /stage $s: /"
done
echo "dataset:              $OUT/dataset (card: README.md)"
echo "metrics (JSON lines): $OUT/runs/tiny_stage{1,2,3}/metrics.jsonl"
echo "checkpoints:          $OUT/runs/tiny_stage{1,2,3}/checkpoints/"
echo "reports:              $OUT/eval/stage{1,3}/report.html (and report.md, report.json)"
echo "exports:              $OUT/export/peft (PEFT adapter), $OUT/export/m2ugen (checkpoint.pth)"
echo "music:                $MUSIC"
