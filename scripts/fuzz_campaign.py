"""Long fuzz runs of the C library's parsers: each target of tests/fuzz/ for SECONDS under ASan + UBSan.

    python scripts/fuzz_campaign.py [--seconds 600] [--jobs 2] [--out results/fuzz.json]

Builds the targets with ``tests/fuzz/run.sh`` (which also runs each for one second), then runs
every target for ``--seconds`` on its seed corpus, ``--jobs`` at a time, and writes one entry per
target: executions, seconds, exit status, commit, ``open_findings``, and the report and crashing
input's size when one was found (the input is kept under ``build/fuzz/<target>/crash-input``).
Targets not run keep their last entry; a clean run after a finding moves that finding to
``findings_fixed``. The driver is the small mutation driver of tests/fuzz/driver.cpp (g++ has no
libFuzzer): random, not coverage-guided, and the result file says so. ``make test`` runs the same
targets for 10 s each.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "fuzz"
SEEDS = {"json": "json", "tokenizer": "text", "manifest": "manifest", "jsonl": "jsonl"}
# the library files each target is about (coverage is reported over these)
COVERED = {"json": ["json.cpp"], "tokenizer": ["tokenizer.cpp", "unicode.cpp", "encode.cpp"],
           "manifest": ["manifest.cpp"], "jsonl": ["cli/jsonl.cpp", "json.cpp"]}
LIB = ["json.cpp", "unicode.cpp", "tokenizer.cpp", "manifest.cpp", "util.cpp", "sha256.cpp", "encode.cpp",
       "cli/jsonl.cpp"]


def line_coverage(target: str, seconds: int, env: dict) -> dict:
    """Line coverage (gcov) of ``COVERED[target]`` after the same driver runs ``seconds`` on the seeds.

    A separate build with ``--coverage`` and no sanitizers; the driver is deterministic, so this
    replays the first ``executions`` inputs of the sanitizer run's sequence (a lower bound on what
    the whole run covered).
    """
    import shutil
    import tempfile

    cxx = env.get("CXX", "g++")
    gcov = shutil.which("gcov")
    if gcov is None:
        return {"error": "gcov not found"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        objs = []
        for src in [str(FUZZ / f"fuzz_{target}.cpp"), str(FUZZ / "driver.cpp"), *(str(ROOT / "src" / f) for f in LIB)]:
            obj = work / (Path(src).stem + ".o")
            subprocess.run([cxx, "-std=c++17", "-O0", "--coverage", "-I", str(ROOT / "src"), "-I", str(ROOT / "include"),
                            "-c", src, "-o", str(obj)], check=True, cwd=work)
            objs.append(str(obj))
        subprocess.run([cxx, "--coverage", *objs, "-o", str(work / "fuzz")], check=True, cwd=work)
        seeds = sorted(glob.glob(str(FUZZ / "seeds" / SEEDS[target] / "*")))
        replay = subprocess.run([str(work / "fuzz"), str(seconds), *seeds], cwd=work, env=env, capture_output=True,
                                text=True, check=True)
        runs = re.search(r"(\d+) runs in", replay.stdout)
        files = {}
        for rel in COVERED[target]:
            out = subprocess.run([gcov, "-n", "-o", str(work), str(ROOT / "src" / rel)], cwd=work,
                                 capture_output=True, text=True).stdout
            match = re.search(r"File '[^']*" + re.escape(Path(rel).name) + r"'\nLines executed:([\d.]+)% of (\d+)", out)
            if match:
                files[rel] = {"lines": int(match.group(2)), "executed": round(float(match.group(1)) / 100 * int(match.group(2)))}
    total = sum(f["lines"] for f in files.values())
    return {"seconds": seconds, "executions": int(runs.group(1)) if runs else None, "files": files,
            "line_coverage": round(sum(f["executed"] for f in files.values()) / total, 4) if total else None}


def tokenizer_dir() -> str:
    from models.base import default_base_model   # the project is installed (editable): no path edits
    return default_base_model()


def run_target(target: str, seconds: int, build: Path, env: dict) -> dict:
    work = build / target
    work.mkdir(parents=True, exist_ok=True)
    (work / "crash-input").unlink(missing_ok=True)
    seeds = sorted(glob.glob(str(FUZZ / "seeds" / SEEDS[target] / "*")))
    start = time.perf_counter()
    proc = subprocess.run([str(build / f"fuzz_{target}"), str(seconds), *seeds], cwd=work, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    match = re.search(r"(\d+) runs in", proc.stdout)
    crash = work / "crash-input"
    entry = {"target": target, "seconds": round(elapsed, 1), "executions": int(match.group(1)) if match else None,
             "seeds": len(seeds), "exit_status": proc.returncode, "open_findings": 0 if proc.returncode == 0 else 1}
    if proc.returncode != 0:
        entry["report_tail"] = (proc.stdout + proc.stderr)[-3000:]
        entry["crash_input_bytes"] = crash.stat().st_size if crash.is_file() else None
    print(f"fuzz_{target}: {entry['executions']} executions in {elapsed:.0f} s, exit {proc.returncode}", flush=True)
    return entry


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--targets", default=",".join(SEEDS))
    parser.add_argument("--coverage-seconds", type=int, default=60,
                        help="driver time of the gcov-instrumented replay that measures line coverage (0: skip)")
    parser.add_argument("--coverage-only", action="store_true",
                        help="only (re)measure line coverage into the existing --out entries")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "fuzz.json")
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    unknown = sorted(set(targets) - set(SEEDS))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {list(SEEDS)}")
    if args.coverage_only:   # measure coverage for the targets' existing entries, run nothing else
        result = json.loads(args.out.read_text())
        for entry in result["targets"]:
            if entry["target"] in targets:
                entry["coverage"] = line_coverage(entry["target"], args.coverage_seconds, {**os.environ,
                                                  "ROUTERM_FUZZ_TOKENIZER_DIR": tokenizer_dir()})
                print(f"fuzz_{entry['target']}: line coverage {entry['coverage'].get('line_coverage')}", flush=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        return 0
    build = ROOT / "build" / "fuzz"
    env = {**os.environ, "ROUTERM_FUZZ_TOKENIZER_DIR": tokenizer_dir(),
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    subprocess.run(["bash", str(FUZZ / "run.sh"), "1", str(build)], cwd=ROOT, env=env, check=True)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    load_start = os.getloadavg()
    with ThreadPoolExecutor(args.jobs) as pool:
        entries = list(pool.map(lambda t: run_target(t, args.seconds, build, env), targets))
    if args.coverage_seconds:
        for entry in entries:
            entry["coverage"] = line_coverage(entry["target"], args.coverage_seconds, env)
            print(f"fuzz_{entry['target']}: line coverage {entry['coverage'].get('line_coverage')}", flush=True)
    previous = {e["target"]: e for e in json.loads(args.out.read_text())["targets"]} if args.out.is_file() else {}
    for entry in entries:
        entry["commit"] = commit
        entry["load_average_start"] = load_start[0]
        entry["jobs"] = args.jobs
        old = previous.get(entry["target"], {})
        fixed = list(old.get("findings_fixed", []))
        if old.get("open_findings") and entry["open_findings"] == 0:   # the last run found something; this one is clean
            fixed.append({"found_at": old.get("commit"), "report": old.get("report_tail", "")[-600:],
                          "crash_input_bytes": old.get("crash_input_bytes")})
        entry["findings_fixed"] = fixed
        previous[entry["target"]] = entry
    result = {
        "engine": "tests/fuzz/driver.cpp: random mutations of the seed corpus (not coverage-guided; no clang here)",
        "sanitizers": "address,undefined (-fno-sanitize-recover=all, leak detection on)",
        "compiler": subprocess.run([os.environ.get("CXX", "g++"), "--version"], capture_output=True,
                                   text=True).stdout.splitlines()[0],
        "machine": platform.platform(),
        "targets": [previous[t] for t in SEEDS if t in previous],
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(e["exit_status"] == 0 for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
