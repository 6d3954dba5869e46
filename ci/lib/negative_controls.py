#!/usr/bin/env python3
"""negative_controls.py - the negative controls of the conformance suite.

Builds the reference once per planted bug (reference/src/plant.h, selected
with the CMake cache variable LSPEC_PLANT), runs loopspec-conform on each
planted shared object, and compares the tests that FAIL with what the
manifest (ci/negative-controls.toml) says must fail.  A plant is caught when
every test its entry expects fails and nothing else fails, except tests the
entry lists as documented extras.  Prints a kill table and the kill rate
(caught / planted); exits 1 when a plant is not caught, 2 on a usage error,
a bad manifest or a broken set-up (the unplanted reference must pass).

ci/negative-controls calls this after building the default preset; it can
also be run directly:

    negative_controls.py --source TOP --conform B/conformance/loopspec-conform \\
        --reference B/reference/libloopspec-reference.so --work DIR

Only the Python 3.11 standard library is used.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib

AREAS = ("POL", "LOOP", "CW", "SUB")
KINDS = ("THREADED", "MULTILOOP", "SAFE", "FAST", "PIDFD")
# Results that count as the suite noticing something.
BAD = {"FAIL", "CRASH", "TIMEOUT", "XPASS"}
NAME_RE = re.compile(r"^[A-Z]+_[A-Z0-9]+_[0-9]{3}[A-Z0-9_]*$")
TEST_RE = re.compile(r"^[a-z0-9_]+::[a-z][a-z0-9_]*$")


class SetupError(Exception):
    """The set-up is broken: exit 2."""


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------
# The manifest.
# --------------------------------------------------------------------------

def plant_names(plant_h):
    """The bugs plant.h declares, in order (LSPEC_PLANT_NONE left out)."""
    names = []
    with open(plant_h, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^  LSPEC_PLANT_([A-Z0-9_]+),?$", line)
            if m and m.group(1) != "NONE":
                names.append(m.group(1))
    return names


def clause_ids(clauses_dir):
    ids = set()
    for name in sorted(os.listdir(clauses_dir)):
        if name.endswith(".toml"):
            with open(os.path.join(clauses_dir, name), "rb") as f:
                for c in tomllib.load(f).get("clause", []):
                    ids.add(c["id"])
    return ids


def load_manifest(path, declared, known_clauses):
    """Reads and checks the manifest; returns its plants in file order."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SetupError(f"{path}: {e}")
    errors = []
    plants = data.get("plant", [])
    keys = {"name", "clauses", "description", "profile", "watcher",
            "expect", "extra", "note"}
    seen = set()
    for i, p in enumerate(plants):
        where = f"{path}: plant #{i + 1} ({p.get('name', '?')})"
        for k in p:
            if k not in keys:
                errors.append(f"{where}: unknown key '{k}'")
        name = p.get("name", "")
        if not NAME_RE.match(name):
            errors.append(f"{where}: name must look like AREA_SUBJECT_NNN")
        if name in seen:
            errors.append(f"{where}: listed twice")
        seen.add(name)
        if name not in declared:
            errors.append(f"{where}: not declared in reference/src/plant.h")
        if name.split("_")[0] not in AREAS:
            errors.append(f"{where}: area must be one of {', '.join(AREAS)}")
        clauses = p.get("clauses", [])
        if not clauses:
            errors.append(f"{where}: 'clauses' is empty")
        for c in clauses:
            if c not in known_clauses:
                errors.append(f"{where}: unknown clause {c}")
        if clauses and clauses[0].replace("-", "_") != name:
            errors.append(f"{where}: named after {clauses[0]}, its first "
                          f"clause, it would be {clauses[0].replace('-', '_')}")
        if not p.get("description"):
            errors.append(f"{where}: 'description' is missing")
        if p.get("profile", "3.12") not in ("3.8", "3.9", "3.10", "3.11",
                                            "3.12"):
            errors.append(f"{where}: bad profile {p.get('profile')}")
        if p.get("watcher") is not None and p["watcher"] not in KINDS:
            errors.append(f"{where}: watcher must be one of {', '.join(KINDS)}")
        expect = p.get("expect", [])
        if not expect:
            errors.append(f"{where}: 'expect' is empty: a plant must make "
                          f"some test fail")
        extras = []
        for j, x in enumerate(p.get("extra", [])):
            if not x.get("reason") or not x.get("tests"):
                errors.append(f"{where}: extra #{j + 1} needs tests and a "
                              f"reason")
            extras += x.get("tests", [])
        for t in expect + extras:
            if not TEST_RE.match(t):
                errors.append(f"{where}: '{t}' is not a test name "
                              f"(suite::name)")
        if set(expect) & set(extras):
            errors.append(f"{where}: a test is both expected and an extra")
    for name in declared:
        if name not in seen:
            errors.append(f"{path}: {name} is declared in plant.h but not "
                          f"described here")
    areas = {p.get("name", "").split("_")[0] for p in plants}
    for a in AREAS:
        if a not in areas:
            errors.append(f"{path}: no plant in clause area {a}")
    kinds = {p.get("watcher") for p in plants}
    for k in KINDS:
        if k not in kinds:
            errors.append(f"{path}: no plant for the {k} watcher")
    if errors:
        raise SetupError("\n".join(errors))
    return plants


