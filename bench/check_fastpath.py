"""Check that the click-free fast path of ``pciplan plan`` behaves exactly like click's.

    .venv/bin/python bench/check_fastpath.py [N_RANDOM]

Runs every input (corpus, golden files, bench domains with warnings, random
domains, broken inputs) through both ``pciplan plan ...`` (the console script:
fast path) and the click group directly, with the same arguments, and compares
exit status, stdout, stderr and the file written by ``-o``.  Prints the
differences and exits 1 if there are any.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import domains  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
FAST = [str(ROOT / ".venv" / "bin" / "pciplan")]
CLICK = [PY, "-c", "import sys; sys.argv[0] = 'pciplan'; from pciplan.cli.group import main; main()"]
CORPUS = Path("/work/shared/conformance/libvirt-9.0")


def cases(tmp: Path, n_random: int):
    files = sorted(CORPUS.glob("*/*.in.xml")) + sorted((ROOT / "tests" / "golden").glob("*.in.xml"))
    for kind, n in (("q35", 0), ("q35", 217), ("q35", 218), ("pc", 529), ("pc", 919), ("pc", 50)):
        p = tmp / f"{kind}-{n}.xml"
        p.write_text(domains.endpoints(kind, n))
        files.append(p)
    try:
        from support.randomdomain import generate
        for i in range(n_random):
            p = tmp / f"random-{i}.xml"
            p.write_text(generate(seed=777, index=i).xml)
            files.append(p)
    except ImportError:
        pass
    broken = {"empty.xml": "", "notxml.xml": "<domain", "notdomain.xml": "<network/>",
              "dtd.xml": "<!DOCTYPE x><domain/>", "bad-utf8.xml": b"<domain>\xff</domain>"}
    for name, text in broken.items():
        p = tmp / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        files.append(p)
    for f in files:
        yield [str(f)], None
    some = str(files[0])
    yield [str(tmp / "missing.xml")], None
    yield [str(tmp)], None                               # a directory
    yield [], some                                       # stdin
    yield ["-"], some
    yield [some, "-o", "-"], None
    yield [some, "-o", "{out}"], None
    yield ["-o", "{out}", some], None
    yield [some, "--output", "{out}"], None
    yield [some, "--output={out}"], None
    yield [some, "-o", str(tmp / "no" / "such" / "dir.xml")], None
    yield [some, "-o", str(tmp)], None
    yield [str(tmp / "q35-218.xml"), "-o", "{out}"], None   # refused: nothing written


def run_one(cmd: list[str], args: list[str], stdin: str | None, out: Path) -> tuple:
    args = [a.replace("{out}", str(out)) for a in args]
    if out.exists():
        out.unlink()
    data = Path(stdin).read_bytes() if stdin else None
    p = subprocess.run(cmd + ["plan"] + args, input=data, capture_output=True,
                       stdin=None if data is not None else subprocess.DEVNULL)
    written = out.read_bytes() if out.exists() else None
    return p.returncode, p.stdout, p.stderr, written


def compare(i: int, args: list[str], stdin: str | None, tmp: Path) -> str | None:
    fast = run_one(FAST, args, stdin, tmp / f"out-fast-{i}.xml")
    slow = run_one(CLICK, args, stdin, tmp / f"out-click-{i}.xml")
    if fast != slow:
        what = [n for n, a, b in zip(("status", "stdout", "stderr", "file"), fast, slow) if a != b]
        return f"{args} (stdin {stdin}): {', '.join(what)} differ: fast {fast[0]} {fast[2][:200]!r} / click {slow[0]} {slow[2][:200]!r}"
    return None


def main() -> int:
    n_random = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    env_ok = "PCIPLAN_DEBUG" not in os.environ
    assert env_ok, "unset PCIPLAN_DEBUG"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        todo = list(cases(tmp, n_random))
        with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            results = list(ex.map(lambda t: compare(t[0], *t[1], tmp), enumerate(todo)))
    bad = [r for r in results if r]
    for r in bad:
        print(r)
    print(f"{len(todo) - len(bad)}/{len(todo)} command lines behave the same (fast path vs click)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
