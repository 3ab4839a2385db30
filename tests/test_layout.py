"""Unit tests of the PCI layout comparison used by the corpus, golden and differential tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support import layout
from support.paths import CORPUS_ABSENT as ABSENT, corpus_dir

CORPUS = corpus_dir()

GOLDEN = Path(__file__).resolve().parent / "golden"

BASE = """<domain type='qemu'>
  <name>t</name>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='1' port='0x8'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0' multifunction='on'/>
    </controller>
    <controller type='pci' index='2' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='2' port='0x9'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x1'/>
    </controller>
    <interface type='network'>
      <mac address='52:54:00:11:22:33'/>
      <source network='default'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x0a' slot='0x00' function='0x0'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'>
        <zpci uid='0x0001' fid='0x00000000'/>
      </address>
    </hostdev>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


def test_identical_to_itself():
    assert layout.compare_xml(BASE, BASE) == []


def test_spelling_order_and_non_pci_details_are_ignored():
    other = (BASE.replace("bus='0x02' slot='0x00'", "bus='2' slot='0'")
             .replace("52:54:00:11:22:33", "52:54:00:aa:bb:cc")
             .replace("unit='0'", "unit='1'")
             .replace("port='0x9'", "port='9'"))
    # move the interface before the disks: identity, not position, matches devices
    iface = re.search(r"    <interface.*?</interface>\n", other, re.S).group(0)
    other = other.replace(iface, "").replace("    <disk type='file' device='disk'>", iface + "    <disk type='file' device='disk'>", 1)
    assert layout.compare_xml(BASE, other) == []


@pytest.mark.parametrize("old,new,expect", [
    ("bus='0x02' slot='0x00'", "bus='0x02' slot='0x01'", "disk vda"),
    ("function='0x0' multifunction='on'", "function='0x0'", "controller pci index=1"),
    ("<target chassis='2' port='0x9'/>", "<target chassis='2' port='0xa'/>", "controller pci index=2"),
    ("<model name='pcie-root-port'/>\n      <target chassis='1'", "<model name='ioh3420'/>\n      <target chassis='1'",
     "controller pci index=1"),
    ("uid='0x0001'", "uid='0x0002'", "hostdev 0000:0a:00.0"),
    ("<source network='default'/>\n      <model type='virtio'/>\n      <address type='pci' domain='0x0000' bus='0x01' "
     "slot='0x00' function='0x0'/>", "<source network='default'/>\n      <model type='virtio'/>",
     "interface #0"),
])
def test_a_change_is_reported(old, new, expect):
    assert old in BASE
    diffs = layout.compare_xml(BASE, BASE.replace(old, new, 1))
    assert len(diffs) == 1, [str(d) for d in diffs]
    assert str(diffs[0]).startswith(expect), str(diffs[0])
    assert diffs[0].signature


def test_missing_and_extra_pci_controllers_are_reported():
    extra = BASE.replace("<memballoon", "<controller type='pci' index='3' model='pcie-root-port'/>\n    <memballoon")
    diffs = layout.compare_xml(BASE, extra)
    assert [d.what for d in diffs] == ["extra"]
    diffs = layout.compare_xml(extra, BASE)
    assert [d.what for d in diffs] == ["missing"]


def test_device_without_pci_address_on_both_sides_is_equal():
    a = BASE.replace("<memballoon model='virtio'/>", "<memballoon model='virtio'>\n"
                     "      <address type='ccw' cssid='0xfe' ssid='0x0' devno='0x0000'/>\n    </memballoon>")
    assert layout.compare_xml(BASE, a) == []


def _corpus_outputs(n=None):
    if CORPUS is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=ABSENT), id="corpus-absent")]
    files = sorted((CORPUS / "accept").glob("*.out.xml"))
    step = max(1, len(files) // n) if n else 1
    return [pytest.param(f, id=f.name[: -len(".out.xml")]) for f in files[::step]]


@pytest.mark.parametrize("path", _corpus_outputs(25))
def test_corpus_output_against_itself_and_a_mutation(path):
    text = path.read_text()
    assert layout.compare_xml(text, text) == []
    # move the first explicit PCI address one slot further: exactly one difference
    m = re.search(r"<address type='pci' domain='0x0000' bus='0x([0-9a-f]{2})' slot='0x([0-9a-f]{2})'", text)
    if m is None:
        pytest.skip("no PCI address in this case")
    slot = int(m.group(2), 16)
    moved = text[:m.start(2)] + f"{(slot + 1) % 32:02x}" + text[m.end(2):]
    diffs = layout.compare_xml(text, moved)
    assert len(diffs) == 1, [str(d) for d in diffs]
    assert "address" in diffs[0].what or "address" in str(diffs[0])
    # drop every <controller type='pci'> but the root: each one is reported missing
    dropped = re.sub(r"\s*<controller type='pci' index='[1-9]\d*'[^>]*/>", "", text)
    dropped = re.sub(r"\s*<controller type='pci' index='[1-9]\d*'[^>]*[^/]>.*?</controller>", "", dropped, flags=re.S)
    n_ctrl = len(re.findall(r"<controller type='pci' index='[1-9]", text))
    missing = [d for d in layout.compare_xml(text, dropped) if d.what == "missing"]
    assert len(missing) == n_ctrl


def test_golden_expectations_parse():
    for p in sorted(GOLDEN.glob("*.libvirt.xml")):
        text = p.read_text()
        # boards without PCI (integratorcp, spike) have nothing to describe
        has_pci = "<address type='pci'" in text or "<controller type='pci'" in text
        assert bool(layout.describe(text)) == has_pci, p.name
