"""Guest proof of plans: boot Linux under QEMU (TCG) on planned topologies and check from inside.

``pciplan verify --guest`` (``pciplan.guest``) boots a Debian kernel with a
busybox initramfs on the QEMU command line of a plan and compares what the
guest enumerated with the plan.  This file has

* unit tests of the pieces (cpio writer, module order, console parsing, the
  plan/guest comparison) that need no QEMU;
* the proof over a representative set of plans: shared-corpus cases, seeded
  random domains on q35, aarch64 virt, pc and armv7l virt, all of which must pass;
* negative controls that must fail: a plan edited to move a device (checked
  against a guest booted on the original plan) and a guest booted with
  ``pci=nomsi``;
* the ``verify-guest`` CLI and the ``--kernel/--initrd`` override.

Environment (counts make the run longer or shorter; defaults keep it to a few
minutes on 2 cores):

    PCIPLAN_GUEST_TESTS=0      skip every test that boots a guest
    PCIPLAN_GUEST_CORPUS=10    shared-corpus cases (skipped when the corpus is absent)
    PCIPLAN_GUEST_Q35=14       random q35 domains
    PCIPLAN_GUEST_VIRT=14      random aarch64 virt domains
    PCIPLAN_GUEST_PC=6         random pc (i440fx) domains
    PCIPLAN_GUEST_ARMV7=3      random armv7l virt domains
    PCIPLAN_GUEST_SEED=8       seed of the random domains
    PCIPLAN_GUEST_JOBS=2       guests booted in parallel (one, beside the rest of the suite,
                               until the booting tests, which run last, are reached)
    PCIPLAN_GUEST_TIMEOUT=300  seconds one guest may take

The guest kernel and busybox come from Debian's packages (``apt-get
download``) on first use and are cached (``$PCIPLAN_GUEST_CACHE``, default
``~/.cache/pciplan/guest``); without apt/dpkg-deb or QEMU the booting tests
skip with the reason.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import shutil
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from pciplan import api, topology, xmlio
from pciplan.errors import PlanError
from pciplan.guest import check, cpio, drivers, format_report, image, kmod, report
from pciplan.qemuargs import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support.paths import CORPUS_ABSENT, corpus_dir  # noqa: E402

try:
    from support import randomdomain
except ImportError:  # pragma: no cover - the generator is optional
    randomdomain = None


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


BOOTS = os.environ.get("PCIPLAN_GUEST_TESTS", "1") != "0"
N_CORPUS = _env_int("PCIPLAN_GUEST_CORPUS", 10)
N_Q35 = _env_int("PCIPLAN_GUEST_Q35", 14)
N_VIRT = _env_int("PCIPLAN_GUEST_VIRT", 14)
N_PC = _env_int("PCIPLAN_GUEST_PC", 6)
N_ARMV7 = _env_int("PCIPLAN_GUEST_ARMV7", 3)
SEED = _env_int("PCIPLAN_GUEST_SEED", 8)
JOBS = max(1, _env_int("PCIPLAN_GUEST_JOBS", 2))
TIMEOUT = float(_env_int("PCIPLAN_GUEST_TIMEOUT", 300))

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: representative corpus cases, in the order they are taken: every kind of bridge and port,
#: both x86 machines and aarch64, USB companions, multifunction, expanders, sound, video
CORPUS_CASES = [
    "q35-virt-manager-basic",
    "aarch64-virt-default-models",
    "pcie-switch-downstream-port",
    "pci-bridge",
    "x86_64-pc-graphics",
    "usb-ich9-companion",
    "pci-expander-bus",
    "q35-multifunction.as-aarch64-virt",
    "aarch64-traditional-pci",
    "pcie-root-port",
    "sound-device.as-q35",
    "video-qxl-sec-device.as-q35",
    "pci-many",
    "net-virtio-device.as-aarch64-virt",
    "virtio-transitional.as-aarch64-virt",
    "q35-usb2-multi",
]


# --------------------------------------------------------------------------- unit tests
def test_cpio_newc_roundtrip_and_alignment():
    w = cpio.Writer()
    w.directory("bin")
    w.file("bin/busybox", b"\x7fELF" + b"x" * 5, 0o755)
    w.symlink("bin/sh", "busybox")
    w.chardev("dev/console", 5, 1)
    w.file("init", b"#!/bin/sh\n", 0o755)
    data = w.getvalue()
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert data.rstrip(b"\0").endswith(b"TRAILER!!!")
    entries = cpio.read(data)
    assert entries["bin/busybox"] == (0o100755, b"\x7fELFxxxxx")
    assert entries["bin/sh"] == (0o120777, b"busybox")
    assert entries["dev/console"][0] == 0o020600
    assert entries["init"][1] == b"#!/bin/sh\n"
    # every header starts 4-byte aligned
    for m in re.finditer(rb"070701", data):
        assert m.start() % 4 == 0
    # deterministic
    w2 = cpio.Writer()
    w2.file("a", b"1")
    w3 = cpio.Writer()
    w3.file("a", b"1")
    assert w2.getvalue() == w3.getvalue()
    with pytest.raises(ValueError):
        w4 = cpio.Writer()
        w4.file("a", b"")
        w4.file("/a", b"")


def test_initramfs_has_init_busybox_and_modules():
    data = image.build_initramfs(b"BB", {"virtio_net": b"KO"})
    entries = cpio.read(data)
    assert entries["init"][0] & 0o777 == 0o755
    assert entries["init"][1].startswith(b"#!/bin/sh")
    assert entries["bin/busybox"][1] == b"BB"
    assert entries["bin/insmod"][1] == b"busybox"
    assert entries["lib/modules/virtio_net.ko"][1] == b"KO"
    over = cpio.read(image.overlay_initramfs())
    assert list(over) == ["init"]


def _elf64_with_modinfo(fields: list[str]) -> bytes:
    """A minimal little-endian ELF64 object with a .modinfo section."""
    import struct
    modinfo = b"".join(f.encode() + b"\0" for f in fields)
    shstr = b"\0.modinfo\0.shstrtab\0"
    off_modinfo = 64
    off_shstr = off_modinfo + len(modinfo)
    shoff = off_shstr + len(shstr)
    shoff += -shoff % 8
    hdr = bytearray(64)
    hdr[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", hdr, 0x28, shoff)
    struct.pack_into("<HHH", hdr, 0x3A, 64, 3, 2)
    body = bytes(hdr) + modinfo + shstr
    body += b"\0" * (shoff - len(body))
    sec = struct.Struct("<IIQQQQIIQQ")
    body += sec.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    body += sec.pack(1, 1, 0, 0, off_modinfo, len(modinfo), 0, 0, 1, 0)
    body += sec.pack(10, 3, 0, 0, off_shstr, len(shstr), 0, 0, 1, 0)
    return body


def test_modinfo_and_load_order():
    info = kmod.read_modinfo(_elf64_with_modinfo(
        ["alias=virtio:d00000001v*", "depends=virtio,failover-x", "softdep=pre: crc32c",
         "name=virtio_net", "vermagic=6.1.0 SMP"]), "kernel/drivers/net/virtio_net.ko")
    assert info.name == "virtio_net"
    assert info.depends == ("virtio", "failover-x")
    assert info.softdeps == ("crc32c",)
    assert info.aliases == ("virtio:d00000001v*",)
    assert kmod.module_name("drivers/usb/host/xhci-pci.ko") == "xhci_pci"
    mods = {
        "virtio_net": kmod.ModInfo("virtio_net", "x", ("virtio", "net_failover")),
        "net_failover": kmod.ModInfo("net_failover", "x", ("failover",)),
        "failover": kmod.ModInfo("failover", "x"),
        "virtio": kmod.ModInfo("virtio", "x", ("virtio_ring",)),
        "virtio_ring": kmod.ModInfo("virtio_ring", "x"),
        "virtio_pci": kmod.ModInfo("virtio_pci", "x", ("virtio", "virtio_ring")),
    }
    order = kmod.load_order(["virtio_pci", "virtio_net", "nope", "built_in"], mods, {"built_in"})
    assert order.order == ["virtio_ring", "virtio", "virtio_pci", "failover", "net_failover", "virtio_net"]
    assert order.missing == ["nope"]


def test_driver_table_covers_every_device_qemuargs_emits():
    # every -device model the qemu-args table can produce for x86/ARM has IDs to check
    names = {"pcie-root-port", "pci-bridge", "pcie-pci-bridge", "x3130-upstream", "xio3130-downstream",
             "i82801b11-bridge", "pxb", "pxb-pcie", "qemu-xhci", "nec-usb-xhci", "ich9-usb-ehci1",
             "ich9-usb-uhci1", "ich9-usb-uhci2", "ich9-usb-uhci3", "piix3-usb-uhci", "piix4-usb-uhci",
             "usb-ehci", "pci-ohci", "e1000", "e1000e", "rtl8139", "vmxnet3", "ich9-ahci", "piix3-ide",
             "lsi53c895a", "mptsas1068", "megasas", "pvscsi", "am53c974", "dc390", "intel-hda",
             "ich9-intel-hda", "AC97", "ES1370", "VGA", "cirrus-vga", "bochs-display", "vmware-svga",
             "qxl", "qxl-vga", "virtio-vga", "virtio-gpu-pci", "i6300esb", "ivshmem-plain", "pci-serial",
             "virtio-net-pci", "virtio-net-pci-transitional", "virtio-net-pci-non-transitional",
             "virtio-blk-pci", "virtio-scsi-pci", "virtio-serial-pci", "virtio-balloon-pci",
             "virtio-rng-pci", "virtio-9p-pci", "virtio-keyboard-pci", "virtio-mouse-pci",
             "virtio-tablet-pci", "virtio-iommu-pci", "virtio-mem-pci", "virtio-pmem-pci"}
    for n in names:
        k = drivers.kind(n)
        assert k is not None and k.ids, n
    assert drivers.kind("virtio-net-pci").ids == ((0x1AF4, 0x1000), (0x1AF4, 0x1041))
    assert drivers.kind("virtio-net-pci-non-transitional").ids == ((0x1AF4, 0x1041),)
    assert drivers.kind("virtio-net-pci-transitional").ids == ((0x1AF4, 0x1000),)
    assert drivers.kind("virtio-net-pci").virtio and not drivers.kind("e1000e").virtio
    assert "virtio_pci" in drivers.kind("virtio-blk-pci").modules


CONSOLE = """\
[    0.000000] Linux version 6.1.0
PCIPLAN init 1.50
PCIPLAN begin 6.1.0-56-amd64 2.75
PCIPLAN dev 0000:00:00.0 8086 29c0 060000 unbound - msi=0 msix=0 irq=0
PCIPLAN cfg 0000:00:00.0
 86 80 c0 29 00 00 00 00 00 00 00 06 00 00 00 00
 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
 00 00 00 00 00 00 00 00 00 00 00 00 f4 1a 00 11
 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
