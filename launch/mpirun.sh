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
TOOL=m2u-train
if [ "${1:-}" = "--tool" ]; then TOOL=$2; shift 2; fi
[ $# -ge 2 ] || { sed -n '2,14p' "$0"; exit 2; }
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
