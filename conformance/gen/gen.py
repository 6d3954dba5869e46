#!/usr/bin/env python3
"""gen.py - loopspec's conformance generator.

Reads the clause files (spec/clauses/*.toml) and the hand-written tests
(conformance/cases/*.c), validates them, and writes:

  OUT/registry.c         lh_clauses[] and lh_tests[] (conformance/harness/registry.h)
  OUT/tests_generated.c  one Criterion Test() per [[clause.test]] step list
  OUT/lh_cases_meta.h    the timeouts of the hand-written tests (LH_TEST)
  OUT/manifest.json      test -> clauses and clause -> tests

Usage:
  gen.py --clauses spec/clauses --cases conformance/cases --out DIR
  gen.py --clauses spec/clauses --cases conformance/cases --check

Any error exits 1 with one line per problem: "path: CLAUSE-ID: what is wrong".
The file format and the step language are documented in
spec/clauses/README.md.  Python 3.11 standard library only.
"""

import argparse
import json
import os
import re
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dsl import DslError, compile_steps, c_string  # noqa: E402

AREAS = ("POL", "LOOP", "CW", "SUB", "ABI")
LEVELS = ("MUST", "SHOULD", "MAY")
SOURCES = ("doc", "cpython")
STATUSES = ("active", "deprecated", "withdrawn")
CUSTOM_WATCHERS = {
    "SUPPORTED": "LSPEC_CUSTOM_WATCHERS_SUPPORTED",
    "PROHIBITED": "LSPEC_CUSTOM_WATCHERS_PROHIBITED",
    "IGNORED": "LSPEC_CUSTOM_WATCHERS_IGNORED",
}
CAPABILITIES = {
    "policies": "LSPEC_CAP_POLICIES",
    "custom_policy": "LSPEC_CAP_CUSTOM_POLICY",
    "loop": "LSPEC_CAP_LOOP",
    "loop_backend_poll": "LSPEC_CAP_LOOP_BACKEND_POLL",
    "readers": "LSPEC_CAP_READERS",
    "signals": "LSPEC_CAP_SIGNALS",
    "child_watchers": "LSPEC_CAP_CHILD_WATCHERS",
    "subprocess": "LSPEC_CAP_SUBPROCESS",
    "thread_checks": "LSPEC_CAP_THREAD_CHECKS",
}
WATCHER_KINDS = ("THREADED", "MULTILOOP", "SAFE", "FAST", "PIDFD", "NATIVE")
CLAUSE_KEYS_REQUIRED = ("id", "statement", "level", "source", "cite",
                        "versions", "applies_to", "status")
CLAUSE_KEYS_OPTIONAL = ("capabilities", "custom_child_watchers", "since",
                        "conflict", "note", "test")
TEST_KEYS_REQUIRED = ("name", "steps")
TEST_KEYS_OPTIONAL = ("clauses", "versions", "timeout", "kinds")
TAG_KEYS = ("test", "clauses", "caps", "versions", "timeout", "kinds")