PCIPLAN dev 0000:00:01.0 1b36 000c 060400 MSI-X pcieport msi=0 msix=1 irq=21
PCIPLAN bridge 0000:00:01.0 1 1
PCIPLAN cfg 0000:00:01.0
 36 1b 0c 00 07 05 10 00 00 00 04 06 00 00 81 00
 00 00 00 00 00 00 00 00 00 01 01 00 f1 01 00 00
 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
 00 00 00 00 40 00 00 00 00 00 00 00 0a 01 00 00
 10 58 42 00 00 00 00 00 00 00 00 00 00 00 00 00
 00 00 00 00 00 00 00 00 11 00 00 80 00 00 00 00
PCIPLAN dev 0000:01:00.0 1af4 1041 020000 MSI-X virtio-pci msi=0 msix=3 irq=21
[    3.1] a kernel message in between
PCIPLAN cfg 0000:01:00.0
 f4 1a 41 10 07 05 10 00 01 00 00 02 00 00 00 00
 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
 00 00 00 00 00 00 00 00 00 00 00 00 f4 1a 01 11
 00 00 00 00 40 00 00 00 00 00 00 00 0a 01 00 00
 11 00 03 80 01 00 00 00 01 08 00 00 00 00 00 00
PCIPLAN dev 0000:01:00.1 1234 1111 030000 INTx bochs-drm msi=0 msix=0 irq=0
PCIPLAN cfg 0000:01:00.1
 34 12 11 11 07 00 00 00 02 00 00 03 00 00 00 00
 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
 00 00 00 00 00 00 00 00 00 00 00 00 f4 1a 00 11
 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
