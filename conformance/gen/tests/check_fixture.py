#!/usr/bin/env python3
"""check_fixture.py GEN_PY FIXTURE_DIR - runs the generator on one fixture.

A fixture is a directory with clauses/ (*.toml), optionally cases/ (*.c),
and expect.toml:

    exit = 1                       # the generator's expected exit status
    messages = ['regex', ...]      # each must match some line of its stderr

With exit = 0 the fixture is also generated into a temporary directory and
the four outputs must exist.
"""
import os
import re
import subprocess
import sys
import tempfile
import tomllib


def main():
    gen, fixture = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    with open(os.path.join(fixture, "expect.toml"), "rb") as f:
        expect = tomllib.load(f)
    cases = os.path.join(fixture, "cases")
    base = [sys.executable, gen, "--clauses", "clauses", "--cases", "cases"]
    r = subprocess.run(base + ["--check"], cwd=fixture, capture_output=True,
                       text=True)
    failures = []
    if r.returncode != expect["exit"]:
        failures.append(f"exit status {r.returncode}, expected "
                        f"{expect['exit']}")
    lines = r.stderr.splitlines()
    for pat in expect.get("messages", []):
        if not any(re.search(pat, line) for line in lines):
            failures.append(f"no stderr line matches {pat!r}")
    if expect["exit"] == 0 and r.returncode == 0:
        with tempfile.TemporaryDirectory() as out:
            g = subprocess.run(base + ["--out", out], cwd=fixture,
                               capture_output=True, text=True)
            if g.returncode != 0:
                failures.append(f"generation failed: {g.stderr}")
            for name in ("registry.c", "tests_generated.c",
                         "lh_cases_meta.h", "manifest.json"):
                if not os.path.exists(os.path.join(out, name)):
                    failures.append(f"{name} was not written")
    del cases
    if failures:
        print(f"fixture {os.path.basename(fixture)}: FAILED")
        for f in failures:
            print("  " + f)
        print("generator stderr:\n" + r.stderr)
        return 1
    print(f"fixture {os.path.basename(fixture)}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
