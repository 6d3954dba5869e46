#!/usr/bin/env python3
"""test_results_table.py - checks results_table.py on small hand-made
reports: the cells, the rows' order, the README rewrite between the markers,
--check, and its errors.  Python 3 standard library only; exits 0 or 1.

Usage: test_results_table.py PATH/TO/results_table.py
"""
import json
import os
import subprocess
import sys
import tempfile

failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)


def clause(cid, result, counted=True, intermittent=None):
    tests = [{"name": f"s::{cid.lower()}", "result": result, "message": None,
              "expected": None if intermittent is None else
              {"line": 1, "reason": "r", "intermittent": intermittent}}]
    return {"id": cid, "area": cid.split("-")[0], "level": "MUST",
            "source": "doc", "statement": "s",
            "result": "INFO" if not counted else result,
            "observed": result, "counted": counted, "conflict": None,
            "tests": tests}


def report(path, name, clauses, expect_path=None):
    doc = {"implementation": {"name": name, "version": "1"},
           "profile": "3.11", "follow": "doc", "filter": None,
           "stopped": False,
           "expectations": None if expect_path is None else
           {"path": expect_path, "entries": 1, "unused": []},
           "clauses": clauses}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)


def run(script, *args):
    p = subprocess.run([sys.executable, script, *args], capture_output=True,
                       text=True)
    return p.returncode, p.stdout, p.stderr


def main():
    script = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        a = os.path.join(tmp, "a.json")
        b = os.path.join(tmp, "b.json")
        readme = os.path.join(tmp, "README.md")
        report(a, "impl-a", [clause("SUB-X-001", "PASS"),
                             clause("POL-X-001", "PASS"),
                             clause("POL-X-002", "UNSUPPORTED"),
                             clause("CW-X-001", "PASS", counted=False),
                             clause("CW-X-002", "UNTESTED")])
        report(b, "impl-b", [clause("POL-X-001", "XFAIL", intermittent=False),
                             clause("POL-X-002", "FAIL"),
                             clause("LOOP-X-001", "PASS", intermittent=True),
                             clause("CW-X-002", "CRASH")],
               expect_path="/x/b.toml")
        cols = ["--column", f"A={a}", "--column", f"B={b}"]

        rc, out, err = run(script, "--print", *cols)
        expect(rc == 0, f"--print: exit {rc}: {err}")
        lines = out.splitlines()
        expect(lines[:7] == [
            "| clauses | A | B |",
            "| --- | --- | --- |",
            "| POL | 1 passed, 1 unsupported | 1 xfail, 1 failed |",
            "| LOOP | none | 1 xfail |",
            "| CW | 1 untested | 1 failed |",
            "| SUB | 1 passed | none |",
            "| all | 2 passed, 1 unsupported, 1 untested | 2 xfail, 2 failed |",
        ], f"--print: unexpected table:\n{out}")
        expect("`--expect b.toml`" in out, "the expectations file is not named")

        with open(readme, "w", encoding="utf-8") as f:
            f.write("# x\n\n<!-- results:begin -->\nold\n<!-- results:end -->\n"
                    "after\n")
        rc, out, err = run(script, "--check", "--readme", readme, *cols)
        expect(rc == 1 and "differs" in out, f"--check on a stale table: {rc}")
        rc, out, err = run(script, "--readme", readme, *cols)
        expect(rc == 0, f"rewrite: exit {rc}: {err}")
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        expect(text.startswith("# x\n\n<!-- results:begin -->\n| clauses | A | B |")
               and text.endswith("<!-- results:end -->\nafter\n"),
               f"rewrite: the text around the markers changed:\n{text}")
        rc, out, err = run(script, "--check", "--readme", readme, *cols)
        expect(rc == 0, f"--check after the rewrite: exit {rc}: {out}")

        with open(readme, "w", encoding="utf-8") as f:
            f.write("# no markers\n")
        rc, out, err = run(script, "--readme", readme, *cols)
        expect(rc == 2 and "results:begin" in err, f"no markers: exit {rc}")
        rc, out, err = run(script, "--print", "--column", "A=" +
                           os.path.join(tmp, "missing.json"))
        expect(rc == 2 and "missing.json" in err, f"missing report: exit {rc}")
        rc, out, err = run(script, "--print", "--column", a)
        expect(rc == 2 and "LABEL=REPORT.json" in err, f"bad --column: {rc}")

    for what in failures:
        print("FAILED: " + what)
    if not failures:
        print("ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