PCIPLAN dev 0000:02:01.0 8086 25ab 088000 INTx i6300ESB timer msi=0 msix=0 irq=0
PCIPLAN insmod-failed snd_hda_intel
PCIPLAN end 4.00
[    4.1] reboot: Power down
"""


def test_parse_console_report():
    rep = report.parse(CONSOLE)
    assert rep.complete and rep.kernel == "6.1.0-56-amd64"
    assert (rep.init_at, rep.began, rep.ended) == (1.5, 2.75, 4.0)
    assert rep.insmod_failed == ["snd_hda_intel"]
    assert sorted(report.fmt(a) for a in rep.devices) == [
        "0000:00:00.0", "0000:00:01.0", "0000:01:00.0", "0000:01:00.1", "0000:02:01.0"]
    assert rep.at((0, 2, 1, 0)).driver == "i6300ESB timer"
    port = rep.at((0, 0, 1, 0))
    assert (port.secondary, port.subordinate) == (1, 1)
    caps = port.caps
    assert caps.pcie_type == 4 and caps.msix and caps.msix_enabled and caps.msix_table == 1
    nic = rep.at((0, 1, 0, 0))
    assert nic.ids == "1af4:1041" and nic.mode == "MSI-X" and nic.driver == "virtio-pci"
    assert nic.caps.msix_table == 4 and nic.pin == 1
    # a driver, no MSI, no pin and no MSI capability: no interrupt at all
    vga = rep.at((0, 1, 0, 1))
    assert vga.mode == "none" and not vga.has_interrupt
    assert not report.parse("PCIPLAN begin x 1\nPCIPLAN dev 0000:00:00.0 8086").complete


def _planned(xml: str):
    doc = xmlio.load(xml)
    return topology.build(api.plan_document(doc))


Q35_SMALL = """<domain type='kvm'><name>g</name><memory>524288</memory>
<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>
<interface type='user'><model type='virtio'/></interface>
<controller type='usb' model='qemu-xhci'/>
<memballoon model='none'/>
</devices></domain>"""


def _fake_console(topo, moves: dict | None = None, mode: str = "MSI-X", secondary_shift: int = 0,
                  modes: dict | None = None, hide=()) -> str:
    """What a guest would print for ``topo`` (bus numbers = plan indexes + shift); ``modes``:
    another interrupt mode for some (bus, slot, function)s; ``hide``: (bus, slot, function)s
    the guest does not show."""
    cfg = build(topo)
    lines = ["PCIPLAN begin fake 1.0"]
    for e in check.expectations(cfg):
        a = e.address
        if (a.bus, a.slot, a.function) in hide:
            continue
        bus = a.bus + (secondary_shift if a.bus else 0)
        slot = (moves or {}).get((a.bus, a.slot), a.slot)
        vid, did = e.kind.ids[-1] if e.kind and e.kind.ids else (0x1234, 0x5678)
        m = "MSI-X" if (e.bridge or e.fixed) else (modes or {}).get((a.bus, a.slot, a.function), mode)
        lines.append(f"PCIPLAN dev 0000:{bus:02x}:{slot:02x}.{a.function} {vid:04x} {did:04x} 020000 {m} drv "
                     f"msi=0 msix={1 if m == 'MSI-X' else 0} irq=10")
        if e.provides is not None:
            sec = e.provides + secondary_shift
            lines.append(f"PCIPLAN bridge 0000:{bus:02x}:{slot:02x}.{a.function} {sec} {sec}")
        cfgspace = bytearray(64)
        cfgspace[6] = 0x10
        cfgspace[0x34] = 0x40
        cfgspace[0x3D] = 1
        cfgspace += bytes([0x11, 0, 0x00, 0x80])
        lines.append(f"PCIPLAN cfg 0000:{bus:02x}:{slot:02x}.{a.function}")
        lines.append(" ".join(f"{b:02x}" for b in cfgspace))
    lines.append("PCIPLAN end 2.0")
    return "\n".join(lines) + "\n"


def test_compare_maps_bus_numbers_through_bridges():
    topo = _planned(Q35_SMALL)
    res = check.compare(topo, build(topo), report.parse(_fake_console(topo, secondary_shift=3)))
    assert res.ok, res.failures()
    assert res.bus_map[0] == 0 and all(n == i + 3 for i, n in res.bus_map.items() if i)
    rows = {r.expect.driver: r for r in res.rows}
    assert rows["virtio-net-pci"].seen.addr[1] == rows["virtio-net-pci"].expect.address.bus + 3


def test_compare_finds_a_moved_device_and_intx():
    topo = _planned(Q35_SMALL)
    cfg = build(topo)
    nic = next(e for e in check.expectations(cfg) if e.driver == "virtio-net-pci")
    moved = check.compare(topo, cfg, report.parse(
        _fake_console(topo, moves={(nic.address.bus, nic.address.slot): 5})))
    assert not moved.ok
    text = "\n".join(moved.failures())
    assert "nothing at guest address" in text and "which the plan does not have" in text
    intx = check.compare(topo, cfg, report.parse(_fake_console(topo, mode="INTx")))
    assert not intx.ok
    assert any("uses INTx, not MSI-X" in f for f in intx.failures())
    incomplete = check.compare(topo, cfg, report.parse(_fake_console(topo).replace("PCIPLAN end 2.0", "")))
    assert not incomplete.ok


PC_NO_FUNCTION_0 = """<domain type='kvm'><name>g</name><memory>524288</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features><devices>
<interface type='user'><model type='virtio'/><address type='pci' bus='0' slot='6' function='1'/></interface>
<interface type='user'><model type='virtio'/><address type='pci' bus='0' slot='6' function='2'/></interface>
<interface type='user'><model type='virtio'/></interface>
<memballoon model='none'/>
</devices></domain>"""


def test_compare_expects_nothing_of_a_slot_without_function_0():
    topo = _planned(PC_NO_FUNCTION_0)
    cfg = build(topo)
    hidden = {(0, 6, 1), (0, 6, 2)}  # (a guest skips slot 6: no function 0 there)
    res = check.compare(topo, cfg, report.parse(_fake_console(topo, hide=hidden)))
    assert res.ok, res.failures()
    assert sorted(r.status for r in res.rows if r.seen is None) == [check.UNSEEN_NO_FN0] * 2
    # the other NIC still has to be where planned
    nic = next(e for e in check.expectations(cfg) if e.driver == "virtio-net-pci" and e.address.function == 0)
    gone = check.compare(topo, cfg, report.parse(
        _fake_console(topo, hide=hidden | {(nic.address.bus, nic.address.slot, 0)})))
    assert not gone.ok and any("nothing at guest address" in f for f in gone.failures())


def test_compare_takes_intx_for_exhausted_msi_vectors_not_for_a_placement():
    topo = _planned(PC_NO_FUNCTION_0.replace("slot='6' function='1'", "slot='7'")
                    .replace("slot='6' function='2'", "slot='8'"))
    cfg = build(topo)
    nics = [e.address for e in check.expectations(cfg) if e.driver == "virtio-net-pci"]
    some = {(a.bus, a.slot, a.function): "INTx" for a in nics[1:]}
    res = check.compare(topo, cfg, report.parse(_fake_console(topo, modes=some)))
    assert res.vectors_exhausted() and res.ok, res.failures()
    assert any(r.status == "INTx (MSI vectors exhausted)" for r in res.rows)
    # every one on INTx (pci=nomsi, or MSI-X broken): a failure
    assert not check.compare(topo, cfg, report.parse(_fake_console(topo, mode="INTx"))).ok


def test_compare_does_not_ask_a_driver_behind_virtio_iommu():
    with_iommu = Q35_SMALL.replace("<memballoon", "<iommu model='virtio'/><memballoon").replace(
        "</os>", "</os><features><acpi/></features>")
    for xml, ok in ((with_iommu, True), (Q35_SMALL, False)):
        topo = _planned(xml)
        res = check.compare(topo, build(topo), report.parse(_fake_console(topo, mode="unbound")))
        assert res.ok is ok, res.failures()


@pytest.mark.parametrize("err, failures, spawns, ok", [
    (errno.EFAULT, 2, 3, True),                        # execve under a sandboxing kernel, then fine
    (errno.EAGAIN, 99, 4, False),                      # never recovers: given up after SPAWN_ATTEMPTS
    (errno.ENOENT, 99, 1, False),                      # no such program: at once
])
def test_a_transient_spawn_failure_is_retried_and_a_missing_program_is_not(monkeypatch, err, failures,
                                                                          spawns, ok):
    """A host short of memory or processes for a moment must not fail a guest proof;
    a program that is not there must fail it at once."""
    import subprocess
    from pciplan.guest import boot
    calls = []
    real = subprocess.Popen

    def popen(args, **kw):
        calls.append(args)
        if len(calls) <= failures:
            raise OSError(err, os.strerror(err), args[0])
        return real(["true"], **kw)

    monkeypatch.setattr(boot.time, "sleep", lambda s: None)
    monkeypatch.setattr(subprocess, "Popen", popen)
    assert boot.SPAWN_ATTEMPTS == 4
    if ok:
        assert boot.run(["qemu-system-x86_64", "-version"], timeout=10).returncode == 0
    else:
        with pytest.raises(OSError):
            boot.run(["qemu-system-x86_64"], timeout=10)
    assert len(calls) == spawns


def test_memory_is_enlarged_for_the_guest():
    from pciplan.guest import _enlarge_memory
    cfg = build(_planned(Q35_SMALL))
    cfg.memory = "128M,slots=2,maxmem=640M"
    _enlarge_memory(cfg)
    assert cfg.memory == "512M,slots=2,maxmem=1024M"
    cfg.memory = "256M"
    cfg.objects = [("-object", "memory-backend-ram,id=ram-node0,size=128M"), ("-numa", "node,nodeid=0"),
                   ("-object", "memory-backend-ram,id=ram-node1,size=128M"), ("-numa", "node,nodeid=1")]
    _enlarge_memory(cfg)
    assert cfg.memory == "512M"
    assert cfg.objects[0][1].endswith("size=256M") and cfg.objects[2][1].endswith("size=256M")


# --------------------------------------------------------------------------- booting guests
def _why_no_boots() -> str | None:
    if not BOOTS:
        return "PCIPLAN_GUEST_TESTS=0"
    return None


_images: dict[str, object] = {}
_images_lock = threading.Lock()


def guest_image(arch: str):
    """The cached Debian guest for ``arch``; pytest.skip with the reason when it cannot be had."""
    why = _why_no_boots()
    if why:
        pytest.skip(why)
    spec = image.arch_spec(arch).name
    qemu = image.arch_spec(arch).qemu
    if shutil.which(qemu) is None:
        pytest.skip(f"{qemu} not installed")
    with _images_lock:
        if spec not in _images:
            try:
                _images[spec] = image.image_for(spec)
            except image.GuestImageError as err:
                _images[spec] = err
    got = _images[spec]
    if isinstance(got, Exception):
        pytest.skip(f"no {spec} guest image: {got}")
    return got


class _Pool:
    """Guests booted ``JOBS`` at a time; each case is submitted once and awaited by its test.

    While the rest of the suite runs (``start_boots``, called by conftest.py at collection),
    only one guest boots, on the core the suite leaves free; ``widen`` lets ``JOBS`` boot once
    the booting tests, which run last, are reached.
    """

    def __init__(self) -> None:
        self.ex = ThreadPoolExecutor(JOBS, thread_name_prefix="guest")
        self.futures: dict[str, Future] = {}
        self.lock = threading.Lock()
        self.gate = threading.Semaphore(JOBS)
        self.held = 0

    def narrow(self) -> None:
        """One boot at a time (called before anything is submitted, so it never waits)."""
        while self.held < JOBS - 1:
            self.gate.acquire()
            self.held += 1

    def widen(self) -> None:
        while self.held:
            self.gate.release()
            self.held -= 1

    def _gated(self, fn, *args, **kwargs):
        with self.gate:
            return fn(*args, **kwargs)

    def submit(self, key: str, fn, *args, **kwargs) -> Future:
        with self.lock:
            if key not in self.futures:
                self.futures[key] = self.ex.submit(self._gated, fn, *args, **kwargs)
            return self.futures[key]

    def stop(self) -> None:
        """Drop the boots not started (a run cut short must not wait for them)."""
        self.widen()
        self.ex.shutdown(wait=False, cancel_futures=True)


_pool = _Pool()
#: case -> (wall seconds QEMU ran, guest uptime when the report ended), for the summary line
_TIMES: dict[str, tuple[float, float]] = {}


def boot_summary() -> str | None:
    """One line on the guests this run booted (conftest.py prints it at the end)."""
    if not _TIMES:
        return None
    walls = sorted(w for w, _ in _TIMES.values())
    ups = sorted(u for _, u in _TIMES.values())
    return (f"guest boots: {len(walls)}, up to {JOBS} at a time; wall per guest median {walls[len(walls) // 2]:.1f} s "
            f"(min {walls[0]:.1f}, max {walls[-1]:.1f}); guest uptime at report end median "
            f"{ups[len(ups) // 2]:.1f} s")


def _boot(topo, **kwargs):
    from pciplan.guest import verify_guest
    img = guest_image(topo.arch)
    return verify_guest(topo, img=img, timeout=TIMEOUT, **kwargs)


# The cases: (id, loader) where loader() -> topology (or pytest.skip)
def _corpus_loader(name: str):
    def load():
        d = corpus_dir()
        if d is None:
            pytest.skip(CORPUS_ABSENT)
        path = d / "accept" / f"{name}.in.xml"
        if not path.is_file():
            pytest.skip(f"corpus case {name} not found in {d}")
        return _planned(path.read_text())
    return load


def _random_cases(family: str, count: int) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    if randomdomain is None or count <= 0:
        return out
    index = 0
    while len(out) < count and index < count * 6:
        g = randomdomain.generate(SEED, index, family=family)
        index += 1
        try:
            topo = _planned(g.xml)
        except PlanError:
            continue        # one libvirt itself would refuse
        out.append((f"random-{family}-{SEED}-{g.index}-{g.style}", lambda t=topo: t))
    return out


def _cases() -> list[tuple[str, object]]:
    cases = [(f"corpus-{n}", _corpus_loader(n)) for n in CORPUS_CASES[:N_CORPUS]]
    cases += _random_cases("q35", N_Q35)
    cases += _random_cases("aarch64-virt", N_VIRT)
    cases += _random_cases("pc", N_PC)
    cases += _random_cases("armv7l-virt", N_ARMV7)
    return cases


CASES = dict(_cases()) if BOOTS else {}
_topologies: dict[str, object] = {}


#: the proof cases this run selected (start_boots); empty when it was not called
_selected: list[str] = []


def _submit_all(keys) -> None:
    """Queue the cases, so that the pool stays busy while the tests wait in order."""
    for key in keys:
        if key in _topologies or key not in CASES:
            continue
        try:
            _topologies[key] = CASES[key]()
        except BaseException as err:  # noqa: BLE001 - a skip, kept for its test
            _topologies[key] = err
            continue
        try:
            guest_image(_topologies[key].arch)
        except BaseException:  # noqa: BLE001 - the test reports the skip
            continue
        _pool.submit(key, _boot, _topologies[key])


def _example(name: str):
    return _planned((EXAMPLES / name).read_text())


def _moved_nic_boot() -> tuple[Future, int]:
    """The aarch64 example booted as planned, to be checked against its plan with the NIC
    moved to the last empty root port's bus: (the boot, that bus)."""
    topo = _example("aarch64-guest.xml")
    guest_image(topo.arch)
    doc = xmlio.load((EXAMPLES / "aarch64-guest.xml").read_text())
    api.plan_document(doc)
    planned = xmlio.tostring(doc)
    # move the NIC (bus 0x01, alone on its root port) to the last root port's bus
    nic = next(f for f in topo.functions if f.device.tag == "interface")
    last = max(b.index for b in topo.buses.values() if b.model.name == "pcie-root-port"
               and not b.functions)
    pattern = (f"<address type='pci' domain='0x0000' bus='0x{nic.address.bus:02x}' "
               f"slot='0x{nic.address.slot:02x}' function='0x0'/>")
    assert planned.count(pattern) == 1, pattern
    moved = _planned(planned.replace(pattern, pattern.replace(f"bus='0x{nic.address.bus:02x}'",
                                                              f"bus='0x{last:02x}'")))
    assert [f.address.bus for f in moved.functions if f.device.tag == "interface"] == [last]
    return _pool.submit("negative-moved", _boot, moved, boot_topology=topo), last


