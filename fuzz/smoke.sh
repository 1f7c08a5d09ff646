#!/usr/bin/env bash
# A short run of every fuzz target from the committed seeds: a panic, a
# hang or a build failure fails the script. CI runs it; so can anyone.
#
#   fuzz/smoke.sh              # 5 seconds per target
#   SMOKE_SECONDS=30 fuzz/smoke.sh
#
# cargo-fuzz runs on stable Rust with `--sanitizer none` (see the README's
# "Fuzzing" section); the version is pinned so a new release cannot
# change CI under us.
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH=${SMOKE_SECONDS:-5}

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

cargo fmt --check

# A debug build: it compiles in half the time of the optimized one, and a
# few seconds of fuzzing need no speed.
build=(--sanitizer none --dev)
cargo fuzz build "${build[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
for target in $(cargo fuzz list); do
    mkdir -p "$work/$target"
    echo "fuzz smoke: $target for ${SECONDS_EACH}s"
    # The outer timeout bounds a run whose libFuzzer stopped answering;
    # -timeout fails any one input that takes longer than 60 s.
    if timeout --kill-after=10 $((SECONDS_EACH + 120)) \
        cargo fuzz run "${build[@]}" "$target" "$work/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -timeout=60 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$work/$target.log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$target.log" || true
        passed=$((passed + 1))
    else
        tail -40 "$work/$target.log"
        echo "fuzz smoke: $target FAILED (its input is under fuzz/artifacts/$target/)" >&2
        failed=$((failed + 1))
    fi
done
echo "fuzz smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
