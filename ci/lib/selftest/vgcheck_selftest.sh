#!/usr/bin/env bash
# vgcheck_selftest.sh - proves ci/lib/vgcheck.py fails on what ci/valgrind
# must catch (an error, a definitely-lost block, a descriptor leaked by
# loopspec's code, a DRD data race) and passes a clean run and a process
# killed by SIGKILL (no summary).  Usage: vgcheck_selftest.sh CC DIR
set -euo pipefail
cc=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work/clean" "$work/leaky" "$work/race" "$work/killed"
"$cc" -g -O0 -pthread "$here/leaky.c" -o "$work/leaky.bin"
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
# A DRD race fails.
valgrind --tool=drd --log-file="$work/race/vg.%p.log" "$work/leaky.bin" race || true
if out=$(python3 "$here/../vgcheck.py" "$work/race"); then
  echo "vgcheck passed a DRD race:"; echo "$out"; exit 1
fi
grep -q "errors" <<<"$out" || { echo "vgcheck missed the race"; echo "$out"; exit 1; }
# A process killed with SIGKILL leaves its preamble only: not a problem.
"${vg[@]}" --log-file="$work/killed/vg.%p.log" "$work/leaky.bin" hang &
vgpid=$!
for _ in $(seq 100); do
  grep -q "Parent PID" "$work"/killed/vg.*.log 2>/dev/null && break
  sleep 0.1
done
sleep 0.5
kill -KILL "$vgpid"; wait "$vgpid" || true
python3 "$here/../vgcheck.py" "$work/killed"
# A log cut short after an error report (valgrind itself died) fails.
mkdir -p "$work/cut"
sed '/ERROR SUMMARY/,$d' "$(ls "$work"/leaky/vg.*.log | head -1)" >"$work/cut/vg.1.log"
if out=$(python3 "$here/../vgcheck.py" "$work/cut"); then
  echo "vgcheck passed a log cut short after errors:"; echo "$out"; exit 1
fi
echo "vgcheck self-test: ok"
