"""User-like edits of domains libvirt already planned (support/editprobe.py), through the local
libvirt daemon and through pciplan: the same PCI layout when both accept, never a refusal of
what libvirt accepts, never a crash.

The planned domains are libvirt 9.0.0's own test inputs (downloaded once, as in
test_libvirt_suite.py, into ``tests/.suite-cache``) as libvirt planned them, and the accepted
golden cases.  Each run edits a small sample of them, a different one each time
(``PCIPLAN_EDIT_SEED`` repeats one); support/editprobe.py runs thousands.

  PCIPLAN_EDIT_N      edited domains per run (default 60; 0 skips)
  PCIPLAN_EDIT_SEED   which sample and which edits (default: random; printed on failure)
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from support import editprobe, libvirt_oracle, suiteprobe

N = int(os.environ.get("PCIPLAN_EDIT_N", "60"))
SEED = os.environ.get("PCIPLAN_EDIT_SEED") or str(random.randrange(10**9))
CACHE = Path(__file__).resolve().parent / ".suite-cache"


@pytest.fixture(scope="module")
def edit_results():
    if N <= 0:
        pytest.skip("edit probe sample disabled (PCIPLAN_EDIT_N=0)")
    root, why = suiteprobe.sources_for_tests(CACHE)
    if root is None:
        pytest.skip(why)
    rng = random.Random(SEED)
    oracle = libvirt_oracle.Oracle()
    # half libvirt's test inputs (asked once for their planned output, then cached), half golden
    suite = editprobe.suite_bases(root, oracle, jobs=2,
                                  sample=lambda cases: rng.sample(cases, min(len(cases), N // 2)))
    golden = editprobe.golden_bases()
    bases = suite + rng.sample(golden, min(len(golden), N - len(suite)))
    cases = editprobe.make_cases(bases, 1, SEED)
    return cases, editprobe.run(cases, oracle, jobs=max(2, min(3, os.cpu_count() or 2)))


def test_the_sample_mixes_bases_and_edits(edit_results):
    cases, _ = edit_results
    assert len(cases) >= N // 2
    assert {c.family for c in cases} == {"suite", "golden"}
    assert len({e.split("(")[0] for c in cases for e in c.edits}) >= 5


def test_same_layout_as_libvirt_and_no_false_refusal(edit_results):
    _, results = edit_results
    bad = editprobe.failures(results)
    assert not bad, f"seed {SEED} (PCIPLAN_EDIT_SEED={SEED} repeats it):\n" + "\n".join(
        f"{r.dom.name} [{'; '.join(r.dom.edits)}]: {r.status}: {r.first_line}" for r in bad[:20])


def test_libvirt_was_asked(edit_results):
    _, results = edit_results
    asked = [r for r in results if r.status != "oracle-error"]
    assert len(asked) >= 0.95 * len(results), "the daemon failed to answer most cases"
