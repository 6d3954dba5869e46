#!/usr/bin/env python3
"""results_table.py - turns loopspec-conform JSON reports into the markdown
table of README.md: a row per clause area, a column per run, each cell the
counts of that area's clauses by result.

Usage:
  results_table.py --column LABEL=REPORT.json [--column ...] [--readme FILE]
                   [--check | --print]

Each --column is one run's JSON report (`loopspec-conform --report
json:PATH`), in the order the columns should appear.  The table replaces
the text between the lines `<!-- results:begin -->` and
`<!-- results:end -->` of the README (default: README.md beside conformance/).
--check changes nothing and exits 1 when the README's table differs from
what the reports give (it prints the difference); --print writes the table
to stdout only.

What a cell counts: the clauses the run counted (the side of a doc/CPython
conflict the run did not follow is left out), each by its result: passed,
xfail (a known deviation listed in the run's expectations file), unsupported
(an optional capability the implementation does not offer), unresolved,
untested (no test of the clause applies to that implementation), and failed
(FAIL, XPASS, CRASH, TIMEOUT), each shown only when it is not zero.  A
clause whose test is listed as an intermittent deviation counts as xfail
whether or not the deviation showed in that run, so that the table does not
change from one run to the next.

Exit status: 0 (written, or --check found it current), 1 (--check found a
difference), 2 (bad arguments, an unreadable report, no markers).
Python 3 standard library only.
"""
import argparse
import difflib
import json
import os
import sys

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
AREAS = ["POL", "LOOP", "CW", "SUB"]  # first, in this order; others after
# (cell word, results counted under it), in the order cells list them.
CELLS = [
    ("passed", {"PASS"}),
    ("xfail", {"XFAIL"}),
    ("unsupported", {"UNSUPPORTED"}),
    ("unresolved", {"UNRESOLVED"}),
    ("untested", {"UNTESTED"}),
    ("failed", {"FAIL", "XPASS", "CRASH", "TIMEOUT"}),
]


class Fatal(Exception):
    pass


def load_report(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise Fatal(f"{path}: not a readable JSON report: {e}")
    for key in ("implementation", "profile", "follow", "clauses"):
        if key not in doc:
            raise Fatal(f"{path}: not a loopspec-conform report (no {key!r})")
    return doc


def clause_result(clause):
    """The result a clause counts under, or None when it is not counted."""
    if not clause.get("counted", True) or clause["result"] == "INFO":
        return None
    result = clause["result"]
    if result == "PASS":
        for test in clause.get("tests", []):
            exp = test.get("expected")
            if exp and exp.get("intermittent"):
                return "XFAIL"
    return result


def tally(doc):
    """{area: {result: count}} over the counted clauses of one report."""
    areas = {}
    for clause in doc["clauses"]:
        result = clause_result(clause)
        if result is None:
            continue
        area = clause.get("area") or clause["id"].split("-", 1)[0]
        counts = areas.setdefault(area, {})
        counts[result] = counts.get(result, 0) + 1
    return areas


def cell(counts):
    parts = []
    for word, results in CELLS:
        n = sum(counts.get(r, 0) for r in results)
        if n:
            parts.append(f"{n} {word}")
    known = set().union(*(r for _, r in CELLS))
    odd = sorted(r for r in counts if r not in known)
    if odd:
        raise Fatal(f"unknown clause results {odd}")
    return ", ".join(parts) if parts else "none"


def describe(label, doc):
    impl = doc["implementation"]
    text = f"{impl.get('name', '?')} {impl.get('version', '?')}"
    exp = doc.get("expectations")
    how = f"profile {doc['profile']}, `--follow {doc['follow']}`"
    if exp:
        how += f", `--expect {os.path.basename(exp['path'])}`"
    if doc.get("filter"):
        how += f", clauses matching `{doc['filter']}`"
    if doc.get("stopped"):
        how += ", stopped by its time limit"
    return f"- **{label}**: {text}; {how}."


def make_table(columns):
    """columns: [(label, doc)] -> the markdown text (without markers)."""
    tallies = [tally(doc) for _, doc in columns]
    seen = set()
    for t in tallies:
        seen.update(t)
    rows = [a for a in AREAS if a in seen] + sorted(seen - set(AREAS))
    lines = ["| clauses | " + " | ".join(label for label, _ in columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    for area in rows:
        lines.append(f"| {area} | " +
                     " | ".join(cell(t.get(area, {})) for t in tallies) + " |")
    totals = []
    for t in tallies:
        total = {}
        for counts in t.values():
            for r, n in counts.items():
                total[r] = total.get(r, 0) + n
        totals.append(total)
    lines.append("| all | " + " | ".join(cell(t) for t in totals) + " |")
    lines.append("")
    lines.extend(describe(label, doc) for label, doc in columns)
    return "\n".join(lines) + "\n"


def split_readme(text, path):
    begin = text.find(BEGIN + "\n")
    end = text.find("\n" + END, begin) + 1 if begin >= 0 else 0
    if begin < 0 or end <= 0 or (begin > 0 and text[begin - 1] != "\n"):
        raise Fatal(f"{path}: no line {BEGIN} followed, later, by a line {END}")
    head = text[:begin + len(BEGIN) + 1]
    return head, text[len(head):end], text[end:]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(
        description="Writes the README's results table from JSON reports.")
    ap.add_argument("--column", action="append", required=True,
                    metavar="LABEL=REPORT.json")
    ap.add_argument("--readme",
                    default=os.path.normpath(
                        os.path.join(here, "..", "..", "README.md")))
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--print", action="store_true")
    args = ap.parse_args()

    try:
        columns = []
        for spec in args.column:
            label, sep, path = spec.partition("=")
            if not sep or not label or not path:
                raise Fatal(f"--column takes LABEL=REPORT.json, not {spec!r}")
            columns.append((label, load_report(path)))
        table = make_table(columns)
        if args.print:
            sys.stdout.write(table)
            return 0
        try:
            with open(args.readme, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise Fatal(f"{args.readme}: {e.strerror}")
        head, old, tail = split_readme(text, args.readme)
        if args.check:
            if old == table:
                print(f"{args.readme}: the results table is current")
                return 0
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), table.splitlines(True),
                f"{args.readme} (now)", "from the reports"))
            print(f"{args.readme}: the results table differs from the "
                  f"reports; run without --check to rewrite it")
            return 1
        if old != table:
            with open(args.readme, "w", encoding="utf-8") as f:
                f.write(head + table + tail)
        return 0
    except Fatal as e:
        print(f"results_table.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