# --------------------------------------------------------------------------
# Building the planted references.
# --------------------------------------------------------------------------

def run_logged(cmd, logpath):
    with open(logpath, "a", encoding="utf-8") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        r = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    return r.returncode


def build_plant(args, name):
    """Builds the reference with bug `name` in one reconfigured tree and
    copies the library out; returns its path."""
    tree = os.path.join(args.work, "plant-build")
    outdir = os.path.join(args.work, "plants")
    os.makedirs(outdir, exist_ok=True)
    logpath = os.path.join(args.work, "plant-build.log")
    t0 = time.monotonic()
    cfg = ["cmake", "-S", args.source, "-B", tree, "-G", "Ninja",
           "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DLSPEC_WERROR=ON",
           "-DLSPEC_BUILD_TESTS=OFF", f"-DLSPEC_PLANT={name}"]
    if run_logged(cfg, logpath) != 0:
        raise SetupError(f"configuring plant {name} failed: see {logpath}")
    if run_logged(["cmake", "--build", tree, "-j", str(args.build_jobs),
                   "--target", "loopspec_reference"], logpath) != 0:
        raise SetupError(f"building plant {name} failed: see {logpath}")
    src = os.path.realpath(
        os.path.join(tree, "reference", "libloopspec-reference.so"))
    dst = os.path.join(outdir, f"libloopspec_reference_plant_{name}.so")
    shutil.copyfile(src, dst)
    with open(dst, "rb") as f:
        if f"+plant:{name}\0".encode() not in f.read():
            raise SetupError(f"{dst} does not say it plants {name}")
    log(f"  built {name:<22} {time.monotonic() - t0:5.1f} s")
    return dst


# --------------------------------------------------------------------------
# Running the suite.
# --------------------------------------------------------------------------

def run_suite(args, impl, profile, report, jobs):
    """Runs loopspec-conform; returns (report dict, seconds)."""
    cmd = [args.conform, "--impl", impl, "--profile", profile,
           "-j", str(jobs), "--report", f"json:{report}"]
    if args.filter:
        cmd += ["--filter", args.filter]
    t0 = time.monotonic()
    with open(report + ".txt", "w", encoding="utf-8") as out:
        r = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    secs = time.monotonic() - t0
    if r.returncode not in (0, 1):
        raise SetupError(f"loopspec-conform exited {r.returncode} on {impl}: "
                         f"see {report}.txt")
    with open(report, encoding="utf-8") as f:
        return json.load(f), secs


