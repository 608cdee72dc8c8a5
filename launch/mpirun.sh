#!/usr/bin/env bash
# Run m2u-train (or another m2u tool) on N ranks of this machine with sensible
# binding and threads.
#
#   launch/mpirun.sh N CONFIG.yaml [key=value ...] [--resume]
#   launch/mpirun.sh --tool m2u-dataset N build --input ... --out DIR
#
# - Each rank gets cores/N OpenMP threads (OMP_NUM_THREADS), bound to its own
#   cores (--map-by slot:PE=T --bind-to core), so ranks never share a core and
#   OpenBLAS (the OpenMP build) uses the same threads.
# - Running as root (containers, CI) needs Open MPI's explicit permission; it is
#   given here only when you are root.
# - Set M2U_BIN to use an installed binary instead of build/<tool>.
set -euo pipefail

usage() {
  cat <<'EOF_USAGE'
usage: launch/mpirun.sh N CONFIG.yaml [key=value ...] [--resume | --resume-auto]
       launch/mpirun.sh --tool TOOL N [TOOL's arguments ...]

Run m2u-train (or another m2u tool, --tool) as N MPI ranks on this machine: each
rank gets cores/N OpenMP threads bound to its own cores, so ranks never share a
core; with more ranks than cores the OS schedules them (--oversubscribe).
M2U_BIN=/path/to/tool uses that binary instead of build/TOOL.

examples:
  launch/mpirun.sh 4 configs/stage2.yaml
  launch/mpirun.sh 2 configs/tiny_stage1.yaml run.out_dir=runs/s1 --resume
  launch/mpirun.sh --tool m2u-dataset 4 build --input data/music --out data/ds
EOF_USAGE
}

# a mistake on the command line: what was wrong, then the usage, status 2
die_usage() { echo "launch/mpirun.sh: $1" >&2; echo >&2; usage >&2; exit 2; }

TOOL=m2u-train
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --tool)
    [ $# -ge 2 ] || die_usage "--tool needs a tool name (m2u-train, m2u-dataset, ...)"
    TOOL=$2; shift 2 ;;
esac
[ $# -ge 1 ] || die_usage "no rank count N given"
case "$1" in
  ''|*[!0-9]*) die_usage "N must be a positive number of ranks, got '$1'" ;;
esac
[ "$((10#$1))" -ge 1 ] || die_usage "N must be a positive number of ranks, got '$1'"
[ $# -ge 2 ] || die_usage "no arguments for $TOOL after N (for m2u-train: CONFIG.yaml)"
N=$1; shift
CORES=$(nproc)
T=$(( CORES / N )); [ "$T" -ge 1 ] || T=1
BIN=${M2U_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/$TOOL}
ROOT_OK=()
if [ "$(id -u)" -eq 0 ]; then ROOT_OK=(--allow-run-as-root); fi
MAP=(--map-by "slot:PE=$T" --bind-to core)
# more ranks than cores (a laptop test): no binding, let the OS schedule
if [ $(( N * T )) -gt "$CORES" ]; then MAP=(--oversubscribe --bind-to none); fi
exec mpirun "${ROOT_OK[@]}" -np "$N" "${MAP[@]}" -x OMP_NUM_THREADS="$T" -x OMP_PROC_BIND=close \
  "$BIN" "$@"
