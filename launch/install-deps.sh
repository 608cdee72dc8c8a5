#!/usr/bin/env bash
# Install m2u's build and run-time dependencies from Debian 12's packages.
# Run as root (or with sudo available). Safe to run again: apt-get skips what is there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # BLAS built with OpenMP: one thread pool with our own loops
  libcjson-dev             # config.json, tokenizer.json, safetensors headers
  libyaml-dev              # training recipes
  libopenmpi-dev openmpi-bin   # ranks for m2u-train and m2u-dataset
  libhdf5-dev hdf5-tools libzstd-dev   # shards (zstd filter 32015 is built by m2u)
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev libswscale-dev   # media decoding
  ffmpeg                   # tests make media files with it (never used by m2u itself)
  libaubio-dev libebur128-dev   # music analysis: tempo, onsets; loudness (EBU R 128)
  libfluidsynth-dev        # render MIDI sources (and instrument-change edits)
  librubberband-dev        # time-stretch / pitch-shift edits with known parameters
  libchromaprint-dev       # near-duplicate audio fingerprints
  libsoxr-dev              # librosa's default resampler (soxr_hq) for the PaSST KL / CLAP loaders
  openttd-openmsx          # the embedded default corpus: OpenMSX MIDI music (GPL-2.0)
  fluidsynth fluid-soundfont-gm # tests and the build render MIDI with a General MIDI soundfont
  libcurl4-openssl-dev     # OpenAI-compatible captioner endpoint (llama.cpp server, vLLM)
  python3-h5py python3-numpy      # tests read shards the way users do
  chromium                 # test_eval_report renders the HTML report headless and checks the screenshot
  clang libclang-rt-14-dev # tests/fuzz: libFuzzer + sanitizers; Debian 12 ships clang's fuzzer runtime separately
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
