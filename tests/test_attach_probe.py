"""Devices added to a defined, shut-off guest with ``virsh attach-device --config`` (and
``attach-interface``/``attach-disk --config``) on the local libvirt daemon, against ``pciplan
plan`` of libvirt's stored definition with the device written at the end of ``<devices>``
(support/attachprobe.py): the same PCI layout when both accept, never a refusal of what attach
accepts, never a crash.

The guests are random ones (support/randomdomain.py) and, when their sources are at hand,
libvirt 9.0.0's own test inputs (as test_edit_probe.py takes them).  Each run draws a small
sample, a different one each time (``PCIPLAN_ATTACH_SEED`` repeats one); support/attachprobe.py
runs thousands.  Two documented differences of attach from define are checked on fixed guests.

  PCIPLAN_ATTACH_N      cases per run (default 30; 0 skips the sample)
  PCIPLAN_ATTACH_SEED   which sample and which devices (default: random; printed on failure)
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import pciplan
from support import attachprobe, editprobe, libvirt_oracle, suiteprobe
from support.layout import compare_xml

N = int(os.environ.get("PCIPLAN_ATTACH_N", "30"))
SEED = os.environ.get("PCIPLAN_ATTACH_SEED") or str(random.randrange(10**9))
CACHE = Path(__file__).resolve().parent / ".suite-cache"

pytestmark = pytest.mark.skipif(not libvirt_oracle.available(),
                                reason=libvirt_oracle.unavailable_reason() or "no libvirt daemon")


@pytest.fixture(scope="module")
def oracle():
    return libvirt_oracle.Oracle()


@pytest.fixture(scope="module")
def attach_results(oracle):
    if N <= 0:
        pytest.skip("attach probe sample disabled (PCIPLAN_ATTACH_N=0)")
    rng = random.Random(SEED)
    root, _ = suiteprobe.sources_for_tests(CACHE)
    suite = []
    if root is not None:
        suite = editprobe.suite_bases(root, oracle, jobs=2,
                                      sample=lambda cases: rng.sample(cases, min(len(cases), N // 2)))
    bases = suite + attachprobe.random_bases(SEED, N - len(suite), oracle, jobs=2)
    # a few cases attach up to three devices, one after the other
    cases = attachprobe.make_cases(bases, SEED, steps=1)
    cases += attachprobe.make_cases(rng.sample(bases, min(len(bases), 3)), SEED + "-steps", steps=3)
    return cases, attachprobe.run(cases, oracle, jobs=max(2, min(3, os.cpu_count() or 2)))


def test_the_sample_has_guests_and_devices(attach_results):
    cases, _ = attach_results
    assert len(cases) >= N // 2
    assert len({e.split("(")[0] for c in cases for e in c.edits}) >= 8


def test_same_layout_as_attach_and_no_false_refusal(attach_results):
    _, results = attach_results
    bad = attachprobe.failures(results)
    assert not bad, f"seed {SEED} (PCIPLAN_ATTACH_SEED={SEED} repeats it):\n" + "\n".join(
        f"{r.dom.name} [{'; '.join(r.dom.edits)}]: {r.status}: {r.first_line}" for r in bad[:20])


def test_libvirt_was_asked(attach_results):
    _, results = attach_results
    asked = [r for r in results if r.status != "oracle-error"]
    assert len(asked) >= 0.95 * len(results), "the daemon failed to answer most cases"


# -- what README says of attach --config against define ------------------------------------
def _guest(arch: str, machine: str, devices: str) -> str:
    return (f"<domain type='qemu'><name>attach-doc</name><memory>262144</memory>"
            f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os>"
            f"<devices>{devices}</devices></domain>")


def test_one_device_at_a_time(oracle):
    """libvirt assigns each attach on its own: a disk then a NIC on a q35 guest take the spare
    root port and a new one in that order, which pciplan gives when it plans after each device
    (one plan of both assigns them in libvirt's device order: the NIC first)."""
    disk = ("<disk type='file' device='disk'><source file='/var/lib/libvirt/images/ad.img'/>"
            "<target dev='vda' bus='virtio'/></disk>")
    nic = "<interface type='user'><model type='virtio'/></interface>"
    a = oracle.attach(_guest("x86_64", "q35", ""), [disk, nic])
    assert a.attached, a.after
    step = pciplan.plan(attachprobe.with_device(pciplan.plan(attachprobe.with_device(a.before, disk)), nic))
    assert compare_xml(a.after, step) == []
    once = pciplan.plan(attachprobe.with_device(attachprobe.with_device(a.before, disk), nic))
    assert compare_xml(a.after, once) != []


def test_s390x_bridge_zpci_ids_plan_the_stored_definition_first(oracle):
    """attach re-reads the stored definition first, as a second define, which gives a bridge
    libvirt added its zPCI ids before the new device gets its own: pciplan gives those when it
    plans the stored definition once before the device is added."""
    nics = "<interface type='user'><model type='e1000'/><address type='pci'/></interface>" * 33
    nic = "<interface type='user'><model type='virtio'/><address type='pci'/></interface>"
    a = oracle.attach(_guest("s390x", "s390-ccw-virtio", nics), nic)
    assert a.attached, a.after
    direct = pciplan.plan(attachprobe.with_device(a.before, nic))
    ok, defined = oracle.run(attachprobe.with_device(a.before, nic))
    assert ok and compare_xml(defined, direct) == []              # define's ids
    assert compare_xml(a.after, direct) != []                     # not attach's
    first = pciplan.plan(attachprobe.with_device(pciplan.plan(a.before), nic))
    assert compare_xml(a.after, first) == []
