#!/usr/bin/env bash
# Builds and runs the two floor programs three times each: what the kernel
# alone costs, on this machine, for one send of a line to one client and
# for one registration (see bench/README.md, "Where the budget stands").
# Needs a C compiler (cc); uses only 127.0.0.1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -pthread -o "$out/send_floor" "$here/send_floor.c"
cc -O2 -pthread -o "$out/registration_floor" "$here/registration_floor.c"
for run in 1 2 3; do
    "$out/send_floor" 199 1000
    # 9,000: both ends of every connection are in this one process, and
    # open files are often limited to 20,000.
    "$out/registration_floor" 9000 1422
done