def _nomsi_boot() -> Future:
    """The q35 example booted with pci=nomsi."""
    topo = _example("q35-guest.xml")
    guest_image(topo.arch)
    return _pool.submit("negative-nomsi", _boot, topo, append="pci=nomsi")


def start_boots(items, alone: bool) -> None:
    """Start the guests of the selected booting tests (``items``) now, in the background.

    conftest.py calls this once the run's tests are known, and runs the booting tests last:
    the guests boot, one at a time, beside the rest of the suite (``alone``: nothing else
    runs, so all ``JOBS`` at once).  A case that cannot be set up here is left to its test,
    which then reports why.
    """
    if not BOOTS:
        return
    if not alone:
        _pool.narrow()
    names = {item.originalname for item in items}
    _selected[:] = [item.callspec.params["key"] for item in items
                    if item.originalname == "test_guest_proof" and hasattr(item, "callspec")]
    _submit_all(_selected)
    for name, start in (("test_negative_control_moved_device_fails", _moved_nic_boot),
                        ("test_negative_control_pci_nomsi_fails", _nomsi_boot)):
        if name in names:
            try:
                start()
            except (Exception, pytest.skip.Exception):  # noqa: BLE001 - its test says why
                pass


def stop_boots() -> None:
    """The run is over (or cut short): boots not started are dropped."""
    _pool.stop()


