"""``bench/run --smoke``: the benchmark runs end to end and prints every table.

Only completion and the expected rows are checked, never a timing: CI machines
are too noisy for that (see BENCHMARKS.md for the numbers).  The libvirt
columns need a running daemon; without one the bench says why it skipped them
and so does the libvirt test here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run"

NUMBER = re.compile(r"^\d+(\.\d+)?x?$")


@pytest.fixture(scope="module")
def smoke() -> str:
    env = dict(os.environ)
    env["PCIPLAN_PYTHON"] = sys.executable
    p = subprocess.run([str(RUN), "--smoke"], capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, f"bench/run --smoke failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def cells(output: str, first: str) -> list[str]:
    """The cells of the table row that starts with ``first``."""
    for line in output.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if parts and parts[0] == first:
            return parts
    raise AssertionError(f"no row {first!r} in:\n{output}")


def libvirt_skipped(output: str) -> str | None:
    m = re.search(r"^libvirt: skipped \((.*)\)$", output, re.M)
    return m.group(1) if m else None


def test_every_section_is_printed(smoke: str) -> None:
    for header in ("== round trip: libvirt 9.0 vs pciplan", "== CLI start-up:", "== scaling:",
                   "== planning vs lxml:", "== limits:", "== targets =="):
        assert header in smoke, header
    assert smoke.rstrip().splitlines()[-1].startswith("done")
    assert re.search(r"^machine: \d+ CPUs, ", smoke, re.M)


def test_pciplan_rows(smoke: str) -> None:
    for label in ("q35-typical", "pc-typical", "q35-30"):
        row = cells(smoke, label)
        assert len(row) == 11, row
        devices, endpoints, cli, api = row[1], row[2], row[5], row[6]
        assert devices.isdigit() and endpoints.isdigit()
        assert NUMBER.match(cli) and NUMBER.match(api), row
    for label in ("python -c pass", "python -c 'import pciplan.api'", "pciplan plan (typical q35)",
                  "pciplan --version (click)"):
        row = cells(smoke, label)
        assert all(NUMBER.match(c) for c in row[1:]), row
    assert "imports of `pciplan plan` (-X importtime" in smoke
    for label in ("q35: exponent", "pc: exponent"):
        assert NUMBER.match(cells(smoke, label)[-1].lstrip("-"))
    assert cells(smoke, "q35")[1].isdigit()
    lxml_rows = [line for line in smoke.split("== planning vs lxml")[1].splitlines() if line.startswith("q35-30")]
    assert lxml_rows and lxml_rows[0].rstrip().endswith("x")
    targets = smoke.split("== targets ==")[1]
    for target in ("CLI cold <= 1.0x libvirt round trip", "API >= 20x faster than the round trip (virsh",
                   "linear in devices: q35 exponent", "plan <= 2x lxml parse+serialize"):
        assert target in targets, target


def test_libvirt_rows(smoke: str) -> None:
    why = libvirt_skipped(smoke)
    if why is not None:
        pytest.skip(f"libvirt part skipped by the bench: {why}")
    for label in ("q35-typical", "pc-typical", "q35-30"):
        row = cells(smoke, label)
        assert NUMBER.match(row[3]), row            # virsh round trip
        assert NUMBER.match(row[7]) and NUMBER.match(row[8]), row  # ratios
        assert row[10] == "yes", f"pciplan and libvirt disagree on {label}: {row[10]}"
    for label, answer in (("q35-limit", "accepts"), ("q35-limit+1", "refuses")):
        row = cells(smoke, label)
        assert row[2] == answer and row[3] == answer, row