def failing_tests(report):
    """Tests with a bad result under a counted clause (the other side of
    a page-vs-CPython conflict is information, and fails by design)."""
    bad = set()
    for c in report["clauses"]:
        if not c.get("counted", True):
            continue
        for t in c["tests"]:
            if t["result"] in BAD:
                bad.add(t["name"])
    return bad


def all_tests(report):
    return {t["name"] for c in report["clauses"] for t in c["tests"]}


def judge(plant, failed):
    expect = set(plant.get("expect", []))
    extras = {t for x in plant.get("extra", []) for t in x["tests"]}
    missing = expect - failed
    unexpected = failed - expect - extras
    if not failed:
        verdict = "UNNOTICED"
    elif not (expect & failed):
        verdict = "UNNOTICED"  # something else broke, not its clause
    elif missing:
        verdict = "PARTLY"
    elif unexpected:
        verdict = "EXTRA"
    else:
        verdict = "CAUGHT"
    return verdict, missing, unexpected


# --------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Negative controls: plant each known bug in the "
                    "reference and check that the suite catches it.")
    ap.add_argument("--source", required=True, help="the source tree")
    ap.add_argument("--conform", required=True, help="loopspec-conform")
    ap.add_argument("--reference", required=True,
                    help="the unplanted libloopspec-reference.so (control)")
    ap.add_argument("--work", required=True,
                    help="a directory for the plant build and the reports")
    ap.add_argument("--manifest", help="default: SOURCE/ci/negative-controls.toml")
    ap.add_argument("--plant", action="append", default=[],
                    help="only this plant (repeatable)")
    ap.add_argument("-j", "--jobs", type=int, default=4,
                    help="tests in parallel per run (default 4)")
    ap.add_argument("--parallel", type=int, default=3,
                    help="runs of the suite side by side (default 3: the "
                         "tests mostly wait)")
    ap.add_argument("--build-jobs", type=int, default=2)
    ap.add_argument("--filter", help="pass --filter GLOB to every run "
                                     "(failures outside it are not seen)")
    ap.add_argument("--suggest", action="store_true",
                    help="print each plant's failing tests as TOML")
    return ap.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    t_start = time.monotonic()
    args.source = os.path.abspath(args.source)
    args.work = os.path.abspath(args.work)
    manifest = args.manifest or os.path.join(args.source, "ci",
                                             "negative-controls.toml")
    os.makedirs(args.work, exist_ok=True)
    try:
        declared = plant_names(os.path.join(args.source, "reference", "src",
                                            "plant.h"))
        plants = load_manifest(manifest, declared,
                               clause_ids(os.path.join(args.source, "spec",
                                                       "clauses")))
        if args.plant:
            unknown = set(args.plant) - {p["name"] for p in plants}
            if unknown:
                raise SetupError(f"no such plant: {', '.join(sorted(unknown))}")
            plants = [p for p in plants if p["name"] in args.plant]

        # The control (the unplanted reference, with the same options: it
        # must pass) and every plant's run, a few runs at a time: the tests
        # mostly wait, so runs side by side overlap their slow tests, and
        # each plant is built while the runs before it go on.
        profiles = sorted({p.get("profile", "3.12") for p in plants})
        jobs = [("control", None, prof) for prof in profiles] + \
               [("plant", p, p.get("profile", "3.12")) for p in plants]
        built = {}

        def one(job):
            what, p, prof = job
            if what == "control":
                return run_suite(args, os.path.abspath(args.reference), prof,
                                 os.path.join(args.work,
                                              f"control-{prof}.json"),
                                 args.jobs)
            return run_suite(args, built[p["name"]], prof,
                             os.path.join(args.work, f"{p['name']}.json"),
                             args.jobs)

        log(f"negative controls: {len(plants)} planted references, "
            f"{len(jobs)} runs of the suite, {args.parallel} at a time, "
            f"-j{args.jobs} each")
        t0 = time.monotonic()
        t_build = 0.0
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            futures = []
            for job in jobs:
                if job[0] == "plant":
                    tb = time.monotonic()
                    built[job[1]["name"]] = build_plant(args, job[1]["name"])
                    t_build += time.monotonic() - tb
                futures.append(pool.submit(one, job))
            results = [f.result() for f in futures]
        t_runs = time.monotonic() - t0

        known = set()
        for (what, p, prof), (rep, secs) in zip(jobs, results):
            if what != "control":
                continue
            bad = failing_tests(rep)
            log(f"  control (unplanted, profile {prof}): {len(bad)} failing, "
                f"{secs:.1f} s")
            if bad:
                raise SetupError("the unplanted reference fails "
                                 f"{', '.join(sorted(bad))}: the controls "
                                 "would mean nothing")
            known |= all_tests(rep)
        for p in plants:
            for t in p["expect"] + [t for x in p.get("extra", [])
                                    for t in x["tests"]]:
                if t not in known and not args.filter:
                    raise SetupError(f"{manifest}: {p['name']}: no test "
                                     f"{t} in the suite")

        rows = []
        for (what, p, prof), (rep, secs) in zip(jobs, results):
            if what != "plant":
                continue
            name = p["name"]
            version = rep["implementation"]["version"]
            if not version.endswith(f"+plant:{name}"):
                raise SetupError(f"{built[name]} reports version {version}")
            failed = failing_tests(rep)
            verdict, missing, unexpected = judge(p, failed)
            rerun = False
            if verdict != "CAUGHT":
                # Once more, alone and fewer at a time: a loaded machine can
                # time out a test that is not the plant's.
                rep, more = run_suite(args, built[name], prof,
                                      os.path.join(args.work,
                                                   f"{name}.rerun.json"), 2)
                secs += more
                t_runs += more
                failed = failing_tests(rep)
                verdict, missing, unexpected = judge(p, failed)
                rerun = True
            rows.append((p, verdict, failed, missing, unexpected, secs, rerun))
            log(f"  {name:<22} {verdict:<9} {len(failed):3d} failing "
                f"{secs:5.1f} s{'  (run twice)' if rerun else ''}")
            if args.suggest:
                print(f"# {name}: failing with profile {prof}")
                print("expect = [\n" + "".join(f'  "{t}",\n'
                                              for t in sorted(failed)) + "]")
    except SetupError as e:
        print(f"negative-controls: {e}", file=sys.stderr)
        return 2

    # The kill table.
    print()
    print(f"{'plant':<22} {'clauses':<34} {'expected':>8} {'failed':>6}  "
          f"verdict")
    for p, verdict, failed, missing, unexpected, secs, rerun in rows:
        print(f"{p['name']:<22} {', '.join(p['clauses'])[:34]:<34} "
              f"{len(p['expect']):>8} {len(failed):>6}  {verdict}")
        for t in sorted(missing):
            print(f"    expected to fail but passed: {t}")
        for t in sorted(unexpected):
            print(f"    failed but not expected:     {t}")
        if verdict == "UNNOTICED":
            print(f"    planted bug {p['name']} went unnoticed")
        elif verdict == "PARTLY":
            print(f"    planted bug {p['name']} was partly noticed")
    caught = sum(1 for r in rows if r[1] == "CAUGHT")
    total = time.monotonic() - t_start
    print()
    print(f"builds {t_build:.0f} s (alongside the runs), builds and runs "
          f"{t_runs:.0f} s, total {total:.0f} s")
    with open(os.path.join(args.work, "summary.json"), "w",
              encoding="utf-8") as f:
        json.dump({"caught": caught, "planted": len(rows),
                   "seconds": round(total, 1),
                   "plants": {r[0]["name"]: {
                       "verdict": r[1], "failed": sorted(r[2]),
                       "missing": sorted(r[3]), "unexpected": sorted(r[4]),
                       "seconds": round(r[5], 1)} for r in rows}},
                  f, indent=1)
    rate = 100.0 * caught / len(rows) if rows else 0.0
    print(f"negative controls: {caught}/{len(rows)} planted bugs caught "
          f"(kill rate {rate:.0f}%)")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
