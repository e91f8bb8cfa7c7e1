#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted bytes with cargo fuzz (libFuzzer, nightly
# toolchain). Each target starts from seeds made by the project itself (tests/fuzz/seeds.sh) and runs for
# SECONDS (default 60) under a 1 GiB RSS limit; crashes land in tests/fuzz/artifacts/<target>/.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}; shift || true
TARGETS=${*:-idx cifar png jpeg safetensors hiding_weights metadata spec_and_budget}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
bash tests/fuzz/seeds.sh
failed=""
for t in $TARGETS; do
  mkdir -p "tests/fuzz/corpus/$t"
  # A crash ends that target's run (its input is kept under tests/fuzz/artifacts/); the others still run.
  if ! cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" "tests/fuzz/seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=1024 -malloc_limit_mb=512 -print_final_stats=1 > "tests/fuzz/$t.log" 2>&1; then
    failed="$failed $t"
  fi
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY|panicked|crash-" "tests/fuzz/$t.log" | sed "s/^/$t: /" || true
done
[ -z "$failed" ] || { echo "crashes in:$failed (inputs in tests/fuzz/artifacts/)"; exit 1; }
echo "no crash in: $TARGETS"

