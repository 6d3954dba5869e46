#!/usr/bin/env bash
# vgcheck_selftest.sh - proves ci/lib/vgcheck.py fails on what ci/valgrind
# must catch (an error, a definitely-lost block, a descriptor leaked by
# loopspec's code) and passes a clean run.  Usage: vgcheck_selftest.sh CC DIR
set -euo pipefail
cc=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work/clean" "$work/leaky"
"$cc" -g -O0 "$here/leaky.c" -o "$work/leaky.bin"
vg=(valgrind --track-fds=yes --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=definite)
"${vg[@]}" --log-file="$work/clean/vg.%p.log" "$work/leaky.bin"
"${vg[@]}" --log-file="$work/leaky/vg.%p.log" "$work/leaky.bin" leak || true
python3 "$here/../vgcheck.py" "$work/clean"
if out=$(python3 "$here/../vgcheck.py" "$work/leaky"); then
  echo "vgcheck passed a leaky run:"; echo "$out"; exit 1
fi
for want in "errors" "definitely lost" "leaked descriptor"; do
  grep -q "$want" <<<"$out" || { echo "vgcheck missed: $want"; echo "$out"; exit 1; }
done
echo "vgcheck self-test: ok"