@pytest.fixture(autouse=True)
def _all_jobs_once_boots_are_awaited(request):
    if request.node.get_closest_marker("guest_boot"):
        _pool.widen()


@pytest.mark.guest_boot
@pytest.mark.skipif(not BOOTS, reason="PCIPLAN_GUEST_TESTS=0")
@pytest.mark.parametrize("key", list(CASES) or ["none"])
def test_guest_proof(key):
    if key == "none":
        pytest.skip("no cases (PCIPLAN_GUEST_* counts are 0 or the random generator is missing)")
    why = _why_no_boots()
    if why:
        pytest.skip(why)
    _submit_all(_selected or list(CASES))
    topo = _topologies[key]
    if isinstance(topo, BaseException):
        raise topo
    guest_image(topo.arch)
    v = _pool.submit(key, _boot, topo).result()
    _TIMES[key] = (v.boot.elapsed, v.guest.ended or 0.0)
    assert v.ok, format_report(v)
    # the plan's every function is accounted for, and the guest reported in time
    assert v.guest.complete
    assert len(v.result.rows) == len(check.expectations(build(topo)))


@pytest.mark.guest_boot
def test_negative_control_moved_device_fails():
    """The aarch64 example booted as planned, checked against a plan with its NIC moved."""
    boot, last = _moved_nic_boot()
    v = boot.result()
    assert not v.ok
    text = "\n".join(v.result.failures())
    assert f"planned at 0000:{last:02x}:00.0: nothing at guest address" in text, text


