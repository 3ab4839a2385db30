"""Before/after: time pciplan at another git revision against the working tree, interleaved.

    .venv/bin/python bench/versus.py REV [--rounds N] [--instructions]

``git archive REV src`` is unpacked in a temporary folder (the repository is not
touched) and both trees run the same inputs, alternately: the in-process
``pciplan.plan`` (CPU time, best of several calls, in three fresh interpreters per
tree, the trees alternating) and the cold ``pciplan plan FILE`` (the console script with the tree
first on PYTHONPATH; wall time, median).  Prints one row per input.

On a VM whose speed moves by tens of percent from minute to minute, a few
milliseconds of start-up are lost in the noise of wall time.  ``--instructions``
adds what does not move: the instructions a cold ``pciplan plan FILE`` executes,
counted by valgrind's callgrind (with ``PYTHONHASHSEED=0``, the same count on
every run), for the same interpreter, lxml and input.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
import domains  # noqa: E402

CASES = [("q35-typical", "q35", 2), ("pc-typical", "pc", 2), ("q35-100", "q35", 92), ("pc-100", "pc", 90),
         ("q35-max", "q35", 217), ("pc-max", "pc", 919)]

INPROC = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import pciplan


def once(text):
    t0 = time.process_time()
    pciplan.plan(text)
    return time.process_time() - t0


out = {}
for label, path in json.loads(sys.argv[2]):
    text = open(path).read()
    pciplan.plan(text)
    reps = 30 if len(text) < 20000 else 5
    out[label] = min(once(text) for _ in range(reps)) * 1000
print(json.dumps(out))
"""


def instructions(command: list[str], env: dict[str, str]) -> int:
    """Instructions ``command`` executes, by callgrind."""
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                       capture_output=True, text=True, env={**env, "PYTHONHASHSEED": "0"})
    m = re.search(r"Collected : (\d+)", p.stderr)
    if m is None:
        raise RuntimeError(f"callgrind gave no count for {command}: {p.stderr[-300:]}")
    return int(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--instructions", action="store_true",
                    help="also count the instructions of each cold run (valgrind's callgrind)")
    args = ap.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        ap.error("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="pciplan-versus-") as d:
        tmp = Path(d)
        old = tmp / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.rev, "src"], check=True,
                                 capture_output=True).stdout
        (tmp / "old.tar").write_bytes(archive)
        with tarfile.open(tmp / "old.tar") as t:
            t.extractall(old)
        trees = {"before": str(old / "src"), "after": str(ROOT / "src")}
        files = []
        for label, kind, extra in CASES:
            p = tmp / f"{label}.xml"
            p.write_text(domains.endpoints(kind, extra))
            files.append((label, str(p)))
        cache = Path(tempfile.gettempdir()) / "pciplan-bench-pycache"
        api = {k: {} for k in trees}
        cli = {k: {label: [] for label, _ in files} for k in trees}
        for _ in range(3):  # the trees alternate, as the machine's speed drifts
            for name, src in trees.items():
                p = subprocess.run([sys.executable, "-c", INPROC, src, json.dumps(files)], capture_output=True,
                                   text=True, env=bench.cli_env(cache), check=True)
                for label, ms in json.loads(p.stdout).items():
                    api[name][label] = min(ms, api[name].get(label, ms))
        script = bench.pciplan_bin()
        for name, src in trees.items():  # warm the bytecode caches
            env = bench.cli_env(cache)
            env["PYTHONPATH"] = src
            subprocess.run(script + ["plan", files[0][1]], capture_output=True, env=env)
        for _ in range(args.rounds):
            for label, path in files:
                for name, src in trees.items():
                    env = bench.cli_env(cache)
                    env["PYTHONPATH"] = src
                    t = time.perf_counter()
                    subprocess.run(script + ["plan", path], capture_output=True, env=env)
                    cli[name][label].append((time.perf_counter() - t) * 1000)
        counts: dict[str, dict[str, int]] = {k: {} for k in trees}
        if args.instructions:
            for label, path in files:
                for name, src in trees.items():
                    env = bench.cli_env(cache)
                    env["PYTHONPATH"] = src
                    counts[name][label] = instructions(script + ["plan", path], env)
            floor = instructions([sys.executable, "-c", "import lxml.etree"], bench.cli_env(cache))
    rows = []
    for label, _ in files:
        b, a = api["before"][label], api["after"][label]
        cb, ca = statistics.median(cli["before"][label]), statistics.median(cli["after"][label])
        rows.append([label, f"{b:.2f}", f"{a:.2f}", f"{b / a:.1f}x", f"{cb:.1f}", f"{ca:.1f}", f"{cb / ca:.2f}x"])
    print(f"before = {args.rev}, after = working tree; load average {bench.loadavg()}")
    print(bench.table(["input", "API before ms", "API after ms", "speed-up", "CLI before ms", "CLI after ms",
                       "speed-up"], rows))
    print("API: CPU time of pciplan.plan, best of 3 interleaved processes of 30 calls (5 for the big "
          "ones); CLI: wall time of a cold "
          f"`pciplan plan FILE`, median of {args.rounds} interleaved runs, bytecode cached.")
    if args.instructions:
        rows = []
        for label, _ in files:
            b, a = counts["before"][label], counts["after"][label]
            rows.append([label, f"{b / 1e6:.1f}", f"{a / 1e6:.1f}", f"{b / a:.3f}x",
                         f"{(b - floor) / 1e6:.1f}", f"{(a - floor) / 1e6:.1f}", f"{(b - floor) / (a - floor):.3f}x"])
        print()
        print(bench.table(["input", "CLI before Minstr", "CLI after Minstr", "fewer", "beyond lxml before",
                           "beyond lxml after", "fewer"], rows))
        print(f"Instructions of a cold `pciplan plan FILE` (callgrind, PYTHONHASHSEED=0); \"beyond lxml\": "
              f"less the {floor / 1e6:.1f} M that `python -c 'import lxml.etree'` takes (the interpreter and lxml).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
