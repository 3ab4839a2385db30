"""With several mistakes, pciplan reports the one libvirt 9.0 reports.

libvirt's parser reads the devices kind by kind (disks, controllers, filesystems,
interfaces, ..., watchdogs, memballoons, ..., iommus, vsocks), each kind in document
order, and stops at its first complaint; so the complaint about the earliest kind wins
wherever the devices sit in the document.  The golden cases tests/golden/*-order2-* hold
libvirt's own answers for such pairs; this property test shuffles them.
"""

from __future__ import annotations

import itertools
import random

import pytest

import pciplan
from support.difftest import message_core

BASE = """<domain type='qemu'>
  <name>order</name>
  <memory unit='MiB'>1024</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
{devices}
  </devices>
</domain>
"""

#: one mistake of the parser per device kind, in libvirt's order of kinds, with its message
MISTAKES = [
    ("<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='nvme'/></disk>",
     "Invalid value for attribute 'bus' in element 'target': 'nvme'."),
    ("<controller type='nvme' index='0'/>",
     "Invalid value for attribute 'type' in element 'controller': 'nvme'."),
    ("<filesystem type='virtiofs'><source dir='/s'/><target dir='s'/></filesystem>",
     "Invalid value for attribute 'type' in element 'filesystem': 'virtiofs'."),
    ("<interface type='user'><mac address='01:00:00:00:00:01'/></interface>",
     "expected unicast mac address, found multicast '01:00:00:00:00:01'"),
    ("<serial type='ptty'/>", "unknown type presented to host for character device: ptty"),
    ("<channel type='unix'><source mode='bind'/></channel>",
     "target type must be specified for channel device"),
    ("<input type='touchpad' bus='virtio'/>", "unknown input device type 'touchpad'"),
    ("<graphics type='vnc2'/>", "Invalid value for attribute 'type' in element 'graphics': 'vnc2'."),
    ("<sound model='hda'/>", "Invalid value for attribute 'model' in element 'sound': 'hda'."),
    ("<video><model type='vga2'/></video>", "unknown video model 'vga2'"),
    ("<hostdev mode='SUBSYSTEM' type='pci'><source><address bus='1' slot='0'/></source></hostdev>",
     "unknown hostdev mode 'SUBSYSTEM'"),
    ("<watchdog model='i6300'/>", "unknown watchdog model 'i6300'"),
    ("<memballoon model='virtio-balloon'/>",
     "Invalid value for attribute 'model' in element 'memballoon': 'virtio-balloon'."),
    ("<tpm model='tpm-crb'/>", "missing TPM device backend"),
    ("<redirdev bus='usb3' type='spicevmc'/>", "unknown redirdev bus 'usb3'"),
    ("<shmem name='x'><model type='ivshmem-plane'/></shmem>",
     "Invalid value for attribute 'type' in element 'model': 'ivshmem-plane'."),
    ("<iommu model='virtio-iommu'/>", "Invalid value for attribute 'model' in element 'iommu': 'virtio-iommu'."),
    ("<vsock model='virtio-vsock'/>", "Invalid value for attribute 'model' in element 'vsock': 'virtio-vsock'."),
]


def _refusal(devices: list[str]) -> str:
    with pytest.raises(pciplan.PlanError) as raised:
        pciplan.plan(BASE.format(devices="\n".join("    " + d for d in devices)))
    return message_core(raised.value.reason)


@pytest.mark.parametrize("snippet,message", MISTAKES, ids=[m[1][:40] for m in MISTAKES])
def test_each_mistake_alone(snippet, message):
    assert _refusal([snippet]) == message_core(message)


def test_the_earliest_kind_wins_in_any_document_order():
    rng = random.Random(20261125)
    pairs = list(itertools.combinations(range(len(MISTAKES)), 2))
    for i, j in rng.sample(pairs, 60):
        for first, second in ((i, j), (j, i)):
            devices = [MISTAKES[first][0], MISTAKES[second][0]]
            assert _refusal(devices) == message_core(MISTAKES[min(i, j)][1]), devices


def test_a_second_watchdog_is_counted_where_watchdogs_are_read():
    two = ["<watchdog model='i6300esb'/>", "<watchdog model='ib700'/>"]
    # an earlier kind's mistake wins, a later kind's loses, wherever they are written
    assert _refusal(two + [MISTAKES[0][0]]) == message_core(MISTAKES[0][1])
    assert _refusal([MISTAKES[12][0]] + two) == message_core("only a single watchdog device is supported")
