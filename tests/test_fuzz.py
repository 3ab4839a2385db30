"""Fuzzing: mutated domain documents never crash or hang pciplan (see tests/fuzzlib.py).

* ``test_fuzz_api``: hypothesis chooses a seed and its mutations and a target
  (plan, check, tree, diff); only ``PciplanError`` may escape, within ``fuzzlib.TIME_LIMIT`` (a hang).
  ``PCIPLAN_FUZZ_EXAMPLES`` sets the number of inputs (default 300); the run is
  derandomised (the same inputs every time, so CI does not flake) unless
  ``PCIPLAN_FUZZ_RANDOM=1``.
* ``test_fuzz_cli``: a small sample through the real CLI (``PCIPLAN_FUZZ_CLI_EXAMPLES``,
  default 12): exit 0/1/2, ``error:`` lines, no traceback.
* ``test_regression``: every input in tests/fuzz_regressions/ that once crashed or hung,
  through every target; and libvirt 9.0's decision on it (accept/reject) where known.

Findings whose fix is the planner's are listed in PENDING: their regression tests
are strict xfails (they turn into failures once fixed, to be moved out of PENDING),
and the random fuzz tolerates them so that CI stays meaningful meanwhile.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzlib

EXAMPLES = int(os.environ.get("PCIPLAN_FUZZ_EXAMPLES", "300"))
CLI_EXAMPLES = int(os.environ.get("PCIPLAN_FUZZ_CLI_EXAMPLES", "12"))
RANDOM = os.environ.get("PCIPLAN_FUZZ_RANDOM") == "1"
SEEDS = fuzzlib.seeds()

#: regression input -> why it still fails (a planner fix the lead applies; see docs/fuzzing.md)
PENDING: dict[str, str] = {}
#: (exception type, file) of the pending findings, tolerated by the random fuzz
PENDING_SIGNATURES: set[tuple[str, str]] = set()
#: what libvirt 9.0 does with each regression input (oracle.py), "reject" = plan exits 1
LIBVIRT = {
    "usb-model-none-twice": "reject",
    "usb-model-none-twice-aarch64": "reject",
    "usb-model-none-two-indexes": "reject",
    "drive-controller-65536-ide": "reject",
    "drive-controller-uint-max-scsi": "accept",
    "drive-controller-2g-scsi": "accept",
    "scsi-hostdev-controller-uint-max": "accept",
    "disk-name-sdzzzz": "reject",
    "disk-name-wraps-negative": "reject",
    "drive-controller-hex": "reject",
    "floppy-name-fdpjr": "reject",
}


def _pending(f: fuzzlib.Finding) -> bool:
    return (f.kind, f.where.split(":")[0]) in PENDING_SIGNATURES


def _report(f: fuzzlib.Finding) -> str:
    return f"{f.target}: {f.kind} at {f.where}: {f.message}\ninput:\n{f.data.decode('utf-8', 'replace')[:4000]}"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzz_api(data):
    seed = data.draw(st.sampled_from(SEEDS), label="seed")
    doc = fuzzlib.mutate(seed, fuzzlib.Chooser(draw=data.draw))
    target = data.draw(st.sampled_from(sorted(fuzzlib.TARGETS)), label="target")
    variant = data.draw(st.integers(0, 3), label="variant")
    other = data.draw(st.sampled_from(SEEDS), label="other") if target == "diff" else None
    f = fuzzlib.run_one(target, doc, variant, other)
    if f is not None and not _pending(f):
        pytest.fail(_report(f))


def test_fuzz_cli():
    rnd = random.Random(None if RANDOM else 7)
    ch = fuzzlib.Chooser(rnd)
    names = sorted(fuzzlib.CLI_ARGS)
    problems = []
    for i in range(CLI_EXAMPLES):
        doc = fuzzlib.mutate(ch.pick(SEEDS), ch)
        args = fuzzlib.CLI_ARGS[names[i % len(names)]]
        try:
            code, _, err = fuzzlib.run_cli(args, doc, timeout=60)
        except subprocess.TimeoutExpired:
            problems.append(f"{args}: timeout")
            continue
        problem = fuzzlib.cli_problem(code, err)
        if problem:
            problems.append(f"{args}: {problem}: {err[-500:]}")
    assert not problems, "\n".join(problems)


def _regressions():
    files = sorted(fuzzlib.REGRESSIONS.glob("*.xml"))
    params = []
    for f in files:
        name = f.name[:-len(".xml")]
        marks = [pytest.mark.xfail(strict=True, reason=f"planner fix pending: {PENDING[name]}")] \
            if name in PENDING else []
        params.append(pytest.param(f, id=name, marks=marks))
    return params


def test_there_are_regression_cases():
    assert len(_regressions()) >= 5
    for name in list(PENDING) + list(LIBVIRT):
        assert (fuzzlib.REGRESSIONS / f"{name}.xml").exists(), name


@pytest.mark.parametrize("path", _regressions())
def test_regression(path: Path):
    data = path.read_bytes()
    for target in fuzzlib.TARGETS:
        for variant in range(4):
            f = fuzzlib.run_one(target, data, variant)
            assert f is None, _report(f)
    expected = LIBVIRT.get(path.name[:-len(".xml")])
    if expected is not None:
        from pciplan import api
        from pciplan.errors import PlanError
        try:
            api.plan(data)
            got = "accept"
        except PlanError:
            got = "reject"
        assert got == expected, f"libvirt 9.0 would {expected} this input"


@pytest.mark.parametrize("path", [p for p in _regressions()
                                  if p.id not in PENDING])
def test_regression_cli(path: Path):
    code, _, err = fuzzlib.run_cli(["plan", str(path)], b"", timeout=60)
    assert fuzzlib.cli_problem(code, err) is None, err
