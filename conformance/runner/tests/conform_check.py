#!/usr/bin/env python3
"""conform_check.py - runs loopspec-conform once and checks what it did.

Usage: conform_check.py [checks] -- COMMAND [ARG]...

Checks (all optional):
  --exit N[,M]         the exit status is one of these
  --one-line-error     stdout is empty and stderr is exactly one line
  --stderr-match RE    stderr matches RE (re.search)
  --stdout-match RE    stdout matches RE (re.search, multi-line; repeatable)
  --closing-line       the last line of stdout is the closing line and its
                       counts agree with the JSON report if there is one
  --list               every stdout line is "ID LEVEL SOURCE STATEMENT"
  --json PATH          PATH holds a JSON report with every field in place,
                       valid against conformance/schema/report.schema.json
  --junit PATH         PATH holds the run's JUnit XML report, which agrees
                       with the JSON report (needs --json; report_check.py)
  --tap PATH           PATH holds the run's TAP report, which agrees with
                       the JSON report (needs --json; report_check.py)
  --results R[,R...]   every test in the JSON report has one of these results
  --result TEST=R      that test (suite::name) has result R (repeatable)
  --stopped            the JSON report says the run was stopped
  --expectations N     the JSON report read an expectations file of N entries,
                       and every test it lists carries its entry
  --timeout S          fail if the command runs longer (default 600)
  --suite-bug TEST     TEST (suite::name) FAILs because of a known bug of the
                       suite itself, not of the implementation: it must be
                       FAIL (once fixed, it no longer is, and this check tells
                       to drop the option), and it is the only kind of
                       failure allowed; exit status 1 is then expected
                       (repeatable; needs --json)
  --skip-if-stdout RE  when stdout matches RE (re.search, multi-line), print
                       why and exit 77 (ctest's SKIP_RETURN_CODE) instead of
                       checking anything: the thing to test is not there

Prints what it checked and exits 0, or prints each failed check and exits 1
(or 77, see --skip-if-stdout).
Python 3 standard library, plus jsonschema and yaml for the schema and
TAP checks of report_check.py (Debian: python3-jsonschema, python3-yaml).
"""
import argparse
import json
import re
import subprocess
import sys

import report_check

CLOSING = re.compile(r"^conformance: (\d+) passed, (\d+) failed, (\d+) skipped$")
RESULTS = {"PASS", "FAIL", "XFAIL", "XPASS", "UNSUPPORTED", "UNRESOLVED",
           "CRASH", "TIMEOUT", "UNTESTED"}
SUMMARY_KEYS = ["pass", "fail", "xfail", "xpass", "unsupported", "unresolved",
                "crash", "timeout"]
CLAUSE_ID = re.compile(r"^[A-Z]+-[A-Z0-9]+(-[A-Z0-9]+)*-[0-9]{3}$")

problems = []


def check(cond, what):
    if not cond:
        problems.append(what)
    return cond


