"""libvirt's own test inputs (and the conformance corpus' q35/aarch64/address-less variants of
them) through the local libvirt 9.0 daemon and through pciplan: the same PCI layout when both
accept, never a refusal of what libvirt accepts, and libvirt's first message when both refuse.

The inputs come from Debian's source packages of libvirt 9.0.0 and 11.3.0 (downloaded once,
about 9 and 11 MB, into ``tests/.suite-cache``; see support/suiteprobe.py, which also runs all
of them).  11.3's tests are the ones libvirt's users write against a newer libvirt's documents;
the daemon is still 9.0.  Each run takes a sample of them, a different one each time
(``PCIPLAN_SUITE_SEED`` repeats one):

  PCIPLAN_SUITE_SHARE   the share of the ~2,700 + ~2,950 cases each run takes (default 0.12; 0 skips)
  PCIPLAN_SUITE_SEED    which sample (default: random; printed on failure)
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from support import libvirt_oracle, suiteprobe

SHARE = float(os.environ.get("PCIPLAN_SUITE_SHARE", "0.12"))
SEED = os.environ.get("PCIPLAN_SUITE_SEED") or str(random.randrange(10**9))
CACHE = Path(__file__).resolve().parent / ".suite-cache"


VERSIONS = ("9.0.0", "11.3.0")


@pytest.fixture(scope="module", params=VERSIONS)
def suite_results(request):
    if SHARE <= 0:
        pytest.skip("libvirt test-suite sample disabled (PCIPLAN_SUITE_SHARE=0)")
    root, why = suiteprobe.sources_for_tests(CACHE, request.param)
    if root is None:
        pytest.skip(why)
    cases = suiteprobe.all_cases(root)
    rng = random.Random(SEED)
    sample = [c for c in cases if rng.random() < SHARE]
    return sample, suiteprobe.run(sample, libvirt_oracle.Oracle(), jobs=max(2, os.cpu_count() or 2))


def test_the_sample_is_drawn_from_the_whole_suite(suite_results):
    sample, _ = suite_results
    kinds = {c.name.rsplit(".", 1)[-1] if "." in c.name else "plain" for c in sample}
    assert len(sample) > 100 and {"plain", "as-q35"} <= kinds


def test_same_layout_as_libvirt_and_no_false_refusal(suite_results):
    _, results = suite_results
    bad = suiteprobe.failures(results)
    assert not bad, f"seed {SEED} (PCIPLAN_SUITE_SEED={SEED} repeats it):\n" + "\n".join(
        f"{r.dom.name}: {r.status}: {r.first_line}" for r in bad[:20])


def test_a_shared_refusal_is_libvirts_first_message(suite_results):
    _, results = suite_results
    other = [r for r in results if r.status == "both-reject" and r.message_match is False]
    assert not other, f"seed {SEED}:\n" + "\n".join(
        f"{r.dom.name}:\n   libvirt: {r.libvirt_text.strip()[:400]!r}\n   pciplan: {r.plan_reason[:400]!r}"
        for r in other[:20])


def test_libvirt_was_asked(suite_results):
    _, results = suite_results
    asked = [r for r in results if r.status != "oracle-error"]
    assert len(asked) >= 0.95 * len(results), "the daemon failed to answer most cases"
