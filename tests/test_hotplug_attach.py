"""``pciplan hotplug`` against a real libvirt 9.0 daemon and running TCG guests.

A small guest planned with ``--hotplug-ports 2`` is defined and started (no
disk, no kernel: it sits in firmware, which is all hot-plug needs).  Then:

* ``pciplan hotplug --connect --domain --attach`` attaches a NIC, and the live
  XML shows it at exactly the address pciplan printed;
* for devices attached by libvirt itself (``virsh attach-device --live``, no
  address), pciplan's prediction is libvirt's choice;
* when the ports are full, pciplan exits 1 with the fix and libvirt refuses too.

Every guest is destroyed and undefined, whatever happens.  The tests skip
(with the reason) when no daemon answers or libvirt-python is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support import libvirt_oracle

URI = os.environ.get("LIBVIRT_DEFAULT_URI", "qemu:///system")
FIX = "re-plan the domain with `pciplan plan --hotplug-ports N` and restart it"

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("libvirt") is None,
                       reason="libvirt-python is not installed (pip install -e '.[libvirt]')"),
    pytest.mark.skipif(not libvirt_oracle.available(URI),
                       reason=libvirt_oracle.unavailable_reason(URI) or "no libvirt daemon"),
]

GUEST = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='{arch}' machine='{machine}'>hvm</type></os>{features}
  <devices>
    <interface type='user'><mac address='52:54:00:10:00:01'/><model type='virtio'/></interface>
  </devices>
</domain>
"""

