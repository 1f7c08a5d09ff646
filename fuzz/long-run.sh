#!/usr/bin/env bash
# The long run: every target for MINUTES (default 16) under `nice -n 19`,
# PARALLEL targets at a time (default 1), each growing its corpus in
# fuzz/corpus/TARGET from the committed seeds. Logs go to fuzz/logs/;
# the last lines of each give its executions per second and coverage.
#
#   fuzz/long-run.sh                       # 4 x 16 minutes, one at a time
#   MINUTES=20 PARALLEL=2 fuzz/long-run.sh codec_parser session
#
# A crash stops that target and leaves its input in fuzz/artifacts/TARGET/;
# replay it with `cargo fuzz run --sanitizer none TARGET FILE`.
set -euo pipefail
cd "$(dirname "$0")"

MINUTES=${MINUTES:-16}
PARALLEL=${PARALLEL:-1}
build=(--sanitizer none)
cargo fuzz build "${build[@]}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
mkdir -p logs

run_one() {
    local target=$1
    mkdir -p "corpus/$target"
    # -timeout fails an input that takes over a minute (a hang); the outer
    # timeout bounds the whole run if libFuzzer itself stops answering.
    timeout --kill-after=30 $((MINUTES * 60 + 300)) nice -n 19 \
        cargo fuzz run "${build[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time=$((MINUTES * 60)) -timeout=60 -rss_limit_mb=4096 \
        -max_len=8192 -print_final_stats=1 >"logs/$target.log" 2>&1
}

status=0
pids=()
for target in "${targets[@]}"; do
    run_one "$target" &
    pids+=("$!:$target")
    if [ ${#pids[@]} -ge "$PARALLEL" ]; then
        entry=${pids[0]}
        pids=("${pids[@]:1}")
        wait "${entry%%:*}" || { echo "long run: ${entry#*:} FAILED, see fuzz/logs/${entry#*:}.log" >&2; status=1; }
    fi
done
for entry in "${pids[@]}"; do
    wait "${entry%%:*}" || { echo "long run: ${entry#*:} FAILED, see fuzz/logs/${entry#*:}.log" >&2; status=1; }
done
for target in "${targets[@]}"; do
    echo "== $target: $(ls "corpus/$target" | wc -l) inputs in its corpus"
    grep -E '^#[0-9]+[[:space:]]+DONE|stat::(number_of_executed_units|average_exec_per_sec)' "logs/$target.log" || tail -5 "logs/$target.log"
done
exit $status