ID_RE = re.compile(r"^(POL|LOOP|CW|SUB|ABI)-[A-Z][A-Z0-9]*-[0-9]{3}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
VERSION_RE = re.compile(r"^(?:3\.([0-9]+))?(-)?(?:3\.([0-9]+))?$")
MIN_MINOR, MAX_MINOR = 8, 12
DEFAULT_TIMEOUT = 10.0


class Errors:
    def __init__(self):
        self.items = []

    def add(self, path, ident, msg):
        self.items.append(f"{path}: {ident}: {msg}")


def parse_versions(text):
    """'3.8-3.12', '3.12', '3.11-', '-3.10' -> (min_minor, max_minor)."""
    if not isinstance(text, str):
        raise ValueError("versions must be a string like \"3.8-3.12\"")
    m = VERSION_RE.match(text.strip())
    if not m or (m.group(1) is None and m.group(3) is None):
        raise ValueError(f"bad version range {text!r} (write \"3.8-3.12\", "
                         "\"3.12\", \"3.11-\" or \"-3.10\")")
    lo, dash, hi = m.group(1), m.group(2), m.group(3)
    if dash is None:
        if hi is not None:
            raise ValueError(f"bad version range {text!r}")
        lo = hi = int(lo)
    else:
        lo = int(lo) if lo is not None else MIN_MINOR
        hi = int(hi) if hi is not None else MAX_MINOR
    for v in (lo, hi):
        if not MIN_MINOR <= v <= MAX_MINOR:
            raise ValueError(f"version 3.{v} in {text!r} is outside "
                             f"3.{MIN_MINOR}..3.{MAX_MINOR}")
    if lo > hi:
        raise ValueError(f"version range {text!r} has min > max")
    return lo, hi


def fmt_versions(rng):
    lo, hi = rng
    return f"3.{lo}" if lo == hi else f"3.{lo}-3.{hi}"


def line_index(text):
    """Line numbers of clause ids, test names and their steps in a TOML
    file (best effort: for messages only)."""
    ids, names, steps = {}, {}, {}
    last_name = None
    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(r'^\s*id\s*=\s*"([^"]+)"', line)
        if m:
            ids.setdefault(m.group(1), []).append(no)
        m = re.match(r'^\s*name\s*=\s*"([^"]+)"', line)
        if m:
            last_name = m.group(1)
            names.setdefault(last_name, no)
        m = re.match(r'^\s*steps\s*=\s*"""(.*)$', line)
        if m and last_name is not None and last_name not in steps:
            steps[last_name] = no + 1 if m.group(1).strip() == "" else no
    return ids, names, steps


# ---------------------------------------------------------------------------
# Clause files
# ---------------------------------------------------------------------------

def load_clauses(clause_dir, errors):
    clauses = {}   # id -> clause dict (with our own keys added)
    gtests = []    # generated tests
    paths = sorted(p for p in os.listdir(clause_dir) if p.endswith(".toml"))
    if not paths:
        errors.add(clause_dir, "-", "no clause files (*.toml)")
    for fname in paths:
        path = os.path.join(clause_dir, fname)
        stem = fname[:-5]
        with open(path, "rb") as f:
            raw = f.read()
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            errors.add(path, "-", f"not valid TOML: {e}")
            continue
        ids_at, names_at, steps_at = line_index(raw.decode("utf-8"))
        seen_ids = {}
        if not NAME_RE.match(stem):
            errors.add(path, "-", f"file name {fname!r} must be a lower-case "
                       "C token (it is the Criterion suite name)")
        for key in doc:
            if key not in ("area", "clause"):
                errors.add(path, "-", f"unknown top-level key {key!r} "
                           "(expected 'area' and [[clause]] tables)")
        area = doc.get("area")
        if area not in AREAS:
            errors.add(path, "-", f"missing or bad 'area' {area!r} "
                       f"(one of {', '.join(AREAS)})")
        entries = doc.get("clause", [])
        if not isinstance(entries, list):
            errors.add(path, "-", "'clause' must be an array of tables "
                       "([[clause]])")
            continue
        for n, c in enumerate(entries, 1):
            cid = c.get("id") if isinstance(c.get("id"), str) else None
            ident = cid or f"clause #{n}"
            # The n-th clause with this id sits on its id's n-th line.
            seen_ids[cid] = seen_ids.get(cid, 0) + 1
            lines = ids_at.get(cid, [])
            where = (f"{path}:{lines[seen_ids[cid] - 1]}"
                     if seen_ids[cid] <= len(lines) else path)
            clause = validate_clause(c, area, where, ident, errors)
            if clause is None:
                continue
            clause["path"] = path
            clause["where"] = where
            clause["suite"] = stem
            if cid in clauses:
                errors.add(where, cid, "duplicate clause id (first defined "
                           f"in {clauses[cid]['where']})")
                continue
            clauses[cid] = clause
            for t in c.get("test", []):
                gt = validate_gtest(t, clause, stem, path, names_at,
                                    steps_at, errors)
                if gt is not None:
                    gtests.append(gt)
    return clauses, gtests


def validate_clause(c, area, where, ident, errors):
    ok = True

    def bad(msg):
        nonlocal ok
        ok = False
        errors.add(where, ident, msg)

    if not isinstance(c, dict):
        bad("a clause must be a table")
        return None
    for key in c:
        if key not in CLAUSE_KEYS_REQUIRED + CLAUSE_KEYS_OPTIONAL:
            bad(f"unknown key {key!r}")
    missing = [k for k in CLAUSE_KEYS_REQUIRED if k not in c]
    for key in missing:
        bad(f"missing required field {key!r}")
    if missing:
        return None
    cid = c["id"]
    if not isinstance(cid, str) or not ID_RE.match(cid):
        bad(f"bad id {cid!r}: expected AREA-SUBJECT-NNN, upper case, "
            f"AREA one of {', '.join(AREAS)}")
    elif area in AREAS and not cid.startswith(area + "-"):
        bad(f"id {cid!r} is not of this file's area {area}")
    for key in ("statement", "cite"):
        if not isinstance(c[key], str) or not c[key].strip():
            bad(f"{key!r} must be a non-empty string")
    if c["level"] not in LEVELS:
        bad(f"level {c['level']!r} is not one of {', '.join(LEVELS)}")
    if c["source"] not in SOURCES:
        bad(f"source {c['source']!r} is not one of {', '.join(SOURCES)}")
    if c["status"] not in STATUSES:
        bad(f"status {c['status']!r} is not one of {', '.join(STATUSES)}")
    try:
        versions = parse_versions(c["versions"])
    except ValueError as e:
        bad(str(e))
        versions = None
    at = c["applies_to"]
    if isinstance(at, str) and at.strip():
        applies = at.strip()
    elif (isinstance(at, list) and at
          and all(isinstance(x, str) and x.strip() for x in at)):
        applies = ", ".join(x.strip() for x in at)
    else:
        bad("'applies_to' must be a non-empty string or list of strings")
        applies = None
    caps = c.get("capabilities", [])
    if not isinstance(caps, list) or not all(isinstance(x, str) for x in caps):
        bad("'capabilities' must be a list of capability names")
        caps = []
    for cap in caps:
        if cap not in CAPABILITIES:
            bad(f"unknown capability {cap!r} (known: "
                f"{', '.join(CAPABILITIES)})")
    cw = c.get("custom_child_watchers")
    if cw is not None and cw not in CUSTOM_WATCHERS:
        bad(f"custom_child_watchers {cw!r} is not one of "
            f"{', '.join(CUSTOM_WATCHERS)}")
    if c["status"] == "deprecated":
        if "since" not in c:
            bad("a deprecated clause needs 'since' (the version that "
                "deprecated it)")
        else:
            try:
                lo, hi = parse_versions(c["since"])
                if lo != hi:
                    raise ValueError(f"'since' must be one version, not "
                                     f"{c['since']!r}")
            except ValueError as e:
                bad(f"since: {e}")
    elif "since" in c:
        bad("'since' is only for deprecated clauses")
    conflict = c.get("conflict")
    if conflict is not None and (not isinstance(conflict, str)
                                 or not ID_RE.match(conflict)):
        bad(f"conflict {conflict!r} is not a clause id")
    if c.get("note") is not None and not isinstance(c.get("note"), str):
        bad("'note' must be a string")
    tests = c.get("test", [])
    if not isinstance(tests, list):
        bad("'test' must be an array of tables ([[clause.test]])")
    if not ok:
        return None
    return {
        "id": cid,
        "area": cid.split("-")[0],
        "level": c["level"],
        "source": c["source"],
        "cite": c["cite"].strip(),
        "statement": " ".join(c["statement"].split()),
        "versions": versions,
        "applies_to": applies,
        "caps": sorted(set(caps)),
        "custom_watchers": cw,
        "status": c["status"],
        "since": c.get("since"),
        "conflict": conflict,
        "tests": [],
    }


def validate_gtest(t, clause, suite, path, names_at, steps_at, errors):
    cid = clause["id"]
    if not isinstance(t, dict):
        errors.add(clause["where"], cid, "a [[clause.test]] must be a table")
        return None
    name = t.get("name")
    where = f"{path}:{names_at[name]}" if name in names_at else clause["where"]
    ok = True

    def bad(msg):
        nonlocal ok
        ok = False
        label = f"test {name}: " if isinstance(name, str) else ""
        errors.add(where, cid, label + msg)

    for key in t:
        if key not in TEST_KEYS_REQUIRED + TEST_KEYS_OPTIONAL:
            bad(f"unknown key {key!r} in [[clause.test]]")
    for key in TEST_KEYS_REQUIRED:
        if key not in t:
            bad(f"[[clause.test]] is missing {key!r}")
    if not ok:
        return None
    if not isinstance(name, str) or not NAME_RE.match(name):
        bad(f"test name {name!r} must be a lower-case C token "
            "([a-z][a-z0-9_]*)")
        return None
    if not isinstance(t["steps"], str) or not t["steps"].strip():
        bad("'steps' must be a non-empty string")
    extra = t.get("clauses", [])
    if not isinstance(extra, list) or not all(isinstance(x, str)
                                              for x in extra):
        bad("'clauses' must be a list of clause ids")
        extra = []
    versions = None
    if "versions" in t:
        try:
            versions = parse_versions(t["versions"])
        except ValueError as e:
            bad(str(e))
    timeout = t.get("timeout", DEFAULT_TIMEOUT)
    if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
            or timeout <= 0):
        bad(f"timeout {timeout!r} must be a positive number of seconds")
    kinds = t.get("kinds", [])
    if not isinstance(kinds, list) or not all(isinstance(x, str)
                                              for x in kinds):
        bad("'kinds' must be a list of watcher kinds")
        kinds = []
    for k in kinds:
        if k not in WATCHER_KINDS:
            bad(f"unknown watcher kind {k!r} (known: "
                f"{', '.join(WATCHER_KINDS)})")
    if not ok:
        return None
    cited = [cid] + [x for x in extra if x != cid]
    return {
        "kind": "generated",
        "suite": suite,
        "name": name,
        "where": where,
        "path": path,
        "owner": cid,
        "clauses": cited,
        "versions_narrow": versions,
        "timeout": float(timeout),
        "extra_caps": [],
        "kinds": set(kinds),
        "steps": t["steps"],
        "steps_line": steps_at.get(name),
    }


