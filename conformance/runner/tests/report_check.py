#!/usr/bin/env python3
"""report_check.py - checks loopspec-conform's report files against each other
and against the JSON report's schema (conformance/schema/report.schema.json).

Usage:
  report_check.py [--schema FILE] --json PATH [--junit PATH] [--tap PATH]
  report_check.py [--schema FILE] --selftest --json PATH --junit PATH --tap PATH

  --json    the JSON report must be valid against the schema
  --junit   the JUnit XML report must be well-formed and hold exactly the
            tests the JSON report counts, with the same results
  --tap     the TAP report must be TAP version 13, its plan the number of
            those tests, its numbering sequential, its directives and YAML
            diagnostics those of the same results
  --selftest  the three reports given must pass, and each of a set of
            damaged copies of them must be refused: the checks can fail

Prints what it checked and exits 0, or each problem and exits 1.
Needs jsonschema (Debian: python3-jsonschema) for the schema and PyYAML
(python3-yaml) for TAP's YAML blocks; ci/deps installs both.  Used on its own
by ctest and as a module by conform_check.py.
"""
import argparse
import copy
import json
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.join(HERE, "..", "..", "schema", "report.schema.json")

FAILURE = {"FAIL", "XPASS"}
ERROR = {"CRASH", "TIMEOUT"}
SKIPPED = {"UNSUPPORTED", "UNRESOLVED", "XFAIL"}


def check_schema(doc, schema_path):
    """Problems of `doc` against the schema (draft 2020-12)."""
    try:
        import jsonschema
    except ImportError:
        return ["cannot validate against the schema: the Python module "
                "jsonschema is missing (Debian: python3-jsonschema; ci/deps "
                "installs it)"]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.path))
    return [f"schema: at /{'/'.join(str(p) for p in e.path)}: {e.message[:300]}"
            for e in errors[:20]]


def listed_tests(doc):
    """The tests the JUnit and TAP reports list: those under counted
    clauses, each once: name -> (result, message, expected, {areas},
    {clause ids})."""
    tests = {}
    for c in doc["clauses"]:
        if not c["counted"]:
            continue
        for t in c["tests"]:
            entry = tests.setdefault(t["name"], (t["result"], t["message"],
                                                 t["expected"], set(), set()))
            entry[3].add(c["area"])
            entry[4].add(c["id"])
    return tests


def first_line(s):
    return (s or "").split("\n", 1)[0]