@pytest.mark.guest_boot
def test_negative_control_pci_nomsi_fails():
    """The q35 example booted with pci=nomsi: virtio and PCIe endpoints fall back to INTx."""
    v = _nomsi_boot().result()
    assert not v.ok
    bad = [r for r in v.result.rows if not r.ok]
    assert bad and all("INTx" in r.status for r in bad)
    assert {r.expect.driver for r in bad} >= {"virtio-net-pci", "virtio-blk-pci", "qemu-xhci"}
    # where planned all the same
    assert all(r.seen is not None for r in v.result.rows)


@pytest.mark.guest_boot
def test_cli_verify_guest_reports_and_exits_0(tmp_path):
    from click.testing import CliRunner
    from pciplan.cli.guest import command
    guest_image("aarch64")
    log = tmp_path / "console.log"
    res = CliRunner().invoke(command, [str(EXAMPLES / "aarch64-guest.xml"), "--guest-log", str(log)])
    assert res.exit_code == 0, res.output
    assert "PLANNED" in res.output and "virtio-net-pci" in res.output
    assert re.search(r"^OK: \d+ planned functions where planned", res.output, re.M), res.output
    assert "PCIPLAN end" in log.read_text()


@pytest.mark.guest_boot
def test_cli_kernel_initrd_override(tmp_path):
    """--kernel/--initrd: a user kernel and initramfs (here Debian's, repacked) get pciplan's /init."""
    from click.testing import CliRunner
    from pciplan.cli.guest import command
    img = guest_image("x86_64")
    user_initrd = tmp_path / "user.cpio.gz"
    # the user's initramfs: the cached one with a different /init (pciplan's must win)
    entries = cpio.read(img.initrd.read_bytes())
    w = cpio.Writer()
    for name, (mode, body) in entries.items():
        if name == "init":
            body = b"#!/bin/sh\necho not pciplan\npoweroff -f\n"
        kind = mode & 0o170000
        if kind == 0o040000:
            w.directory(name, mode & 0o777)
        elif kind == 0o120000:
            w.symlink(name, body.decode())
        elif kind == 0o020000:
            w.chardev(name, 5, 1)
        else:
            w.file(name, body, mode & 0o777)
    # compressed, as users' are (level 1: level 9 takes 8 s of the test for the same proof)
    user_initrd.write_bytes(gzip.compress(w.getvalue(), compresslevel=1, mtime=0))
    res = CliRunner().invoke(command, [str(EXAMPLES / "q35-guest.xml"), "--kernel", str(img.fallback_kernel or img.kernel),
                                       "--initrd", str(user_initrd)])
    assert res.exit_code == 0, res.output
    assert "+ " + str(user_initrd) in res.output


def test_cli_bad_override_is_exit_2(tmp_path):
    from click.testing import CliRunner
    from pciplan.cli.guest import command
    res = CliRunner().invoke(command, [str(EXAMPLES / "q35-guest.xml"), "--kernel", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "no such file" in res.output
