"""Odd values of the words libvirt reads (support/valueprobe.py): one attribute of one device of
an accepted golden domain set to 'default', 'auto', 'none', '', upper case or another golden
domain's word, through the local libvirt daemon and through pciplan: both accept with the same
PCI layout, or both refuse with the same message.

Each run takes a different sample (``PCIPLAN_VALUE_SEED`` repeats one); the script runs
thousands.

  PCIPLAN_VALUE_N      cases per run (default 150; 0 skips)
  PCIPLAN_VALUE_SEED   which sample (default: random; printed on failure)
"""

from __future__ import annotations

import os
import random

import pytest

from support import libvirt_oracle, valueprobe

N = int(os.environ.get("PCIPLAN_VALUE_N", "150"))
SEED = int(os.environ.get("PCIPLAN_VALUE_SEED") or random.randrange(10**9))


@pytest.fixture(scope="module")
def oracle():
    if N <= 0:
        pytest.skip("value probe sample disabled (PCIPLAN_VALUE_N=0)")
    if not libvirt_oracle.available():
        pytest.skip(libvirt_oracle.unavailable_reason())
    return libvirt_oracle.Oracle()


def test_the_sample_sets_many_places_to_many_values():
    cases = valueprobe.make_cases(SEED, max(N, 50))
    assert len(cases) >= max(N, 50) * 0.8
    assert len({where.split(" ")[0] for _, where, _ in cases}) >= 10
    assert len({where.split("'")[1] for _, where, _ in cases}) >= 10


def test_libvirt_and_pciplan_agree(oracle):
    from concurrent.futures import ThreadPoolExecutor
    cases = valueprobe.make_cases(SEED, N)
    with ThreadPoolExecutor(2) as pool:
        verdicts = list(pool.map(lambda c: valueprobe.judge(oracle, c), cases))
    bad = [f"{name}: {where}: {v}" for (name, where, _), v in zip(cases, verdicts) if v is not None]
    assert not bad, f"seed {SEED} (PCIPLAN_VALUE_SEED={SEED} repeats it):\n" + "\n".join(bad[:20])
