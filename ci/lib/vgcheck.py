#!/usr/bin/env python3
"""vgcheck.py - read memcheck logs (one per process, vg.<pid>.log) and fail
on errors, definitely-lost blocks, and file descriptors left open at exit
that loopspec's own code opened.

Criterion's workers keep Criterion's own descriptors (its arena, sockets,
pipes) open at exit; those are not ours.  A descriptor counts as leaked when
the stack that opened it passes through loopspec code: a frame in a file
under reference/, conformance/ or spec/, or a function named lspec_* or lh_*.
Usage: vgcheck.py DIR [DIR ...]
"""
import pathlib
import re
import sys

OURS = re.compile(r"(\(|/)(reference|conformance|spec)/|\blspec_\w+|\blh_\w+")


def check(log: pathlib.Path) -> list[str]:
    text = log.read_text(errors="replace")
    problems = []
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    if m is None:
        # A process killed mid-run (a timed-out worker, or a child a test
        # kills with SIGKILL) writes no summary: its log ends right after
        # the preamble, or says it is terminating.
        after = text.split("Parent PID:", 1)[-1].splitlines()[1:]
        if "Process terminating" in text or not text.strip() or \
                all(not re.sub(r"^==\d+==", "", ln).strip() for ln in after):
            return problems
        return [f"{log}: no ERROR SUMMARY (valgrind died?)"]
    if int(m.group(1)) != 0:
        problems.append(f"{log}: {m.group(1)} errors")
    m = re.search(r"definitely lost: ([\d,]+) bytes", text)
    if m and m.group(1) != "0":
        problems.append(f"{log}: definitely lost {m.group(1)} bytes")
    # Each open-descriptor block runs until the next blank line.
    for block in re.split(r"\n==\d+== \n", text):
        if "Open file descriptor" in block or "Open AF_" in block:
            for part in re.split(r"(?===\d+== Open )", block):
                if part.lstrip("=0123456789 ").startswith("Open") and \
                        "inherited from parent" not in part and OURS.search(part):
                    first = part.strip().splitlines()[0]
                    problems.append(f"{log}: leaked descriptor: {first}")
    return problems


def main() -> int:
    logs = [p for d in sys.argv[1:] for p in sorted(pathlib.Path(d).glob("vg.*.log"))]
    if not logs:
        print("vgcheck: no valgrind logs found", file=sys.stderr)
        return 1
    problems = [p for log in logs for p in check(log)]
    for p in problems:
        print(p)
    print(f"vgcheck: {len(logs)} process logs, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
