#!/usr/bin/env bash
# Install m2u's build and run-time dependencies from Debian 12's packages.
# Run as root (or with sudo available). Safe to run again: apt-get skips what is there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # BLAS built with OpenMP: one thread pool with our own loops
  libdnnl-dev              # oneDNN (OpenMP build): the kernels' fp32 products (faster than OpenBLAS on our shapes)
  libcjson-dev             # config.json, tokenizer.json, safetensors headers
  libyaml-dev              # training recipes
  libopenmpi-dev openmpi-bin   # ranks for m2u-train and m2u-dataset
  libhdf5-dev hdf5-tools libzstd-dev   # shards (zstd filter 32015 is built by m2u)
  libxxhash-dev            # the shards' fast check on first read (XXH3-128 in the manifest)
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
  zlib1g-dev               # METEOR's paraphrase table (gzip)
  wordnet-base wordnet-sense-index # METEOR's synonym module: WordNet 3.0 *.exc and index.sense (/usr/share/wordnet)
  python3-pip              # fetches METEOR's paraphrase table from the pycocoevalcap wheel (below)
)

SUDO=""
need_root() { # only what needs installing asks for root
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root ($1)" >&2; exit 1; }
    SUDO=sudo
  fi
}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root "missing: ${missing[*]}"
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# METEOR's paraphrase table (m2u-eval captions' paraphrase module): not packaged by Debian.  It is
# the file meteor/data/paraphrase-en.gz of the pycocoevalcap 1.2 wheel on PyPI (the table
# pycocoevalcap's METEOR reads), fetched here at install time, never by m2u at run time.
PARA_DIR=/usr/local/share/m2u/meteor
PARA_MD5=5527855eaff959a6ef7cfb4eb028210b
if ! echo "$PARA_MD5  $PARA_DIR/paraphrase-en.gz" | md5sum -c --status 2>/dev/null; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "install-deps: fetching METEOR's paraphrase table (pycocoevalcap 1.2 wheel, 104 MB)" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" pycocoevalcap==1.2
  python3 - "$tmp"/pycocoevalcap-1.2-py3-none-any.whl "$tmp/paraphrase-en.gz" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("pycocoevalcap/meteor/data/paraphrase-en.gz") as src, \
        open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  echo "$PARA_MD5  $tmp/paraphrase-en.gz" | md5sum -c --status || {
    echo "install-deps: paraphrase-en.gz from the pycocoevalcap 1.2 wheel has an unexpected md5" >&2; exit 1; }
  need_root "installing $PARA_DIR/paraphrase-en.gz"
  $SUDO install -d "$PARA_DIR"
  $SUDO install -m 0644 "$tmp/paraphrase-en.gz" "$PARA_DIR/paraphrase-en.gz"
fi