def xml_seen(s):
    """What report_junit.c makes of a message: controls XML cannot carry
    as \\xNN."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]",
                  lambda m: f"\\x{ord(m.group(0)):02x}", s or "")


def check_junit(path, doc):
    problems = []
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        return [f"JUnit: {path} is not well-formed XML: {e}"]
    tests = listed_tests(doc)
    summary = doc["summary"]
    want = {"tests": sum(summary.values()),
            "failures": summary["fail"] + summary["xpass"],
            "errors": summary["crash"] + summary["timeout"],
            "skipped": summary["unsupported"] + summary["unresolved"]
            + summary["xfail"]}
    if root.tag != "testsuites":
        return [f"JUnit: the root element is <{root.tag}>, not <testsuites>"]
    for key, n in want.items():
        if root.get(key) != str(n):
            problems.append(f"JUnit: <testsuites {key}={root.get(key)!r}>, the "
                            f"JSON summary makes it {n}")
    if len(tests) != want["tests"]:
        problems.append(f"JUnit: the JSON report's counted clauses hold "
                        f"{len(tests)} tests, its summary {want['tests']}")
    seen = set()
    suites = root.findall("testsuite")
    if len(suites) != len(list(root)):
        problems.append("JUnit: <testsuites> holds something else than "
                        "<testsuite> elements")
    if len({s.get("name") for s in suites}) != len(suites):
        problems.append("JUnit: two testsuites have one name")
    for suite in suites:
        cases = suite.findall("testcase")
        if suite.get("tests") != str(len(cases)):
            problems.append(f"JUnit: testsuite {suite.get('name')} says "
                            f"tests={suite.get('tests')!r} and holds "
                            f"{len(cases)} testcases")
        counts = {"failures": 0, "errors": 0, "skipped": 0}
        for case in cases:
            name = case.get("name")
            where = f"JUnit: {name}"
            if name in seen:
                problems.append(f"{where}: listed twice")
            seen.add(name)
            if case.get("classname") != suite.get("name"):
                problems.append(f"{where}: classname {case.get('classname')!r} "
                                f"in testsuite {suite.get('name')!r}")
            if name not in tests:
                problems.append(f"{where}: not a counted test of the JSON report")
                continue
            result, message, expected, areas, clauses = tests[name]
            if case.get("classname") not in areas:
                problems.append(f"{where}: classname {case.get('classname')!r} "
                                f"is not the area of a clause it is reported "
                                f"under ({sorted(areas)})")
            props = [(p.get("name"), p.get("value"))
                     for p in case.findall("properties/property")]
            cited = {v for k, v in props if k == "clause"}
            if not clauses <= cited:
                problems.append(f"{where}: clause properties {sorted(cited)} "
                                f"miss {sorted(clauses - cited)}")
            if ("result", result) not in props:
                problems.append(f"{where}: no result property {result!r}")
            if (expected is not None) != any(k == "expectation" for k, _ in props):
                problems.append(f"{where}: an expectation property goes with "
                                f"an expectations entry, and only then")
            kids = [k for k in case if k.tag != "properties"]
            tags = [k.tag for k in kids]
            if result == "PASS":
                if tags:
                    problems.append(f"{where}: PASS with {tags}")
                continue
            kind = ("failure" if result in FAILURE else
                    "error" if result in ERROR else "skipped")
            counts["failures" if kind == "failure" else
                   "errors" if kind == "error" else "skipped"] += 1
            if tags != [kind]:
                problems.append(f"{where}: {result} has {tags}, expected "
                                f"[{kind!r}]")
                continue
            el = kids[0]
            msg = el.get("message") or ""
            if kind in ("failure", "error"):
                if el.get("type") != result:
                    problems.append(f"{where}: type {el.get('type')!r}, not "
                                    f"{result!r}")
                text = message if message is not None else result
                if msg != xml_seen(first_line(text))[:len(msg)] or not msg:
                    problems.append(f"{where}: message {msg!r} is not the "
                                    f"first line of {text!r}")
                if (el.text or "") != xml_seen(text):
                    problems.append(f"{where}: the {kind} text is not the "
                                    f"JSON report's message")
            elif result == "XFAIL":
                if msg != "expected failure: " + first_line(expected["reason"]):
                    problems.append(f"{where}: skipped message {msg!r} is not "
                                    f"'expected failure: REASON'")
            elif result == "UNRESOLVED":
                if not msg.startswith("unresolved: "):
                    problems.append(f"{where}: skipped message {msg!r} does not "
                                    f"start 'unresolved: '")
            elif not msg:
                problems.append(f"{where}: UNSUPPORTED without a reason")
        for key, n in counts.items():
            if suite.get(key) != str(n):
                problems.append(f"JUnit: testsuite {suite.get('name')} says "
                                f"{key}={suite.get(key)!r}, holds {n}")
    missing = set(tests) - seen
    if missing:
        problems.append(f"JUnit: {len(missing)} counted tests are missing, "
                        f"e.g. {sorted(missing)[:3]}")
    return problems


TAP_LINE = re.compile(r"^(ok|not ok) (\d+) - (.*)$")


def split_directive(desc):
    """(description, directive or None): the first '#' not escaped by '\\'."""
    i = 0
    while i < len(desc):
        if desc[i] == "\\":
            i += 2
            continue
        if desc[i] == "#":
            return desc[:i].rstrip(), desc[i + 1:].strip()
        i += 1
    return desc, None


def check_tap(path, doc):
    try:
        import yaml
    except ImportError:
        return ["cannot read TAP's YAML blocks: the Python module yaml is "
                "missing (Debian: python3-yaml; ci/deps installs it)"]
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, ValueError) as e:
        return [f"TAP: cannot read {path}: {e}"]
    problems = []
    tests = listed_tests(doc)
    if lines[-1] != "":
        problems.append("TAP: the last line does not end with a newline")
    lines = lines[:-1]
    if lines[:1] != ["TAP version 13"]:
        return ["TAP: the first line is not 'TAP version 13'"]
    m = re.fullmatch(r"1\.\.(\d+)", lines[1] if len(lines) > 1 else "")
    if not m:
        return ["TAP: the second line is not the plan '1..N'"]
    plan = int(m.group(1))
    if plan != len(tests):
        problems.append(f"TAP: plan 1..{plan}, the JSON report counts "
                        f"{len(tests)} tests")
    number, seen, last_not_ok = 0, set(), None
    i = 2
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("#"):
            continue
        if line == "  ---":
            block = []
            while i < len(lines) and lines[i] != "  ...":
                block.append(lines[i])
                i += 1
            if i == len(lines):
                problems.append("TAP: a YAML block has no '  ...' end")
                break
            i += 1
            if last_not_ok is None:
                problems.append("TAP: a YAML block that follows no 'not ok'")
                continue
            name, result, message = last_not_ok
            last_not_ok = None
            try:
                data = yaml.safe_load("\n".join(block))
            except yaml.YAMLError as e:
                problems.append(f"TAP: {name}: the YAML block is not YAML: {e}")
                continue
            if not isinstance(data, dict):
                problems.append(f"TAP: {name}: the YAML block is not a mapping")
                continue
            if data.get("result") != result:
                problems.append(f"TAP: {name}: YAML result "
                                f"{data.get('result')!r}, not {result!r}")
            if data.get("message") != message:
                problems.append(f"TAP: {name}: the YAML message is not the "
                                f"JSON report's")
            if not set(tests[name][4]) <= set(data.get("clauses") or []):
                problems.append(f"TAP: {name}: YAML clauses miss some")
            continue
        if last_not_ok is not None:
            problems.append(f"TAP: 'not ok' {last_not_ok[0]} has no YAML block")
            last_not_ok = None
        m = TAP_LINE.match(line)
        if not m:
            problems.append(f"TAP: not a TAP line: {line!r}")
            continue
        number += 1
        if int(m.group(2)) != number:
            problems.append(f"TAP: test {m.group(2)} where {number} was due")
        desc, directive = split_directive(m.group(3))
        parts = desc.split(" ")
        if len(parts) != 2:
            problems.append(f"TAP: description {desc!r} is not 'AREA suite::name'")
            continue
        area, name = parts
        if name in seen:
            problems.append(f"TAP: {name} listed twice")
        seen.add(name)
        if name not in tests:
            problems.append(f"TAP: {name} is not a counted test of the JSON report")
            continue
        result, message, expected, areas, _ = tests[name]
        if area not in areas:
            problems.append(f"TAP: {name}: area {area} is not one of {sorted(areas)}")
        ok = m.group(1) == "ok"
        want_ok = result in ("PASS", "UNSUPPORTED", "UNRESOLVED")
        if ok != want_ok:
            problems.append(f"TAP: {name} is {result}, and says {m.group(1)!r}")
        if result in ("UNSUPPORTED", "UNRESOLVED"):
            if not directive or not directive.startswith("SKIP"):
                problems.append(f"TAP: {name} is {result} without '# SKIP'")
            elif result == "UNRESOLVED" and not directive.startswith("SKIP unresolved: "):
                problems.append(f"TAP: {name}: '# SKIP' without 'unresolved: '")
        elif result == "XFAIL":
            want = "TODO expected failure: " + first_line(expected["reason"])
            if directive != want:
                problems.append(f"TAP: {name}: directive {directive!r}, expected "
                                f"{want!r}")
        elif directive is not None:
            problems.append(f"TAP: {name} is {result} with a directive {directive!r}")
        if not ok:
            last_not_ok = (name, result, message)
    if last_not_ok is not None:
        problems.append(f"TAP: 'not ok' {last_not_ok[0]} has no YAML block")
    if number != plan:
        problems.append(f"TAP: {number} test lines, plan 1..{plan}")
    return problems


def check_reports(json_path, junit_path=None, tap_path=None,
                  schema_path=DEFAULT_SCHEMA):
    """Every problem of the reports given; [] when they are right."""
    try:
        with open(json_path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return [f"JSON: {json_path} is not a readable JSON file: {e}"]
    problems = check_schema(doc, schema_path)
    if problems:
        return problems  # The other checks rely on the shape.
    if junit_path:
        problems += check_junit(junit_path, doc)
    if tap_path:
        problems += check_tap(tap_path, doc)
    return problems


# --- the self-test: damaged reports must be refused --------------------------

def damaged(json_path, junit_path, tap_path):
    """(what, kind, text) for each damaged copy: kind is json, junit or tap."""
    with open(json_path, encoding="utf-8") as f:
        doc = json.load(f)
    with open(junit_path, encoding="utf-8") as f:
        junit = f.read()
    with open(tap_path, encoding="utf-8") as f:
        tap = f.read()
    out = []

    d = copy.deepcopy(doc)
    d["surprise"] = 1
    out.append(("an unknown top-level key", "json", json.dumps(d)))
    d = copy.deepcopy(doc)
    d["summary"]["pass"] = -1
    out.append(("a negative count", "json", json.dumps(d)))
    d = copy.deepcopy(doc)
    del d["clauses"][0]["tests"][0]["expected"]
    out.append(("a test without 'expected'", "json", json.dumps(d)))
    d = copy.deepcopy(doc)
    d["clauses"][0]["tests"][0]["result"] = "MAYBE"
    out.append(("an unknown result", "json", json.dumps(d)))

    out.append(("XML cut short", "junit", junit[: len(junit) // 2]))
    out.append(("one testcase less", "junit",
                re.sub(r"    <testcase .*?</testcase>\n", "", junit, count=1,
                       flags=re.S)))
    out.append(("a wrong total", "junit",
                re.sub(r'(<testsuites [^>]*tests=")(\d+)',
                       lambda m: m.group(1) + str(int(m.group(2)) + 1), junit,
                       count=1)))
    out.append(("a failure turned into a pass", "junit",
                re.sub(r"\s*<failure .*?</failure>", "", junit, count=1,
                       flags=re.S)))

    lines = tap.split("\n")
    plan = next(i for i, line in enumerate(lines) if line.startswith("1.."))
    n = int(lines[plan][3:])
    out.append(("a plan one too large", "tap",
                "\n".join(lines[:plan] + [f"1..{n + 1}"] + lines[plan + 1:])))
    first = next(i for i, line in enumerate(lines) if TAP_LINE.match(line))
    out.append(("numbering that skips", "tap",
                "\n".join(lines[:first] + [re.sub(r"^(ok|not ok) 1 ",
                                                  r"\1 7 ", lines[first])]
                          + lines[first + 1:])))
    out.append(("no 'TAP version 13'", "tap", "\n".join(lines[1:])))
    bad = next((i for i, line in enumerate(lines) if line.startswith("not ok")),
               None)
    if bad is not None:
        out.append(("a 'not ok' turned 'ok'", "tap",
                    "\n".join(lines[:bad] + ["ok" + lines[bad][6:]]
                              + lines[bad + 1:])))
    return out


def selftest(args):
    problems = check_reports(args.json, args.junit, args.tap, args.schema)
    if problems:
        return ["the undamaged reports are refused: " + p for p in problems]
    cases = damaged(args.json, args.junit, args.tap)
    if not any(k == "tap" and w.startswith("a 'not ok'") for w, k, _ in cases):
        problems.append("the reports hold no 'not ok' test: run the self-test "
                        "on a run with failures")
    with tempfile.TemporaryDirectory() as tmp:
        for what, kind, text in cases:
            path = os.path.join(tmp, "damaged." + kind)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            paths = {"json": args.json, "junit": args.junit, "tap": args.tap,
                     kind: path}
            found = check_reports(paths["json"], paths["junit"], paths["tap"],
                                  args.schema)
            print(f"damaged {kind} ({what}): "
                  f"{'refused: ' + found[0] if found else 'ACCEPTED'}")
            if not found:
                problems.append(f"a damaged {kind} report ({what}) passes")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schema", default=DEFAULT_SCHEMA)
    ap.add_argument("--json")
    ap.add_argument("--junit")
    ap.add_argument("--tap")
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()

    if args.selftest:
        if not (args.json and args.junit and args.tap):
            ap.error("--selftest needs --json, --junit and --tap")
        problems = selftest(args)
    elif args.json:
        problems = check_reports(args.json, args.junit, args.tap, args.schema)
    else:
        ap.error("give --json or --selftest")
    for p in problems:
        print("FAILED: " + p)
    if not problems:
        print("ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