def check_json(path, args, closing):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        check(False, f"{path}: not a readable JSON file: {e}")
        return
    top = ["implementation", "profile", "follow", "summary", "expectations",
           "clauses"]
    for key in top:
        check(key in doc, f"JSON: no top-level key {key!r}")
    if problems:
        return
    impl = doc["implementation"]
    for key, kind in [("name", str), ("version", str), ("abi_version", int),
                      ("capabilities", list), ("custom_child_watchers", str),
                      ("watcher_kinds", list), ("profiles", list)]:
        check(isinstance(impl.get(key), kind),
              f"JSON: implementation.{key} missing or not {kind.__name__}")
    check(impl.get("abi_version") == 1, "JSON: abi_version is not 1")
    check(impl.get("custom_child_watchers") in
          ("SUPPORTED", "PROHIBITED", "IGNORED"),
          "JSON: custom_child_watchers is not a value name")
    check(all(re.fullmatch(r"3\.(8|9|1[0-2])", p) for p in impl["profiles"]),
          "JSON: implementation.profiles are not 3.N names")
    check(re.fullmatch(r"3\.(8|9|1[0-2])", str(doc["profile"])) is not None,
          "JSON: profile is not 3.N")
    check(doc["follow"] in ("doc", "cpython"), "JSON: follow is not doc/cpython")
    summary = doc["summary"]
    for key in SUMMARY_KEYS:
        check(isinstance(summary.get(key), int), f"JSON: summary.{key} missing")
    check(isinstance(doc["clauses"], list), "JSON: clauses is not a list")
    if problems:
        return

    counted = {}   # test name -> result, over counted clauses
    every = {}     # test name -> result, over all clauses
    listed = set()  # tests that carry an expectation
    for c in doc["clauses"]:
        for key in ["id", "level", "source", "statement", "result", "tests"]:
            check(key in c, f"JSON: a clause has no {key!r}")
        if problems:
            return
        check(CLAUSE_ID.match(c["id"]) is not None, f"JSON: bad clause id {c['id']!r}")
        check(c["level"] in ("MUST", "SHOULD", "MAY"), f"JSON: {c['id']}: bad level")
        check(c["source"] in ("doc", "cpython"), f"JSON: {c['id']}: bad source")
        check(c["result"] in RESULTS | {"INFO"}, f"JSON: {c['id']}: bad result {c['result']!r}")
        for t in c["tests"]:
            for key in ["name", "result", "message", "expected"]:
                check(key in t, f"JSON: {c['id']}: a test has no {key!r}")
            if problems:
                return
            exp = t["expected"]
            if exp is not None:
                check(isinstance(exp, dict) and isinstance(exp.get("line"), int)
                      and isinstance(exp.get("reason"), str) and exp["reason"].strip()
                      and isinstance(exp.get("intermittent"), bool),
                      f"JSON: {t['name']}: expected is not {{line, reason, intermittent}}")
                listed.add(t["name"])
            check(t["result"] not in ("XFAIL", "XPASS") or exp is not None,
                  f"JSON: {t['name']} is {t['result']} but carries no expectation")
            check(t["result"] in RESULTS - {"UNTESTED"},
                  f"JSON: {t['name']}: bad result {t['result']!r}")
            check(t["message"] is None or isinstance(t["message"], str),
                  f"JSON: {t['name']}: message is not a string or null")
            every[t["name"]] = t["result"]
            if c.get("counted", True):
                counted[t["name"]] = t["result"]

    tally = {k: 0 for k in SUMMARY_KEYS}
    for result in counted.values():
        tally[result.lower()] += 1
    check(tally == {k: summary[k] for k in SUMMARY_KEYS},
          f"JSON: summary {summary} disagrees with the clauses' tests {tally}")
    if closing is not None:
        passed, failed, skipped = closing
        check(passed == summary["pass"], "closing line: passed != summary.pass")
        check(failed == summary["fail"] + summary["crash"] + summary["timeout"]
              + summary["xpass"], "closing line: failed disagrees with summary")
        check(skipped == summary["unsupported"] + summary["unresolved"]
              + summary["xfail"], "closing line: skipped disagrees with summary")
    if args.results:
        allowed = set(args.results.split(","))
        odd = {n: r for n, r in every.items() if r not in allowed}
        check(not odd and every, f"JSON: results outside {sorted(allowed)}: "
              f"{dict(list(odd.items())[:5])}" if odd else "JSON: no test results")
    for spec in args.result:
        name, _, want = spec.partition("=")
        check(every.get(name) == want,
              f"JSON: {name} is {every.get(name)!r}, expected {want!r}")
    if args.stopped:
        check(doc.get("stopped") is True, "JSON: the run was not stopped")
    if args.suite_bug:
        bugs = set(args.suite_bug)
        for name in sorted(bugs):
            check(every.get(name) == "FAIL",
                  f"JSON: {name} is {every.get(name)!r}, not FAIL: if the "
                  f"suite bug is fixed, drop --suite-bug {name}")
        failing = {n: r for n, r in counted.items()
                   if r in ("FAIL", "XPASS", "CRASH", "TIMEOUT") and n not in bugs}
        check(not failing, f"JSON: failures other than the known suite bugs: "
              f"{failing}")
    expectations = doc["expectations"]
    if args.expectations is None:
        check(expectations is None and not listed,
              "JSON: expectations reported for a run without --expect")
    elif check(isinstance(expectations, dict), "JSON: expectations is not an object"):
        check(expectations.get("entries") == args.expectations,
              f"JSON: expectations.entries is {expectations.get('entries')!r}, "
              f"expected {args.expectations}")
        unused = expectations.get("unused")
        if check(isinstance(unused, list), "JSON: expectations.unused is not a list"):
            seen = listed | set(unused)
            check(len(seen) == args.expectations,
                  f"JSON: {len(seen)} entries are either on a test or unused, "
                  f"of {args.expectations}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exit")
    ap.add_argument("--one-line-error", action="store_true")
    ap.add_argument("--stderr-match")
    ap.add_argument("--stdout-match", action="append", default=[])
    ap.add_argument("--closing-line", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--junit")
    ap.add_argument("--tap")
    ap.add_argument("--results")
    ap.add_argument("--result", action="append", default=[])
    ap.add_argument("--stopped", action="store_true")
    ap.add_argument("--expectations", type=int)
    ap.add_argument("--skip-if-stdout")
    ap.add_argument("--suite-bug", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command")

    try:
        p = subprocess.run(cmd, capture_output=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"FAILED: {cmd[0]} ran longer than {args.timeout} s")
        return 1
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    print(f"$ {' '.join(cmd)}\nexit status {p.returncode}")
    print("--- stdout (last 20 lines)\n" + "\n".join(out.splitlines()[-20:]))
    print("--- stderr (last 20 lines)\n" + "\n".join(err.splitlines()[-20:]))

    if args.skip_if_stdout:
        m = re.search(args.skip_if_stdout, out, re.M)
        if m:
            print(f"SKIPPED: stdout says {m.group(0)!r}")
            return 77
    if args.exit is not None:
        want = [int(x) for x in args.exit.split(",")]
        check(p.returncode in want, f"exit status {p.returncode}, expected {want}")
    check(p.returncode >= 0, f"killed by signal {-p.returncode}")
    if args.one_line_error:
        check(out == "", "stdout is not empty")
        check(err.endswith("\n") and err.count("\n") == 1,
              f"stderr is {err.count(chr(10))} lines, expected exactly one")
        check(err.startswith("loopspec-conform: "),
              "the error line does not start with 'loopspec-conform: '")
    if args.stderr_match:
        check(re.search(args.stderr_match, err) is not None,
              f"stderr does not match {args.stderr_match!r}")
    for pattern in args.stdout_match:
        check(re.search(pattern, out, re.M) is not None,
              f"stdout does not match {pattern!r}")
    closing = None
    if args.closing_line:
        lines = out.splitlines()
        m = CLOSING.match(lines[-1]) if lines else None
        if check(m is not None and out.endswith("\n"),
                 "stdout does not end with the closing line"):
            closing = tuple(int(x) for x in m.groups())
    if args.list:
        lines = out.splitlines()
        check(lines, "--list printed nothing")
        for line in lines:
            f = line.split(None, 3)
            ok = (len(f) == 4 and CLAUSE_ID.match(f[0]) and
                  f[1] in ("MUST", "SHOULD", "MAY") and f[2] in ("doc", "cpython"))
            if not check(ok, f"--list line is not 'ID LEVEL SOURCE STATEMENT': {line!r}"):
                break
    if (args.junit or args.tap) and not args.json:
        ap.error("--junit and --tap need --json")
    if args.json:
        check_json(args.json, args, closing)
        for what in report_check.check_reports(args.json, args.junit,
                                               args.tap):
            check(False, what)

    for what in problems:
        print("FAILED: " + what)
    if not problems:
        print("ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
