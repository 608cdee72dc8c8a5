#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, build with
# -Wall -Wextra -Werror, run every test; then again under AddressSanitizer +
# UndefinedBehaviorSanitizer; then check the CUDA backend was built where nvcc exists;
# then fuzz every parser for a short bounded time (tests/fuzz/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

bash launch/install-deps.sh

echo "== release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS"

echo "== AddressSanitizer + UBSan build and tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DM2U_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS"

# Where nvcc exists the release build above compiled and linked the CUDA backend
# (models/kernels/cuda, warnings as errors) into every tool, and test_kernels either compared
# it with the CPU (a GPU is visible) or said why it skipped it; make sure that happened.
if command -v nvcc >/dev/null 2>&1 && ls models/kernels/cuda/*.cu >/dev/null 2>&1; then
  echo "== CUDA backend compiled and linked"
  test -f build/libm2u_cuda.a || { echo "nvcc is here but the release build has no CUDA backend" >&2; exit 1; }
  ./build/test_kernels | grep -E '^cuda: '
fi

# Every parser's libFuzzer target for FUZZ_SECONDS (default 10 s: 16 targets, about 3
# minutes of fuzzing plus about 1 minute of clang build) after replaying the reproducers;
# any crash, leak or timeout fails CI.  Long runs: README "Fuzzing".
echo "== libFuzzer targets (${FUZZ_SECONDS:-10} s each)"
JOBS=$JOBS tests/fuzz/run.sh "${FUZZ_SECONDS:-10}"
