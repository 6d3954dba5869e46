#!/usr/bin/env python3
"""check_workflow.py - checks ci/github-workflow.yml: valid YAML, the shape
of a GitHub Actions workflow, and the steps the README promises (ci/deps,
loopspec-conform --impl --expect --report junit:PATH, the JUnit report
uploaded with actions/upload-artifact even when the run fails), with its
defaults pointing at the example adapter.

Usage: check_workflow.py WORKFLOW EXAMPLE_DIR
       check_workflow.py --selftest WORKFLOW EXAMPLE_DIR
(--selftest: damaged copies of the workflow must be refused.)
Needs PyYAML (Debian: python3-yaml; ci/deps installs it).
"""
import os
import re
import sys

import yaml


def problems_of(text, example_dir):
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [f"not YAML: {e}"]
    if not isinstance(doc, dict):
        return ["not a mapping"]
    out = []
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    if not isinstance(on, dict) or not {"push", "pull_request"} <= set(on):
        out.append("'on' does not name push and pull_request")
    env = doc.get("env") or {}
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or len(jobs) != 1:
        return out + ["not exactly one job"]
    job = next(iter(jobs.values()))
    if "runs-on" not in job:
        out.append("the job has no runs-on")
    steps = job.get("steps")
    if not isinstance(steps, list) or not steps:
        return out + ["the job has no steps"]
    runs = []
    upload = None
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or "name" not in step:
            out.append(f"step {i + 1} has no name")
            continue
        if ("uses" in step) == ("run" in step):
            out.append(f"step {step['name']!r}: needs one of uses and run")
            continue
        if "uses" in step:
            if not re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]):
                out.append(f"step {step['name']!r}: {step['uses']!r} is not "
                           f"owner/action@vN")
            if step["uses"].startswith("actions/upload-artifact@"):
                upload = step
        elif not isinstance(step["run"], str):
            out.append(f"step {step['name']!r}: run is not a script")
        else:
            runs.append(step["run"])
            for var in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", step["run"]):
                if var not in env and var not in ("PWD", "HOME", "PATH"):
                    out.append(f"step {step['name']!r} uses ${var}, which "
                               f"env does not set")
    script = "\n".join(runs)
    if not re.search(r"ci/deps\b", script):
        out.append("no step runs loopspec's ci/deps")
    conform = re.search(r"loopspec-conform\b(.*?)(?:\n\s*\n|$)",
                        script.replace("\\\n", " "), re.S)
    junit = None
    if not conform:
        out.append("no step runs loopspec-conform")
    else:
        args = conform.group(1)
        for opt in ("--impl", "--expect"):
            if opt not in args:
                out.append(f"loopspec-conform runs without {opt}")
        m = re.search(r"--report junit:(\S+)", args)
        if not m:
            out.append("loopspec-conform writes no JUnit report")
        else:
            junit = m.group(1)
    if upload is None:
        out.append("nothing is uploaded with actions/upload-artifact")
    else:
        path = str((upload.get("with") or {}).get("path", ""))
        if junit and not (junit == path or junit.startswith(path.rstrip("/") + "/")):
            out.append(f"the upload's path {path!r} does not hold {junit!r}")
        if "if" not in upload:
            out.append("the upload has no 'if': it would be skipped when the "
                       "run fails")
    # The defaults are the example's, so that a copy works as it stands.
    if env.get("ADAPTER_FILE") != "libloopspec_example.so":
        out.append("env ADAPTER_FILE is not the example's libloopspec_example.so")
    exp = os.path.basename(str(env.get("EXPECTATIONS", "")))
    if not exp or not os.path.isfile(os.path.join(example_dir, exp)):
        out.append(f"env EXPECTATIONS names {exp!r}, which the example "
                   f"directory does not have")
    return out


def damaged(text):
    yield "not YAML", text + "\n  : [\n"
    yield "no upload", re.sub(r"uses: actions/upload-artifact@v\d+",
                              "run: echo no upload", text)
    yield "no JUnit report", text.replace("--report junit:", "--report json:x")
    yield "no ci/deps", text.replace("ci/deps", "ci/build")
    yield "an unset variable", text.replace('"$FOLLOW"', '"$FOLOW"')
    yield "an upload that skips failed runs", re.sub(
        r"\n\s*if: \$\{\{ !cancelled\(\) \}\}", "", text)


def main(argv):
    selftest = argv[:1] == ["--selftest"]
    if selftest:
        argv = argv[1:]
    if len(argv) != 2:
        print(__doc__)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        text = f.read()
    problems = problems_of(text, argv[1])
    if selftest and not problems:
        for what, bad in damaged(text):
            found = problems_of(bad, argv[1])
            print(f"damaged ({what}): "
                  f"{'refused: ' + found[0] if found else 'ACCEPTED'}")
            if not found:
                problems.append(f"a damaged workflow ({what}) passes")
    for p in problems:
        print("FAILED: " + p)
    if not problems:
        print("ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
