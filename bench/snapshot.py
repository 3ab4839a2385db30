"""Fingerprint pciplan's answers over many inputs, to prove a speed-up changed nothing.

    .venv/bin/python bench/snapshot.py > before.txt     # before the change
    .venv/bin/python bench/snapshot.py > after.txt      # after
    diff before.txt after.txt                           # must be empty

Inputs: the bench domains of every size class (q35 and pc, up to libvirt's
limits and beyond), seeded random domains from tests/support/randomdomain.py
(when present), the golden files and the conformance corpus; each planned
with the default options, --hotplug-ports 12, --capacity max and --placement flat.
One line per (input, options): a sha256 of the planned text, or the error.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import pciplan  # noqa: E402
from pciplan import Options  # noqa: E402

import domains  # noqa: E402

CORPUS = Path("/work/shared/conformance/libvirt-9.0")


def inputs(n_random: int):
    for kind, top in (("q35", 240), ("pc", 960)):
        step = 7 if kind == "q35" else 23
        for n in list(range(0, top, step)) + [217, 218, 919, 920]:
            yield f"{kind}-{n}", domains.endpoints(kind, n)
    try:
        from support.randomdomain import generate
    except ImportError:
        generate = None
    if generate is not None:
        for i in range(n_random):
            yield f"random-{i}", generate(seed=4242, index=i).xml
    for p in sorted((ROOT / "tests" / "golden").glob("*.in.xml")):
        text = p.read_text()
        yield p.name, text
        # the same with double quotes, and with quotes and ampersands in text and values
        # (the output keeps the input's quote style: these take the other ways of writing it)
        if '"' not in text:
            yield p.name + " dq", text.replace("'", '"')
        yield p.name + " marks", text.replace("<devices>", "<devices>\n    <!-- \"a\" & 'b' -->", 1) \
            .replace("<name>", "<title>it&apos;s &quot;x&quot; &amp; y</title><name>", 1)
    for p in sorted((ROOT / "tests" / "fuzz_regressions").glob("*.xml")):
        yield p.name, p.read_bytes()
    for p in sorted(CORPUS.glob("*/*.in.xml")):
        yield f"{p.parent.name}/{p.name}", p.read_text()


OPTIONS = {
    "default": Options(probe_host=False),
    "hotplug12": Options(probe_host=False, hotplug_ports=12),
    "max": Options(probe_host=False, capacity="max"),
    "flat": Options(probe_host=False, placement="flat"),
}


def main() -> None:
    n_random = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    for name, xml in inputs(n_random):
        for oname, opts in OPTIONS.items():
            try:
                r = pciplan.plan_text(xml, opts)
                line = hashlib.sha256(r.text.encode()).hexdigest()[:16]
                if r.plan.warnings:
                    line += " W " + hashlib.sha256("\n".join(r.plan.warnings).encode()).hexdigest()[:8]
            except pciplan.PciplanError as err:
                line = f"E {type(err).__name__}: {str(err)[:200]}"
            except Exception as err:  # a crash is an answer too
                line = f"X {type(err).__name__}: {str(err)[:200]}"
            print(f"{name} {oname} {line}", flush=True)


if __name__ == "__main__":
    main()