NIC = "<interface type='user'><mac address='{mac}'/><model type='{model}'/></interface>"
RNG = "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
DISK = ("<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        "<source file='{path}'/><target dev='{dev}' bus='virtio'/></disk>")
SCSI = "<controller type='scsi' index='{index}' model='virtio-scsi'/>"


@pytest.fixture(autouse=True)
def _daemon_up():
    """libvirt 9.0's daemon dies on a few inputs that the probes before these tests may draw
    at random; the oracle starts it again when it next asks, these tests use virsh directly."""
    libvirt_oracle.revive(URI)


def pciplan(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "pciplan", *args], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, f"pciplan {' '.join(args)}: {r.stderr}"
    return r


def virsh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def pci_of(xml: str) -> tuple[int, int, int, int] | None:
    a = ET.fromstring(xml).find("address")
    if a is None or a.get("type") != "pci":
        return None
    return tuple(int(a.get(k, "0"), 0) for k in ("domain", "bus", "slot", "function"))  # type: ignore[return-value]


def live_address(name: str, match) -> tuple[int, int, int, int] | None:
    """The PCI address of the first live device for which ``match(element)`` holds."""
    r = virsh("dumpxml", name)
    assert r.returncode == 0, r.stderr
    for el in ET.fromstring(r.stdout).find("devices"):
        if match(el):
            return pci_of(ET.tostring(el, encoding="unicode"))
    raise AssertionError(f"no such device in the live XML of {name}")


def by_mac(mac: str):
    return lambda el: el.tag == "interface" and el.find("mac") is not None and el.find("mac").get("address") == mac


def by_disk(dev: str):
    return lambda el: el.tag == "disk" and el.find("target") is not None and el.find("target").get("dev") == dev


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="pciplan-hotplug-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def guest(workdir, request):
    """Start a guest planned with --hotplug-ports 2; yields (name, planned xml)."""
    arch, machine, emulator, *acpi = request.param
    if shutil.which(emulator) is None:
        pytest.skip(f"{emulator} is not installed")
    name = f"pciplan-hotplug-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    src = workdir / "guest.xml"
    # QEMU hot-plugs into pc's pci.0 through ACPI only
    features = "\n  <features><acpi/></features>" if (acpi[0] if acpi else arch == "x86_64") else ""
    src.write_text(GUEST.format(name=name, arch=arch, machine=machine, features=features))
    planned = pciplan("plan", "--hotplug-ports", "2", str(src), check=True).stdout
    (workdir / "planned.xml").write_text(planned)
    defined = False
    try:
        r = virsh("define", str(workdir / "planned.xml"))
        assert r.returncode == 0, r.stderr
        defined = True
        r = virsh("start", name)
        if r.returncode != 0:
            pytest.skip(f"cannot start a TCG {machine} guest here: {r.stderr.strip()}")
        yield name, planned
    finally:
        if defined:
            virsh("destroy", name)
            virsh("undefine", name, "--nvram")
            if virsh("domstate", name).returncode == 0:
                virsh("undefine", name)


def write(workdir: Path, fname: str, text: str) -> str:
    p = workdir / fname
    p.write_text(text)
    return str(p)


def hotplug(name: str, device: str, *extra: str) -> subprocess.CompletedProcess:
    return pciplan("hotplug", "--connect", URI, "--domain", name, *extra, device)


Q35 = ("x86_64", "q35", "qemu-system-x86_64")
PC = ("x86_64", "pc", "qemu-system-x86_64")
VIRT = ("aarch64", "virt", "qemu-system-aarch64")
PSERIES = ("ppc64", "pseries", "qemu-system-ppc64")
PC_WITHOUT_ACPI = ("x86_64", "pc", "qemu-system-x86_64", False)


@pytest.mark.parametrize("guest", [Q35, VIRT], ids=["q35", "aarch64-virt"], indirect=True)
def test_attach_at_predicted_address_then_no_room(guest, workdir):
    name, planned = guest
    # --hotplug-ports 2: two empty root ports
    nic1 = write(workdir, "nic1.xml", NIC.format(mac="52:54:00:20:00:01", model="virtio"))
    r = hotplug(name, nic1, "--attach")
    assert r.returncode == 0, r.stderr
    predicted = pci_of(r.stdout)
    assert predicted is not None, r.stdout
    assert live_address(name, by_mac("52:54:00:20:00:01")) == predicted

    # libvirt chooses the second one itself: pciplan predicted it
    nic2 = write(workdir, "nic2.xml", NIC.format(mac="52:54:00:20:00:02", model="virtio"))
    r = hotplug(name, nic2)
    assert r.returncode == 0, r.stderr
    predicted2 = pci_of(r.stdout)
    assert predicted2 is not None and predicted2 != predicted
    a = virsh("attach-device", name, nic2, "--live")
    assert a.returncode == 0, a.stderr
    assert live_address(name, by_mac("52:54:00:20:00:02")) == predicted2

    # the ports are full: pciplan says so with the fix, libvirt refuses as well
    nic3 = write(workdir, "nic3.xml", NIC.format(mac="52:54:00:20:00:03", model="virtio"))
    r = hotplug(name, nic3, "--attach")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert FIX in r.stderr
    assert "No more available PCI slots" in r.stderr
    assert r.stdout == ""
    a = virsh("attach-device", name, nic3, "--live")
    assert a.returncode != 0 and "No more available PCI slots" in a.stderr, a.stderr


@pytest.mark.parametrize("guest", [Q35], ids=["q35"], indirect=True)
def test_conventional_pci_has_no_room_on_a_pcie_guest(guest, workdir):
    name, _ = guest
    e1000 = write(workdir, "e1000.xml", NIC.format(mac="52:54:00:30:00:01", model="e1000"))
    r = hotplug(name, e1000)
    assert r.returncode == 1
    assert "pcie-to-pci-bridge" in r.stderr
    a = virsh("attach-device", name, e1000, "--live")
    assert a.returncode != 0 and "No more available PCI slots" in a.stderr, a.stderr


@pytest.mark.parametrize("guest", [PC, PSERIES, Q35], ids=["pc", "pseries", "q35"], indirect=True)
def test_predictions_follow_libvirt(guest, workdir):
    """Attach a mix of devices one by one, each time predicting from the live XML
    and letting libvirt choose (pc and pSeries: every free root-bus slot is
    hot-pluggable; q35: the e1000 gets no slot, the others the spare ports)."""
    name, _ = guest
    img = workdir / "disk.img"
    img.write_bytes(b"\0" * 1024 * 1024)
    devices = [
        ("e1000", NIC.format(mac="52:54:00:40:00:01", model="e1000"), by_mac("52:54:00:40:00:01")),
        ("disk", DISK.format(path=img, dev="vdb"), by_disk("vdb")),
        ("virtio-nic", NIC.format(mac="52:54:00:40:00:02", model="virtio"), by_mac("52:54:00:40:00:02")),
        ("rng", RNG, lambda el: el.tag == "rng"),
        ("scsi", SCSI.format(index=3), lambda el: el.tag == "controller" and el.get("type") == "scsi"
         and el.get("index") == "3"),
    ]
    outcomes = []
    for what, text, match in devices:
        path = write(workdir, f"{what}.xml", text)
        r = hotplug(name, path)
        a = virsh("attach-device", name, path, "--live")
        if r.returncode == 1:
            assert "No more available PCI slots" in r.stderr, f"{what}: {r.stderr}"
            assert a.returncode != 0 and "No more available PCI slots" in a.stderr, \
                f"{what}: pciplan found no room, libvirt: {a.stdout} {a.stderr}"
            outcomes.append((what, None))
            continue
        assert r.returncode == 0, f"{what}: {r.stderr}"
        predicted = pci_of(r.stdout)
        assert a.returncode == 0, f"{what}: {a.stderr}"
        assert live_address(name, match) == predicted, what
        outcomes.append((what, predicted))
    placed = [w for w, p in outcomes if p is not None]
    assert len(placed) >= 2, outcomes


@pytest.mark.parametrize("guest", [PC_WITHOUT_ACPI], ids=["pc-without-acpi"], indirect=True)
def test_pc_without_acpi_takes_bridge_slots(guest, workdir):
    """QEMU hot-plugs into pc's root bus through ACPI only: --hotplug-ports adds a
    pci-bridge, and pciplan puts the NIC there, where QEMU takes it; libvirt left to
    choose picks the root bus, and QEMU refuses."""
    name, planned = guest
    assert "model='pci-bridge'" in planned
    nic = write(workdir, "nic.xml", NIC.format(mac="52:54:00:60:00:01", model="e1000"))
    r = hotplug(name, nic, "--attach")
    assert r.returncode == 0, r.stderr
    predicted = pci_of(r.stdout)
    assert predicted is not None and predicted[1] != 0, r.stdout
    assert live_address(name, by_mac("52:54:00:60:00:01")) == predicted
    nic2 = write(workdir, "nic2.xml", NIC.format(mac="52:54:00:60:00:02", model="e1000"))
    a = virsh("attach-device", name, nic2, "--live")
    assert a.returncode != 0 and "Bus 'pci.0' does not support hotplugging" in a.stderr, a.stderr


def test_a_shut_off_domain_is_refused(workdir):
    name = f"pciplan-hotplug-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    src = write(workdir, "off.xml", GUEST.format(name=name, arch="x86_64", machine="q35", features=""))
    r = virsh("define", src)
    assert r.returncode == 0, r.stderr
    try:
        nic = write(workdir, "nic.xml", NIC.format(mac="52:54:00:50:00:01", model="virtio"))
        r = hotplug(name, nic, "--attach")
        assert r.returncode == 1 and "the domain is not running" in r.stderr, r.stderr
        r = pciplan("hotplug", "--connect", URI, "--domain", f"{name}-missing", nic)
        assert r.returncode == 2 and "no domain" in r.stderr, r.stderr
    finally:
        virsh("undefine", name)
