"""Domains as virt-install writes them (support/virtinstallprobe.py), through the local libvirt
daemon and through pciplan: the same PCI layout when both accept, never a refusal of what
libvirt accepts, never a crash.

Each run draws a few command lines, a different sample each time (``PCIPLAN_VI_SEED``
repeats one); support/virtinstallprobe.py runs thousands.  Needs virt-install (Debian's
virtinst) and a libvirt daemon; without them the tests skip and say why.

  PCIPLAN_VI_N      command lines per run (default 30; 0 skips)
  PCIPLAN_VI_SEED   which command lines (default: random; printed on failure)
"""

from __future__ import annotations

import os
import random

import pytest

from support import difftest, libvirt_oracle, virtinstallprobe

N = int(os.environ.get("PCIPLAN_VI_N", "30"))
SEED = os.environ.get("PCIPLAN_VI_SEED") or str(random.randrange(10**9))


@pytest.fixture(scope="module")
def probe_results():
    if N <= 0:
        pytest.skip("virt-install probe disabled (PCIPLAN_VI_N=0)")
    why = virtinstallprobe.unavailable_reason()
    if why:
        pytest.skip(why)
    cases = virtinstallprobe.make_cases(SEED, range(N))
    results = virtinstallprobe.run(cases, libvirt_oracle.Oracle(), jobs=2)
    return cases, results


def test_virt_install_printed_most_domains(probe_results):
    cases, results = probe_results
    refused = [c for c in cases if not c.xml]
    assert len(results) >= 0.6 * len(cases), (
        f"seed {SEED}: virt-install refused {len(refused)} of {len(cases)} command lines, e.g. "
        + "; ".join(f"{c.command}: {c.vi_err}" for c in refused[:3]))


def test_same_layout_as_libvirt_and_no_false_refusal(probe_results):
    _, results = probe_results
    bad = virtinstallprobe.failures(results)
    assert not bad, f"seed {SEED} (PCIPLAN_VI_SEED={SEED} repeats it):\n" + "\n".join(
        f"{r.dom.name}: {r.status}: {r.first_line}\n    {r.dom.command}" for r in bad[:20])


def test_libvirt_was_asked(probe_results):
    _, results = probe_results
    asked = [r for r in results if r.status != difftest.ORACLE_ERROR]
    assert len(asked) >= 0.95 * len(results), "the daemon failed to answer most cases"
