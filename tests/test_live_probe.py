"""Devices hot-plugged into running guests on the local libvirt daemon (``virsh
attach-device --live``), against ``pciplan hotplug`` of the guest's live XML
(support/liveprobe.py), or through the daemon for every other guest (``hotplug -c URI
-d NAME``: this host is the guest's, so devices that need the host are drawn too): the
same PCI address when both place the device, the same refusal when neither can, never a
refusal of what libvirt attaches.

Each run starts a small sample of random TCG guests (paused), a different one each time
(``PCIPLAN_LIVE_SEED`` repeats one); support/liveprobe.py runs hundreds.

  PCIPLAN_LIVE_N      guests per run (default 12; 0 skips the sample)
  PCIPLAN_LIVE_SEED   which guests and devices (default: random; printed on failure)
"""

from __future__ import annotations

import collections
import importlib.util
import os
import random

import pytest

from support import libvirt_oracle, liveprobe

N = int(os.environ.get("PCIPLAN_LIVE_N", "12"))
SEED = os.environ.get("PCIPLAN_LIVE_SEED") or str(random.randrange(10**9))
URI = os.environ.get("LIBVIRT_DEFAULT_URI", "qemu:///system")

pytestmark = pytest.mark.skipif(not libvirt_oracle.available(URI),
                                reason=libvirt_oracle.unavailable_reason(URI) or "no libvirt daemon")


@pytest.fixture(scope="module")
def cases():
    if N <= 0:
        pytest.skip("live hot-plug sample disabled (PCIPLAN_LIVE_N=0)")
    # every other guest is asked through the daemon (hotplug -c URI -d NAME), with devices
    # whose attach depends on this host, when libvirt-python is there to connect with
    connect = importlib.util.find_spec("libvirt") is not None
    return [liveprobe.run_case(SEED, i, None, 4, URI, None, connect=connect and i % 2 == 1) for i in range(N)]


def test_the_sample_starts_guests_and_attaches(cases):
    started = [c for c in cases if c.status != "no-start"]
    assert len(started) >= N // 2, [c.note for c in cases if c.status == "no-start"]
    assert sum(len(c.steps) for c in started) >= N


def test_pciplan_hotplug_follows_libvirt(cases):
    bad = [c for c in cases if c.status in liveprobe.FAILING]
    lines = []
    for c in bad[:3]:
        lines.append(f"case {c.index} ({c.family}): {c.status}")
        for s in c.steps:
            lines.append(f"  [{s.status}] {s.device}\n    pciplan rc={s.planner_rc} {s.planner_addr} "
                         f"{s.planner_err[-300:]}\n    libvirt ok={s.libvirt_ok} {s.libvirt_addr} {s.libvirt_err}")
    steps = collections.Counter(s.status for c in cases for s in c.steps)
    assert not bad, (f"PCIPLAN_LIVE_SEED={SEED}: {len(bad)} of {len(cases)} guests disagree ({dict(steps)})\n"
                     + "\n".join(lines))