# ---------------------------------------------------------------------------
# Hand-written tests
# ---------------------------------------------------------------------------

TAG_RE = re.compile(r"/\*---(.*?)---\*/", re.S)
LH_TEST_RE = re.compile(r"LH_TEST\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
                        r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")
LH_TEST_LINE_RE = re.compile(r"^[ \t]*LH_TEST\s*\(", re.M)
TAG_ITEM_RE = re.compile(r"\s*([A-Za-z_]+)\s*:\s*(\[[^\]]*\]|[^\s\[\]]+)")


def parse_tag(body):
    """'test: x clauses: [A, B] timeout: 5' -> dict; raises ValueError."""
    out = {}
    pos = 0
    body = body.strip()
    while pos < len(body):
        m = TAG_ITEM_RE.match(body, pos)
        if not m:
            raise ValueError(f"cannot read the tag near {body[pos:pos+30]!r} "
                             "(expected 'key: value' or 'key: [a, b]')")
        key, value = m.group(1), m.group(2)
        if key not in TAG_KEYS:
            raise ValueError(f"unknown tag key {key!r} (known: "
                             f"{', '.join(TAG_KEYS)})")
        if key in out:
            raise ValueError(f"tag key {key!r} given twice")
        if value.startswith("["):
            items = [x.strip() for x in value[1:-1].split(",")]
            out[key] = [x for x in items if x]
        else:
            out[key] = value
        pos = m.end()
        while pos < len(body) and body[pos].isspace():
            pos += 1
    return out


def load_cases(case_dir, errors):
    tests = []
    if not os.path.isdir(case_dir):
        return tests
    for fname in sorted(os.listdir(case_dir)):
        if not fname.endswith(".c"):
            continue
        path = os.path.join(case_dir, fname)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        tagged_at = set()
        for m in TAG_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            where = f"{path}:{line}"
            try:
                tag = parse_tag(m.group(1))
            except ValueError as e:
                errors.add(where, "tag", str(e))
                continue
            name = tag.get("test")
            ident = f"test {name}" if isinstance(name, str) else "tag"
            after = text[m.end():]
            stripped = after.lstrip()
            mm = LH_TEST_RE.match(stripped)
            if not mm:
                errors.add(where, ident, "a metadata tag must sit directly "
                           "above an LH_TEST(suite, name)")
                continue
            macro_at = m.end() + (len(after) - len(stripped))
            tagged_at.add(macro_at)
            suite, mname = mm.group(1), mm.group(2)
            ok = True
            if not isinstance(name, str):
                errors.add(where, ident, "the tag has no 'test: NAME'")
                ok = False
            elif name != mname:
                errors.add(where, ident, f"the tag says test {name!r} but "
                           f"the macro below is LH_TEST({suite}, {mname})")
                ok = False
            if not NAME_RE.match(mname) or not NAME_RE.match(suite):
                errors.add(where, ident, "suite and test names must be "
                           "lower-case C tokens")
                ok = False
            clauses = tag.get("clauses")
            if not isinstance(clauses, list) or not clauses:
                errors.add(where, ident, "the tag needs 'clauses: [ID, ...]' "
                           "with at least one clause")
                ok = False
            caps = tag.get("caps", [])
            if not isinstance(caps, list):
                errors.add(where, ident, "'caps' must be a list")
                ok = False
                caps = []
            for cap in caps:
                if cap not in CAPABILITIES:
                    errors.add(where, ident, f"unknown capability {cap!r}")
                    ok = False
            kinds = tag.get("kinds", [])
            if not isinstance(kinds, list):
                errors.add(where, ident, "'kinds' must be a list")
                ok = False
                kinds = []
            for k in kinds:
                if k not in WATCHER_KINDS:
                    errors.add(where, ident, f"unknown watcher kind {k!r} "
                               f"(known: {', '.join(WATCHER_KINDS)})")
                    ok = False
            versions = None
            if "versions" in tag:
                try:
                    versions = parse_versions(tag["versions"])
                except ValueError as e:
                    errors.add(where, ident, str(e))
                    ok = False
            timeout = DEFAULT_TIMEOUT
            if "timeout" in tag:
                try:
                    timeout = float(tag["timeout"])
                    if timeout <= 0:
                        raise ValueError
                except ValueError:
                    errors.add(where, ident, f"timeout {tag['timeout']!r} "
                               "must be a positive number")
                    ok = False
            if not ok:
                continue
            tests.append({
                "kind": "hand-written",
                "suite": suite,
                "name": mname,
                "where": where,
                "path": path,
                "owner": None,
                "clauses": list(dict.fromkeys(clauses)),
                "versions_narrow": versions,
                "timeout": timeout,
                "extra_caps": caps,
                "kinds": set(kinds),
            })
        for m in LH_TEST_LINE_RE.finditer(text):
            start = text.index("LH_TEST", m.start())
            if start not in tagged_at:
                line = text.count("\n", 0, start) + 1
                mm = LH_TEST_RE.match(text, start)
                ident = f"test {mm.group(2)}" if mm else "LH_TEST"
                errors.add(f"{path}:{line}", ident, "LH_TEST without a "
                           "metadata tag /*--- test: ... clauses: [...] ---*/ "
                           "directly above it")
    return tests


# ---------------------------------------------------------------------------
# Cross-checks
# ---------------------------------------------------------------------------

def cross_check(clauses, tests, errors):
    names = {}
    for t in tests:
        key = t["name"]
        if key in names:
            errors.add(t["where"], f"test {key}", "duplicate test name "
                       f"(also at {names[key]['where']})")
            continue
        names[key] = t
    for t in tests:
        lo, hi = MIN_MINOR, MAX_MINOR
        caps = set(t["extra_caps"])
        cw = set()
        good = True
        for cid in t["clauses"]:
            c = clauses.get(cid)
            if c is None:
                errors.add(t["where"], cid, f"cited by test {t['name']} but "
                           "no such clause exists")
                good = False
                continue
            if c["status"] == "withdrawn":
                errors.add(t["where"], cid, f"cited by test {t['name']} but "
                           "the clause is withdrawn")
                good = False
                continue
            lo, hi = max(lo, c["versions"][0]), min(hi, c["versions"][1])
            caps.update(c["caps"])
            if c["custom_watchers"]:
                cw.add(c["custom_watchers"])
        if not good:
            continue
        if lo > hi:
            errors.add(t["where"], t["clauses"][0], f"test {t['name']}: its "
                       "clauses' version ranges do not intersect")
            continue
        if t["versions_narrow"]:
            nlo, nhi = t["versions_narrow"]
            if nlo < lo or nhi > hi:
                errors.add(t["where"], t["clauses"][0], f"test {t['name']}: "
                           f"versions {fmt_versions((nlo, nhi))} are not "
                           f"inside its clauses' {fmt_versions((lo, hi))}")
                continue
            lo, hi = nlo, nhi
        if len(cw) > 1:
            errors.add(t["where"], t["clauses"][0], f"test {t['name']}: its "
                       "clauses require different custom_child_watchers "
                       f"values ({', '.join(sorted(cw))})")
            continue
        t["versions"] = (lo, hi)
        t["caps"] = sorted(caps)
        t["custom_watchers"] = cw.pop() if cw else None
        for cid in t["clauses"]:
            clauses[cid]["tests"].append(t)
    for cid, c in clauses.items():
        if c["conflict"]:
            other = clauses.get(c["conflict"])
            if other is None:
                errors.add(c["where"], cid, f"conflict names {c['conflict']}"
                           ", which does not exist")
            elif other["conflict"] != cid:
                errors.add(c["where"], cid, f"conflict names {c['conflict']}"
                           f", but {c['conflict']} does not name {cid} back")
            elif other["source"] == c["source"]:
                errors.add(c["where"], cid, f"conflict with {c['conflict']}: "
                           "one side must be 'doc' and the other 'cpython'")
        if c["status"] != "withdrawn" and not c["tests"]:
            errors.add(c["where"], cid, "no test covers this clause (add a "
                       "[[clause.test]] or tag a hand-written test with it)")


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def profile_c(minor):
    return f"LSPEC_PROFILE(3, {minor})"


def kinds_c(kinds):
    return " | ".join(f"LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_{k})"
                      for k in sorted(kinds)) if kinds else "0"


def caps_c(caps):
    return " | ".join(CAPABILITIES[c] for c in caps) if caps else "0"


def emit_registry(clauses, tests):
    out = ["/* registry.c - generated by conformance/gen/gen.py from "
           "spec/clauses and",
           " * conformance/cases.  Do not edit. */",
           "#include <stddef.h>", "#include <stdint.h>", "",
           "#include <loopspec/abi.h>", "", '#include "registry.h"', "",
           "const struct lh_clause lh_clauses[] = {"]
    for cid in sorted(clauses):
        c = clauses[cid]
        out.append(
            f"  {{{c_string(cid)}, {c_string(c['area'])}, "
            f"{c_string(c['level'])}, {c_string(c['source'])},\n"
            f"   {c_string(c['cite'])},\n"
            f"   {c_string(c['statement'])},\n"
            f"   {profile_c(c['versions'][0])}, {profile_c(c['versions'][1])}, "
            f"{c_string(c['applies_to'])},\n"
            f"   {caps_c(c['caps'])}, {c_string(c['status'])}, "
            f"{c_string(c['conflict']) if c['conflict'] else 'NULL'}}},")
    if not clauses:
        out.append("  {0}")
    out.append("};")
    out.append(f"const size_t lh_nclauses = {len(clauses)};")
    out.append("")
    for i, t in enumerate(tests):
        ids = ", ".join(c_string(x) for x in t["clauses"])
        out.append(f"static const char *const lh_test_clauses_{i}[] = "
                   f"{{{ids}}};")
    out.append("")
    out.append("const struct lh_test lh_tests[] = {")
    for i, t in enumerate(tests):
        cw = CUSTOM_WATCHERS[t["custom_watchers"]] if t["custom_watchers"] \
            else "0"
        out.append(
            f"  {{{c_string(t['suite'])}, {c_string(t['name'])}, "
            f"lh_test_clauses_{i}, {len(t['clauses'])},\n"
            f"   {profile_c(t['versions'][0])}, {profile_c(t['versions'][1])}, "
            f"{caps_c(t['caps'])}, {cw}, {t['timeout']!r},\n"
            f"   {kinds_c(t['kinds'])}}},")
    if not tests:
        out.append("  {0}")
    out.append("};")
    out.append(f"const size_t lh_ntests = {len(tests)};")
    return "\n".join(out) + "\n"


def emit_meta_header(tests):
    out = ["/* lh_cases_meta.h - generated by conformance/gen/gen.py: the "
           "timeouts of the",
           " * hand-written tests (LH_TEST), from their metadata tags.  "
           "Do not edit. */",
           "#ifndef LH_CASES_META_H", "#define LH_CASES_META_H", ""]
    for t in tests:
        if t["kind"] == "hand-written":
            out.append(f"#define LH_META_TIMEOUT_{t['suite']}_{t['name']} "
                       f"{t['timeout']!r}")
    out += ["", "#endif"]
    return "\n".join(out) + "\n"


def emit_manifest(clauses, tests):
    data = {
        "tests": {},
        "clauses": {},
    }
    for t in tests:
        data["tests"][f"{t['suite']}::{t['name']}"] = {
            "suite": t["suite"],
            "name": t["name"],
            "kind": t["kind"],
            "file": t["where"],
            "clauses": t["clauses"],
            "versions": fmt_versions(t["versions"]),
            "caps": t["caps"],
            "custom_child_watchers": t["custom_watchers"],
            "timeout": t["timeout"],
            "watcher_kinds": sorted(t["kinds"]),
        }
    for cid in sorted(clauses):
        c = clauses[cid]
        data["clauses"][cid] = {
            "file": c["where"],
            "level": c["level"],
            "source": c["source"],
            "status": c["status"],
            "versions": fmt_versions(c["versions"]),
            "caps": c["caps"],
            "conflict": c["conflict"],
            "tests": [f"{t['suite']}::{t['name']}" for t in c["tests"]],
        }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_if_changed(path, text):
    """Writes `text` unless the file already holds it; then only touches it,
    so that the build sees the output as newer than its inputs."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                os.utime(path)
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clauses", required=True, help="spec/clauses")
    ap.add_argument("--cases", required=True, help="conformance/cases")
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--check", action="store_true",
                    help="validate only, write nothing")
    args = ap.parse_args(argv)
    if not args.check and not args.out:
        ap.error("--out is required unless --check is given")

    errors = Errors()
    if not os.path.isdir(args.clauses):
        print(f"{args.clauses}: -: not a directory", file=sys.stderr)
        return 1
    clauses, gtests = load_clauses(args.clauses, errors)
    htests = load_cases(args.cases, errors)
    tests = gtests + htests
    cross_check(clauses, tests, errors)

    compiled = []
    for t in gtests:
        if "versions" not in t:
            continue  # already reported
        try:
            compiled.append(compile_steps(t, clauses))
            t["kinds"] |= t.pop("inferred_kinds", set())
        except DslError as e:
            line = (t["steps_line"] + e.line - 1) if t["steps_line"] else None
            where = f"{t['path']}:{line}" if line else t["where"]
            errors.add(where, t["owner"], f"test {t['name']}: step line "
                       f"{e.line}: {e.msg}")

    if errors.items:
        for e in errors.items:
            print(e, file=sys.stderr)
        print(f"gen.py: {len(errors.items)} error(s)", file=sys.stderr)
        return 1
    tests = [t for t in tests if "versions" in t]
    tests.sort(key=lambda t: (t["suite"], t["name"]))
    if args.check:
        print(f"gen.py: ok: {len(clauses)} clauses, {len(gtests)} generated "
              f"and {len(htests)} hand-written tests")
        return 0
    os.makedirs(args.out, exist_ok=True)
    header = ("/* tests_generated.c - generated by conformance/gen/gen.py "
              "from the step lists\n * in spec/clauses (*.toml files).  Do not edit; "
              "the language is documented in\n * spec/clauses/README.md. */\n"
              "#include <signal.h>\n#include <stddef.h>\n\n"
              "#include <loopspec/abi.h>\n\n#include \"harness.h\"\n")
    write_if_changed(os.path.join(args.out, "tests_generated.c"),
                     header + "".join(compiled))
    write_if_changed(os.path.join(args.out, "registry.c"),
                     emit_registry(clauses, tests))
    write_if_changed(os.path.join(args.out, "lh_cases_meta.h"),
                     emit_meta_header(tests))
    write_if_changed(os.path.join(args.out, "manifest.json"),
                     emit_manifest(clauses, tests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
