"""Long coverage-guided fuzz runs of the C library: every target of tests/fuzz/ under libFuzzer, ASan + UBSan.

    python scripts/fuzz_campaign.py [--seconds 600] [--jobs 2] [--targets bpe,chat] [--keep-corpus]
                                    [--out results/fuzz.json]
    python scripts/fuzz_campaign.py --coverage-only [--targets ...]

Builds the targets with ``clang++ -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all``
(``FUZZ_ENGINE=libfuzzer tests/fuzz/run.sh``, which installs clang and libFuzzer with apt-get when
they are missing, and trains the bpe/unigram/chat targets' tokenizers into build/fuzz/tokenizers),
then runs each target for ``--seconds`` from its seeds, ``--jobs`` at a time, leak detection on.
Each run starts from the seeds alone (``--keep-corpus``: from the corpus the last run left in
build/fuzz/libfuzzer/<target>/corpus). A run ends at the time limit or at its first finding.

One entry per target in ``--out``: engine (libfuzzer, coverage-guided), sanitizers, compiler,
executions, execs_per_second, seconds, coverage (libFuzzer's ``cov`` edges and ``ft`` features at
the end, corpus units, and the line coverage (gcov) of the library files the target is about,
measured by replaying the final corpus through a separate ``--coverage`` build with
tests/fuzz/driver.cpp), exit status, commit, ``findings`` (each artifact libFuzzer wrote: path,
size, its first 512 bytes as hex, the report's tail) and ``open_findings``. Targets not run keep
their last entry (an entry without ``engine`` came from the earlier random-mutation driver, and is
marked so); a clean run after findings moves them to ``findings_fixed``. ``make test`` runs the
same targets for 10 s each with g++ and the driver (tests/test_fuzz.py).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "fuzz"
BUILD = ROOT / "build" / "fuzz"
WORK = BUILD / "libfuzzer"
TARGETS = ("json", "tokenizer", "manifest", "jsonl", "bpe", "unigram", "chat")
# the library files each target is about (line coverage is reported over these)
COVERED = {"json": ["json.cpp"],
           "tokenizer": ["tokenizer.cpp", "wordpiece.cpp", "normalizer.cpp", "pretokenizer.cpp", "unicode.cpp",
                         "encode.cpp"],
           "manifest": ["manifest.cpp"], "jsonl": ["cli/jsonl.cpp", "json.cpp"],
           "bpe": ["bpe.cpp", "tokenizer.cpp", "added_tokens.cpp", "normalizer.cpp", "pretokenizer.cpp",
                   "split_regex.cpp"],
           "unigram": ["unigram.cpp", "tokenizer.cpp", "added_tokens.cpp", "normalizer.cpp", "pretokenizer.cpp"],
           "chat": ["chat.cpp", "formats.cpp", "encode.cpp"]}
# the sources run.sh links into every target (its `lib`), for the coverage build
LIB = ["json", "unicode", "tokenizer", "added_tokens", "bpe", "unigram", "wordpiece", "normalizer", "pretokenizer",
       "split_regex", "encode", "chat", "formats", "manifest", "onnx_refs", "util", "sha256", "cli/jsonl"]
ENGINE = "libfuzzer"
SANITIZERS = "address,undefined (-fno-sanitize-recover=all, leak detection on)"
OLD_ENGINE = "driver: tests/fuzz/driver.cpp, random mutations of the seeds (not coverage-guided)"
ARTIFACTS = ("crash-", "leak-", "timeout-", "oom-")
_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/", re.M)
# the line that says what went wrong: a target's invariant, a sanitizer, an escaped exception, libFuzzer
_WHAT = re.compile(r"^(fuzz \S+: .*|.*runtime error: .*|==\d+==ERROR: .*|terminate called .*|.*what\(\): .*"
                   r"|==\d+== ERROR: libFuzzer: .*)$", re.M)


def tokenizer_dir() -> str:
    from models.base import default_base_model   # the project is installed (editable): no path edits
    return default_base_model()


def fuzz_env() -> dict:
    return {**os.environ, "ROUTERM_FUZZ_TOKENIZER_DIR": tokenizer_dir(), "PYTHON": sys.executable,
            "ROUTERM_FUZZ_TOKENIZERS": str(BUILD / "tokenizers"), "FUZZ_ENGINE": ENGINE}


def parse_libfuzzer(output: str) -> dict:
    """Executions, speed and the last status line's coverage from libFuzzer's output."""
    stat = dict(re.findall(r"^stat::(\w+):\s+(\d+)", output, re.M))
    status = _STATUS.findall(output)
    runs, cov, ft, corpus = (int(x) for x in status[-1]) if status else (None, None, None, None)
    return {"executions": int(stat.get("number_of_executed_units", runs or 0)) if stat or runs else None,
            "execs_per_second": int(stat["average_exec_per_sec"]) if "average_exec_per_sec" in stat else None,
            "peak_rss_mb": int(stat["peak_rss_mb"]) if "peak_rss_mb" in stat else None,
            "cov": cov, "ft": ft, "corpus_units": corpus}


def artifacts(work: Path) -> list[Path]:
    return sorted(p for p in work.iterdir() if p.is_file() and p.name.startswith(ARTIFACTS))


def run_target(target: str, seconds: int, keep_corpus: bool, env: dict) -> dict:
    work = WORK / target
    work.mkdir(parents=True, exist_ok=True)
    for old in artifacts(work):   # the last run's findings: kept aside, not reported again
        (work / "previous").mkdir(exist_ok=True)
        old.replace(work / "previous" / old.name)
    if not keep_corpus:
        shutil.rmtree(work / "corpus", ignore_errors=True)
    seeds = len(list((FUZZ / "seeds" / ("text" if target == "tokenizer" else target)).iterdir()))
    start = time.perf_counter()
    proc = subprocess.run(["bash", str(FUZZ / "run.sh"), str(seconds), str(BUILD), target], cwd=ROOT,
                          env={**env, "FUZZ_NO_BUILD": "1"}, capture_output=True, text=True, errors="replace")
    elapsed = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    stats = parse_libfuzzer(output)
    what = [m.group(1) for m in _WHAT.finditer(output)][:4]
    findings = [{"artifact": str(p.relative_to(ROOT)), "bytes": p.stat().st_size, "hex": p.read_bytes()[:512].hex(),
                 "what": what, "report_tail": output[-4000:]} for p in artifacts(work)]
    if proc.returncode != 0 and not findings:   # a failure libFuzzer wrote no input for (e.g. at startup)
        findings = [{"artifact": None, "what": what, "report_tail": output[-4000:]}]
    entry = {"target": target, "engine": ENGINE, "coverage_guided": True, "sanitizers": SANITIZERS,
             "seconds": round(elapsed, 1), "executions": stats["executions"],
             "execs_per_second": stats["execs_per_second"], "peak_rss_mb": stats["peak_rss_mb"], "seeds": seeds,
             "coverage": {"cov": stats["cov"], "ft": stats["ft"], "corpus_units": stats["corpus_units"]},
             "exit_status": proc.returncode, "open_findings": len(findings), "findings": findings}
    print(f"fuzz_{target}: {stats['executions']} executions in {elapsed:.0f} s ({stats['execs_per_second']}/s), "
          f"cov {stats['cov']} ft {stats['ft']}, exit {proc.returncode}", flush=True)
    return entry


def line_coverage(targets: list[str], env: dict) -> dict[str, dict]:
    """gcov line coverage of COVERED[target] when each target's final corpus (and seeds) is replayed
    once through a ``--coverage`` build (g++, -O0, no sanitizers) with tests/fuzz/driver.cpp."""
    gcov, cxx = shutil.which("gcov"), env.get("CXX", "g++")
    if gcov is None:
        return {t: {"error": "gcov not found"} for t in targets}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        compile_flags = [cxx, "-std=c++17", "-O0", "--coverage", "-I", str(ROOT / "src"), "-I", str(ROOT / "include")]

        def obj(src: Path, name: str) -> str:
            path = work / f"{name}.o"
            subprocess.run([*compile_flags, "-c", str(src), "-o", str(path)], check=True, cwd=work)
            return str(path)

        lib = {name: obj(ROOT / "src" / f"{name}.cpp", name.replace("/", "_")) for name in LIB}
        driver = obj(FUZZ / "driver.cpp", "driver")
        for target in targets:
            for gcda in work.glob("*.gcda"):
                gcda.unlink()
            binary = work / f"fuzz_{target}"
            subprocess.run([cxx, "--coverage", obj(FUZZ / f"fuzz_{target}.cpp", f"fuzz_{target}"), driver,
                            *lib.values(), "-o", str(binary)], check=True, cwd=work)
            seeds = FUZZ / "seeds" / ("text" if target == "tokenizer" else target)
            corpus = [str(d) for d in (WORK / target / "corpus", seeds) if d.is_dir()]
            replay = subprocess.run([str(binary), "0", *corpus], cwd=work, env=env, capture_output=True, text=True,
                                    errors="replace")
            if replay.returncode != 0:
                out[target] = {"error": f"corpus replay exited {replay.returncode}: {replay.stderr[-600:]}"}
                continue
            files = {}
            for rel in COVERED[target]:
                report = subprocess.run([gcov, "-n", "-o", lib[rel[:-4]], str(ROOT / "src" / rel)], cwd=work,
                                        capture_output=True, text=True).stdout
                m = re.search(r"File '[^']*" + re.escape(Path(rel).name) + r"'\nLines executed:([\d.]+)% of (\d+)",
                              report)
                if m:
                    lines = int(m.group(2))
                    files[rel] = {"lines": lines, "executed": round(float(m.group(1)) / 100 * lines)}
            total, executed = sum(f["lines"] for f in files.values()), sum(f["executed"] for f in files.values())
            out[target] = {"replayed": [str(Path(c).relative_to(ROOT)) for c in corpus], "files": files,
                           "line_coverage": round(executed / total, 4) if total else None}
            print(f"fuzz_{target}: line coverage {out[target]['line_coverage']}", flush=True)
    return out


def load_previous(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    entries = {e["target"]: e for e in json.loads(path.read_text())["targets"]}
    for e in entries.values():
        e.setdefault("engine", OLD_ENGINE)
    return entries


def merge(previous: dict[str, dict], entries: list[dict], commit: str, jobs: int) -> None:
    load = os.getloadavg()[0]
    for entry in entries:
        entry.update(commit=commit, jobs=jobs, load_average_start=load)
        old = previous.get(entry["target"], {})
        fixed = list(old.get("findings_fixed", []))
        if old.get("open_findings") and not entry["open_findings"]:   # the last run found something; this one is clean
            for found in old.get("findings") or [{"report": old.get("report_tail", "")[-600:],
                                                   "crash_input_bytes": old.get("crash_input_bytes")}]:
                fixed.append({**found, "found_at": old.get("commit")})
        entry["findings_fixed"] = fixed
        previous[entry["target"]] = entry


def write(path: Path, previous: dict[str, dict]) -> None:
    compiler = subprocess.run(["clang++", "--version"], capture_output=True, text=True).stdout.splitlines()
    result = {"engine": "libFuzzer (clang++ -fsanitize=fuzzer): coverage-guided; each entry names its own engine",
              "sanitizers": SANITIZERS, "compiler": compiler[0] if compiler else None,
              "machine": platform.platform(), "targets": [previous[t] for t in TARGETS if t in previous]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--keep-corpus", action="store_true", help="continue from the last run's corpus")
    parser.add_argument("--no-line-coverage", action="store_true", help="skip the gcov replay of the corpora")
    parser.add_argument("--coverage-only", action="store_true",
                        help="only (re)measure line coverage of the corpora on disk into the existing --out entries")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "fuzz.json")
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {list(TARGETS)}")
    env = fuzz_env()
    previous = load_previous(args.out)
    if args.coverage_only:
        subprocess.run(["bash", str(FUZZ / "run.sh"), "0", str(BUILD), *targets], cwd=ROOT, env=env, check=True)
        for target, cov in line_coverage(targets, env).items():
            previous.setdefault(target, {"target": target}).setdefault("coverage", {}).update(cov)
        write(args.out, previous)
        return 0
    subprocess.run(["bash", str(FUZZ / "run.sh"), "0", str(BUILD), *targets], cwd=ROOT, env=env, check=True)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    with ThreadPoolExecutor(args.jobs) as pool:   # run.sh sets ASAN_OPTIONS / UBSAN_OPTIONS for each run
        entries = list(pool.map(lambda t: run_target(t, args.seconds, args.keep_corpus, env), targets))
    if not args.no_line_coverage:
        for entry, cov in zip(entries, line_coverage(targets, env).values()):
            entry["coverage"].update(cov)
    merge(previous, entries, commit, args.jobs)
    write(args.out, previous)
    return 0 if all(e["exit_status"] == 0 for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
