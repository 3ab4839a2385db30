#!/usr/bin/env python3
"""Domains as virt-install writes them, through libvirt and through pciplan.

    python tests/support/virtinstallprobe.py -n 500 --seed 7 -j 2
    python tests/support/virtinstallprobe.py --seed 7 --index 12 --index 40   # details
    python tests/support/virtinstallprobe.py -n 2000 --seed 3 --save DIR -k aarch64

Most domains are not written by hand: virt-install (virt-manager's command line,
/usr/bin/virt-install) writes them from a few options.  This probe draws random but
realistic virt-install command lines (deterministic from ``--seed`` and the case index),
weighted toward what users commonly type: an x86 q35 guest with a disk or two and a NIC,
less often pc, i686, aarch64/armv7l ``virt``, ppc64le ``pseries``, s390x and riscv64
guests, and any of ``--disk``, ``--network``, ``--graphics``, ``--video``, ``--sound``,
``--controller``, ``--channel``, ``--console``, ``--serial``, ``--rng``, ``--memballoon``,
``--watchdog``, ``--tpm``, ``--input``, ``--hostdev``, ``--filesystem``,
``--memorybacking``, ``--iommu``, ``--vsock``, ``--panic``, ``--smartcard``,
``--redirdev``, ``--boot``, ``--features``, ``--cpu``, ``--vcpus``, ``--memory``,
``--numatune`` and ``--xml`` XPath edits, with device addresses pinned now and then.

Each command line gets ``--connect URI --print-xml --import`` (or ``--boot`` with a boot
device, one XML printed) and ``--check path_in_use=off`` (the probe's disk files are
shared by the cases the daemon holds at one moment).  virt-install runs in one process
for many command lines (tests/support/virtinstall_driver.py, under virt-install's own
interpreter; ``--one-by-one`` runs ``virt-install`` itself for each).  Its disks are empty
files in a transient storage pool the probe makes (``pciplan-viprobe`` at
/var/tmp/pciplan-viprobe): a path outside any pool makes virt-install define a pool for
its folder, and a disk with ``size=`` makes it create the file, even with --print-xml.
The XML's UUID and MAC addresses virt-install drew are replaced by ones drawn from the
seed, so a rerun asks the daemon nothing (the oracle cache).

The printed XML is asked of libvirt and pciplan (tests/support/difftest.py's run_case):
a failure is a different PCI layout, a refusal by pciplan of what libvirt accepts, or a
crash.  Command lines virt-install refuses are counted apart (they test virt-install).
libvirt refusals pciplan does not make are listed, not counted; refusals with another
first message are listed too.  (The host's own refusals, such as an emulated TPM without
swtpm, pciplan makes too: it asks the same host.)

Exit status: 0 no failure, 1 some failure, 2 libvirt or virt-install cannot be used.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support import difftest, editprobe, libvirt_oracle  # noqa: E402

DRIVER = Path(__file__).resolve().parent / "virtinstall_driver.py"
VIRT_INSTALL = "/usr/bin/virt-install"
#: the transient storage pool holding the disks the command lines name
POOL = "pciplan-viprobe"
POOL_DIR = Path("/var/tmp/pciplan-viprobe")
DISKS = [f"disk{i}.qcow2" for i in range(8)] + [f"disk{i}.img" for i in range(8)]
ISOS = ["cd0.iso", "cd1.iso", "cd2.iso"]
#: PCI devices of this kind of host (libvirt node devices virt-install can find); other
#: addresses are refused by virt-install
HOST_PCI = ("00:02.0", "00:03.0", "00:04.0", "00:05.0")
MISSING_PCI = ("03:00.0", "0000:81:00.1")


@dataclass
class Case:
    """One drawn command line and (once virt-install ran) the XML it printed."""
    name: str
    argv: list
    family: str
    options: list = field(default_factory=list)    # labels of what was drawn
    index: int = 0
    seed: str = ""
    xml: str = ""
    vi_rc: int | None = None
    vi_err: str = ""

    @property
    def edits(self):           # what editprobe's report prints for a case
        return self.options

    @property
    def command(self) -> str:
        return shlex.join(["virt-install"] + self.argv)


# -- the guests ---------------------------------------------------------------------------------
@dataclass
class Arch:
    """What virt-install is told about one kind of guest, and what suits it."""
    family: str
    weight: int
    args: list                   # choices of the arch/machine options (lists of words)
    osinfo: list
    nic_models: list
    disk_buses: list
    videos: list
    sounds: list
    watchdogs: list
    panics: list
    iommus: list
    usb_models: list
    pci_models: list             # PCI controllers a user adds
    tpm_models: list
    inputs: list
    x86: bool = False
    pcie: bool = False


ARCHES = [
    Arch("x86_64-q35", 40, [[], [], ["--machine", "q35"], ["--machine", "pc-q35-7.2"],
                            ["--machine", "pc-q35-6.2"], ["--arch", "x86_64"]],
         ["linux2022", "linux2022", "linux2020", "fedora37", "debian11", "ubuntu22.04", "rhel9.0",
          "rhel8.6", "centos-stream9", "win11", "win10", "win2k19", "win7", "generic",
          "freebsd13.1", "alpinelinux3.17", "opensuse15.4"],
         ["virtio", "virtio", "virtio", "e1000e", "e1000", "rtl8139"],
         ["virtio", "virtio", "virtio", "sata", "sata", "scsi", "scsi", "usb", "ide"],
         ["virtio", "qxl", "vga", "bochs", "ramfb", "cirrus", "none"],
         ["ich9", "ich6", "ac97", "es1370", "sb16", "usb", "none", "default"],
         ["i6300esb", "ib700", "default"], ["isa", "hyperv", "default"],
         ["intel", "virtio"],
         ["qemu-xhci", "nec-xhci", "ich9-ehci1", "piix3-uhci", "usb2", "usb3", "none"],
         ["pcie-root-port", "pcie-root-port", "pcie-to-pci-bridge", "dmi-to-pci-bridge",
          "pcie-switch-upstream-port", "pcie-expander-bus", "pci-bridge"],
         ["tpm-crb", "tpm-tis"],
         ["tablet,bus=usb", "tablet,bus=virtio", "keyboard,bus=virtio", "mouse,bus=ps2",
          "keyboard,bus=usb", "mouse,bus=virtio", "tablet"], x86=True, pcie=True),
    Arch("x86_64-pc", 14, [["--machine", "pc"], ["--machine", "pc-i440fx-7.2"],
                           ["--machine", "pc-i440fx-5.2"]],
         ["linux2022", "debian11", "rhel8.6", "win10", "win7", "winxp", "rhel6.10", "generic",
          "ubuntu20.04", "freebsd12.3"],
         ["virtio", "virtio", "e1000", "rtl8139", "e1000e"],
         ["virtio", "virtio", "ide", "sata", "scsi", "usb"],
         ["virtio", "qxl", "vga", "cirrus", "bochs", "none"],
         ["ich6", "ich9", "ac97", "es1370", "none", "default"],
         ["i6300esb", "ib700"], ["isa", "hyperv"], ["virtio", "intel"],
         ["piix3-uhci", "qemu-xhci", "ich9-ehci1", "usb2", "usb3", "nec-xhci", "none"],
         ["pci-bridge", "pci-bridge", "pci-expander-bus", "pcie-root-port"],
         ["tpm-tis", "tpm-crb"],
         ["tablet,bus=usb", "keyboard,bus=virtio", "mouse,bus=ps2", "tablet,bus=virtio"], x86=True),
    Arch("i686", 5, [["--arch", "i686"], ["--arch", "i686", "--machine", "pc"],
                     ["--arch", "i686", "--machine", "q35"]],
         ["debian11", "generic", "winxp", "win7", "alpinelinux3.17", "fedora30"],
         ["virtio", "e1000", "rtl8139", "e1000e"], ["virtio", "sata", "ide", "scsi"],
         ["vga", "qxl", "virtio", "cirrus"], ["ich6", "ac97", "ich9", "none"],
         ["i6300esb", "ib700"], ["isa"], ["virtio"],
         ["qemu-xhci", "piix3-uhci", "usb2", "none"], ["pci-bridge", "pcie-root-port"],
         ["tpm-tis"], ["tablet,bus=usb", "mouse,bus=ps2"], x86=True),
    Arch("aarch64-virt", 13, [["--arch", "aarch64"], ["--arch", "aarch64", "--machine", "virt"],
                              ["--arch", "aarch64", "--machine", "virt-7.2"],
                              ["--arch", "aarch64", "--virt-type", "qemu"]],
         ["fedora37", "debian11", "ubuntu22.04", "rhel9.0", "generic", "linux2022", "opensuse15.4"],
         ["virtio", "virtio", "virtio", "e1000e"], ["virtio", "virtio", "scsi", "usb", "sata"],
         ["virtio", "ramfb", "none", "vga", "bochs"], ["ich9", "usb", "none"],
         ["i6300esb"], ["default"], ["smmuv3", "virtio"],
         ["qemu-xhci", "qemu-xhci", "nec-xhci", "none"],
         ["pcie-root-port", "pcie-root-port", "pcie-to-pci-bridge", "pcie-expander-bus"],
         ["tpm-tis"], ["tablet,bus=usb", "keyboard,bus=usb", "tablet,bus=virtio", "keyboard,bus=virtio"],
         pcie=True),
    Arch("armv7l-virt", 4, [["--arch", "armv7l"], ["--arch", "armv7l", "--machine", "virt"]],
         ["generic", "fedora37", "debian11"], ["virtio", "virtio"], ["virtio", "scsi", "usb"],
         ["virtio", "ramfb", "none"], ["none", "usb"], ["i6300esb"], ["default"], ["virtio"],
         ["qemu-xhci", "none"], ["pcie-root-port", "pcie-to-pci-bridge"], ["tpm-tis"],
         ["tablet,bus=usb", "keyboard,bus=virtio"], pcie=True),
    Arch("ppc64le-pseries", 8, [["--arch", "ppc64le"], ["--arch", "ppc64le", "--machine", "pseries"],
                                ["--arch", "ppc64le", "--machine", "pseries-7.2"]],
         ["fedora37", "debian11", "ubuntu22.04", "rhel9.0", "generic"],
         ["virtio", "virtio", "spapr-vlan", "e1000"], ["virtio", "virtio", "scsi", "usb"],
         ["vga", "virtio", "bochs", "none"], ["ich6", "none"], ["i6300esb"], ["pseries"],
         ["virtio"], ["qemu-xhci", "pci-ohci", "none"], ["pci-bridge", "pci-root"],
         ["tpm-spapr"], ["tablet,bus=usb", "keyboard,bus=usb", "tablet,bus=virtio"]),
    Arch("s390x", 7, [["--arch", "s390x"], ["--arch", "s390x", "--machine", "s390-ccw-virtio"]],
         ["fedora37", "rhel9.0", "debian11", "ubuntu22.04"], ["virtio"], ["virtio", "virtio", "scsi"],
         ["virtio", "none"], ["none"], ["diag288"], ["s390"], ["virtio"], ["none", "qemu-xhci"],
         ["pci-bridge"], [], ["keyboard,bus=virtio", "tablet,bus=virtio"]),
    Arch("riscv64-virt", 6, [["--arch", "riscv64"], ["--arch", "riscv64", "--machine", "virt"]],
         ["fedora37", "debian11", "ubuntu22.04", "generic"], ["virtio", "virtio", "e1000e"],
         ["virtio", "virtio", "scsi", "usb"], ["virtio", "ramfb", "none", "bochs"], ["none", "usb"],
         ["i6300esb"], ["default"], ["virtio"], ["qemu-xhci", "none"],
         ["pcie-root-port", "pcie-to-pci-bridge"], ["tpm-tis"],
         ["tablet,bus=virtio", "keyboard,bus=virtio", "tablet,bus=usb"], pcie=True),
]
FAMILIES = {a.family: a for a in ARCHES}


class Draw:
    """The command line being drawn for one case."""

    def __init__(self, rng: random.Random, arch: Arch):
        self.rng, self.arch = rng, arch
        self.argv: list[str] = []
        self.labels: list[str] = []
        self.disks = 0
        self.memfd = False
        self.hostdevs: list[str] = []

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, seq):
        return self.rng.choice(seq)

    def add(self, label: str, *words: str) -> None:
        self.argv.extend(words)
        self.labels.append(label)

    def address(self, p: float = 0.06) -> str:
        """Sometimes a pinned PCI address, as users copy them from another guest."""
        if not self.chance(p):
            return ""
        bus = self.pick((0, 0, 0, 1, 2, 3, 5))
        slot = self.pick((1, 2, 3, 4, 5, 7, 0x0a, 0x10, 0x1f))
        if bus and self.arch.pcie and self.chance(0.9):
            slot = 0                        # a root port's only slot
        a = f",address.type=pci,address.bus=0x{bus:02x},address.slot=0x{slot:02x}"
        if self.chance(0.3):
            a += f",address.function=0x{self.pick((0, 1, 3))}"
            if self.chance(0.5):
                a += ",address.multifunction=on"
        return a


def _disk(d: Draw) -> None:
    r, a = d.rng, d.arch
    device = r.choices(("disk", "cdrom", "lun", "floppy"), (80, 16, 1, 1))[0]
    parts = []
    if device == "cdrom":
        if d.chance(0.8):
            parts.append(f"path={POOL_DIR}/{d.pick(ISOS)}")
        parts.append("device=cdrom")
    else:
        parts.append(f"path={POOL_DIR}/{d.pick(DISKS)}" if d.chance(0.7)
                     else f"vol={POOL}/{d.pick(DISKS)}")
        if device != "disk":
            parts.append(f"device={device}")
    if d.chance(0.55 if device == "disk" else 0.7):
        buses = a.disk_buses if device != "lun" else ["scsi", "virtio"]
        if device == "cdrom":
            buses = [b for b in buses if b != "virtio"] + ["sata" if a.x86 else "scsi"]
        if device == "floppy":
            buses = ["fdc"]
        parts.append(f"bus={d.pick(buses)}")
    if device == "disk":
        if d.chance(0.2):
            parts.append(f"cache={d.pick(('none', 'none', 'writeback', 'unsafe', 'directsync'))}")
        if d.chance(0.12):
            io = d.pick(('native', 'native', 'threads', 'io_uring'))
            if io == "native" and not any(p.startswith("cache=") for p in parts) and d.chance(0.8):
                parts.append("cache=none")
            parts.append(f"io={io}")
        if d.chance(0.12):
            parts.append(f"discard={d.pick(('unmap', 'ignore'))}")
        if d.chance(0.15):
            parts.append(f"format={d.pick(('qcow2', 'raw'))}")
        if d.chance(0.05):
            parts.append("driver.iothread=1")
            if "--iothreads" not in d.argv and d.chance(0.9):
                d.add("iothreads", "--iothreads", d.pick(("1", "2", "4")))
        if d.chance(0.06):
            parts.append(f"serial=VIP{r.randrange(10**6)}")
    if d.chance(0.1):
        parts.append(f"boot.order={r.randint(1, 4)}")
    if d.chance(0.04):
        parts.append("readonly=on")
    if d.chance(0.03):
        parts.append("shareable=on")
    addr = d.address(0.05) if device in ("disk", "lun") and "bus=" not in ",".join(parts) else ""
    d.add(f"disk:{device}" + next((":" + p[4:] for p in parts if p.startswith("bus=")), ""),
          "--disk", ",".join(parts) + addr)
    d.disks += 1


def _network(d: Draw) -> None:
    r, a = d.rng, d.arch
    kind = r.choices(("network=default", "default", "bridge=br0", "bridge=virbr0", "user",
                      "type=user", "network=isolated", "none", "type=direct", "type=vhostuser"),
                     (40, 10, 12, 5, 10, 3, 3, 4, 3, 2))[0]
    if kind == "none":
        d.add("network:none", "--network", "none")
        return
    parts = [kind]
    if kind == "type=direct":
        parts.append(f"source=eth0,source.mode={d.pick(('bridge', 'vepa', 'passthrough'))}")
    elif kind == "type=vhostuser":
        parts.append(f"source.type=unix,source.path=/var/tmp/vhost{r.randrange(10)}.sock,"
                     f"source.mode={d.pick(('client', 'server'))}")
        if not d.memfd and d.chance(0.8):
            d.memfd = True
            d.add("memorybacking:memfd", "--memorybacking", "source.type=memfd,access.mode=shared")
    if d.chance(0.45):
        parts.append(f"model={d.pick(a.nic_models)}")
    elif d.chance(0.1):
        parts.append(f"model.type={d.pick(a.nic_models)}")
    if d.chance(0.25):
        parts.append("mac=52:54:00:%02x:%02x:%02x" % tuple(r.randrange(256) for _ in range(3)))
    if d.chance(0.06) and "model=virtio" in parts:
        parts.append(f"driver.queues={d.pick((2, 4, 8))}")
    if d.chance(0.04):
        parts.append(f"boot.order={r.randint(1, 4)}")
    d.add("network:" + kind.split("=")[0], "--network", ",".join(parts) + d.address(0.05))


def _controller(d: Draw, kind: str = "") -> None:
    r, a = d.rng, d.arch
    kind = kind or r.choices(("usb", "scsi", "virtio-serial", "pci", "sata", "ide", "root-ports"),
                             (30, 25, 12, 28, 4, 1, 8 if a.pcie else 0))[0]
    if kind == "usb":
        m = d.pick(a.usb_models)
        words = m if m in ("usb2", "usb3", "none") else f"type=usb,model={m}"
    elif kind == "scsi":
        m = "virtio-scsi" if not a.x86 or d.chance(0.85) else d.pick(("lsilogic", "megasas", "am53c974"))
        words = f"type=scsi,model={m}" if d.chance(0.8) else "scsi"
        if m == "virtio-scsi" and d.chance(0.35):
            words += f",driver.queues={d.pick((1, 2, 4, 8))}"
        if m == "virtio-scsi" and d.chance(0.08):
            words += ",driver.iothread=1"
            if "--iothreads" not in d.argv and d.chance(0.9):
                d.add("iothreads", "--iothreads", d.pick(("1", "2")))
        if d.chance(0.1):
            words += f",index={r.randint(0, 3)}"
    elif kind == "virtio-serial":
        words = "virtio-serial" if d.chance(0.7) else f"type=virtio-serial,vectors={d.pick((2, 4, 8))}"
    elif kind in ("pci", "pci-more"):
        m = d.pick(a.pci_models)
        words = f"type=pci,model={m}"
        # (without an index, the first controller of the domain gets index 0: the root's)
        if d.chance(0.95 if kind == "pci" else 0.8):
            words += f",index={r.randint(1, 20)}"
        if m in ("pci-expander-bus", "pcie-expander-bus") and d.chance(0.7):
            words += f",target.busNr={d.pick((64, 128, 200, 250))}"
        if m == "pcie-root-port" and d.chance(0.2):
            words += f",target.chassis={r.randint(1, 40)},target.port=0x{r.randint(8, 0x20):x}"
        if m == "pcie-root-port" and d.chance(0.1):
            words += ",target.hotplug=off"
        if m == "pci-bridge" and d.chance(0.2):
            words += f",target.chassisNr={r.randint(1, 30)}"
    elif kind == "root-ports":          # virt-install's own count of root ports
        words = f"num_pcie_root_ports={d.pick((0, 1, 2, 4, 8, 16, 20, 28, 31))}"
    else:
        words = f"type={kind}" + (f",index={r.randint(0, 2)}" if d.chance(0.3) else "")
    d.add(f"controller:{kind[:3] if kind == 'pci-more' else kind}", "--controller",
          words + (d.address(0.03) if kind not in ("usb", "root-ports") else ""))
    if kind == "pci" and d.chance(0.3):      # a few more (root ports, bridges)
        for _ in range(r.randint(1, 5)):
            _controller(d, "pci-more")


def _graphics(d: Draw) -> None:
    g = d.rng.choices(("spice", "vnc", "none", "vnc,listen=0.0.0.0", "spice,gl.enable=no",
                       "vnc,port=5901", "egl-headless"), (25, 35, 25, 5, 3, 4, 3))[0]
    d.add("graphics:" + g.split(",")[0], "--graphics", g)


def _video(d: Draw) -> None:
    v = d.pick(d.arch.videos)
    words = v if v == "none" or d.chance(0.5) else f"model.type={v}"
    if v in ("virtio", "qxl") and d.chance(0.1):
        words += ",model.heads=2"
    if v == "virtio" and d.chance(0.08):
        words += ",model.acceleration.accel3d=no"
    d.add(f"video:{v}", "--video", words + d.address(0.04))


def _sound(d: Draw) -> None:
    s = d.pick(d.arch.sounds)
    d.add(f"sound:{s}", "--sound", s if d.chance(0.7) or s in ("none", "default") else f"model={s}")


def _chardevs(d: Draw) -> None:
    r = d.rng
    which = r.choices(("channel-ga", "channel-spice", "channel-guestfwd", "channel-vdagent",
                       "console-virtio", "console-serial", "serial-pty", "serial-tcp",
                       "serial-file", "console-none", "serial-none"),
                      (20, 8, 3, 4, 12, 5, 12, 4, 4, 3, 2))[0]
    opt, value = {
        "channel-ga": ("--channel", "unix,target.type=virtio,name=org.qemu.guest_agent.0"),
        "channel-spice": ("--channel", "spicevmc"),
        "channel-guestfwd": ("--channel", "pty,target.type=guestfwd,target.address=10.0.2.1:4600"),
        "channel-vdagent": ("--channel", "qemu-vdagent,source.clipboard.copypaste=on"),
        "console-virtio": ("--console", "pty,target.type=virtio"),
        "console-serial": ("--console", "pty,target.type=serial"),
        "serial-pty": ("--serial", "pty"),
        "serial-tcp": ("--serial", "tcp,host=:4444,mode=bind"),
        "serial-file": ("--serial", f"file,path=/var/tmp/vip-{r.randrange(1000)}.log"),
        "console-none": ("--console", "none"),
        "serial-none": ("--serial", "none"),
    }[which]
    d.add(which, opt, value)


def _rng(d: Draw) -> None:
    v = d.rng.choices(("/dev/urandom", "/dev/random", "none", "builtin",
                       "model=virtio,backend.model=random,backend=/dev/hwrng"), (40, 20, 20, 10, 5))[0]
    d.add("rng:" + v.split(",")[0], "--rng", v + (d.address(0.05) if v != "none" else ""))


def _memballoon(d: Draw) -> None:
    v = d.rng.choices(("virtio", "none", "virtio,autodeflate=on", "model=virtio,freePageReporting=on",
                       "model=virtio-transitional", "model=virtio,stats.period=10"), (30, 40, 8, 8, 4, 6))[0]
    d.add("memballoon:" + v.split(",")[0], "--memballoon", v + (d.address(0.05) if v != "none" else ""))


def _watchdog(d: Draw) -> None:
    m = d.pick(d.arch.watchdogs)
    action = d.pick(("reset", "poweroff", "pause", "none", "dump"))
    d.add(f"watchdog:{m}", "--watchdog", f"{m},action={action}" if m != "default" else "default")


def _tpm(d: Draw) -> None:
    a = d.arch
    kind = d.rng.choices(("emulator", "passthrough", "none", "default"), (25, 35, 20, 20))[0]
    if kind == "emulator":
        v = "emulator" if d.chance(0.4) or not a.tpm_models else \
            f"model={d.pick(a.tpm_models)},backend.type=emulator,backend.version=2.0"
    elif kind == "passthrough":
        v = "/dev/tpm0" if d.chance(0.5) or not a.tpm_models else \
            f"model={d.pick(a.tpm_models)},backend.type=passthrough,backend.device.path=/dev/tpm0"
    else:
        v = kind
    d.add(f"tpm:{kind}", "--tpm", v)


def _input(d: Draw) -> None:
    v = d.pick(d.arch.inputs)
    d.add("input:" + v.replace(",bus=", "-"), "--input", v)


def _hostdev(d: Draw) -> None:
    r = d.rng
    free = [a for a in HOST_PCI if a not in d.hostdevs]
    if free and d.chance(0.9) or free and d.chance(0.8):      # (one host device twice: rarely)
        a = d.pick(free if d.chance(0.95) else HOST_PCI)
        d.hostdevs.append(a)
        v = d.pick((a, "0000:" + a, "pci_0000_" + a.replace(":", "_").replace(".", "_")))
    else:
        v = d.pick(MISSING_PCI)
    if d.chance(0.15):
        v += ",driver.name=vfio"
    if d.chance(0.08):
        v += f",rom.bar={d.pick(('on', 'off'))}"
    if d.chance(0.06):
        v += f",boot.order={r.randint(1, 3)}"
    d.add("hostdev", "--hostdev", v + d.address(0.12))


def _filesystem(d: Draw) -> None:
    r = d.rng
    n = r.randrange(100)
    if d.chance(0.45):
        v = f"source.dir=/srv/share{n},target.dir=share{n},driver.type=virtiofs"
        if not d.memfd and d.chance(0.8):
            d.memfd = True
            d.add("memorybacking:memfd", "--memorybacking", "source.type=memfd,access.mode=shared")
        d.add("filesystem:virtiofs", "--filesystem", v + d.address(0.05))
    else:
        v = f"/srv/share{n},share{n}" + (",accessmode=mapped" if d.chance(0.3) else "")
        d.add("filesystem:9p", "--filesystem", v + d.address(0.05))


def _memorybacking(d: Draw) -> None:
    if d.memfd:
        return
    v = d.rng.choices(("hugepages=on", "source.type=memfd,access.mode=shared", "locked=on",
                       "access.mode=shared", "nosharepages=on"), (30, 30, 10, 15, 10))[0]
    d.memfd = "memfd" in v
    d.add("memorybacking:" + v.split(",")[0], "--memorybacking", v)


def _iommu(d: Draw) -> None:
    m = d.pick(d.arch.iommus)
    v = m if d.chance(0.5) else f"model={m}"
    if m == "intel" and d.chance(0.5):
        v += ",driver.intremap=on"
        if d.chance(0.8):
            d.add("features:ioapic", "--features", "ioapic.driver=qemu")
    if m == "intel" and d.chance(0.2):
        v += ",driver.caching_mode=on"
    d.add(f"iommu:{m}", "--iommu", v)


def _vsock(d: Draw) -> None:
    v = "cid.auto=yes" if d.chance(0.7) else f"cid.address={d.rng.randint(3, 100)}"
    d.add("vsock", "--vsock", v + d.address(0.05))


def _panic(d: Draw) -> None:
    m = d.pick(d.arch.panics)
    d.add(f"panic:{m}", "--panic", m if d.chance(0.5) or m == "default" else f"model={m}")


def _smartcard(d: Draw) -> None:
    v = d.pick(("passthrough,type=spicevmc", "host", "passthrough,type=tcp,source.mode=connect,source.host=127.0.0.1,source.service=2001"))
    d.add("smartcard:" + v.split(",")[0], "--smartcard", v)


def _redirdev(d: Draw) -> None:
    v = d.pick(("usb,type=spicevmc", "usb,type=tcp,server=localhost:4000", "none"))
    d.add("redirdev:" + v.split(",")[-1], "--redirdev", v)


def _boot(d: Draw) -> None:
    a = d.arch
    opts = ["hd,cdrom,menu=on", "network,hd", "menu=on"] + (["menu=on,useserial=on"] if a.x86 else [])
    if a.x86 or a.family.startswith("aarch64"):
        opts += ["uefi", "uefi", "firmware=efi"]
    if a.family == "x86_64-q35":
        opts += ["firmware=efi,firmware.feature0.name=secure-boot,firmware.feature0.enabled=yes",
                 "loader=/usr/share/OVMF/OVMF_CODE.fd,loader.readonly=yes,loader.type=pflash"]
    if a.family.startswith("aarch64"):
        opts += ["loader=/usr/share/AAVMF/AAVMF_CODE.fd,loader.readonly=yes,loader.type=pflash"]
    v = d.pick(opts)
    d.add("boot:" + v.split(",")[0].split("=")[0], "--boot", v)


def _features(d: Draw) -> None:
    a = d.arch
    if a.x86:
        opts = ["smm.state=on", "vmport.state=off", "kvm_hidden=on", "hyperv.relaxed.state=on",
                "ioapic.driver=qemu", "acpi=off", "pmu.state=off"]
    elif a.family.startswith(("aarch64", "armv7l")):
        opts = ["gic.version=3", "gic.version=2", "gic.version=host", "acpi=off"]
    elif a.family.startswith("ppc64"):
        opts = ["pmu.state=off", "vmcoreinfo.state=on"]
    else:
        opts = ["acpi=off", "pmu.state=off"]
    v = d.pick(opts)
    d.add("features:" + v.split("=")[0].split(".")[0], "--features", v)


def _cpu(d: Draw) -> dict:
    a = d.arch
    if a.x86:
        models = ["host-passthrough", "host-model", "qemu64", "Skylake-Client", "EPYC", "host"]
    elif a.family.startswith("aarch64"):
        models = ["host-passthrough", "cortex-a57", "max", "cortex-a72"]
    elif a.family.startswith("s390"):
        models = ["host-model", "qemu", "max"]
    else:
        models = ["max", "host-passthrough"]
    v = d.pick(models)
    d.add(f"cpu:{v}", "--cpu", v)
    return {}


def _numa(d: Draw) -> None:
    """--cpu with two NUMA cells (and the vCPUs and memory they need)."""
    d.add("vcpus:4", "--vcpus", "4")
    d.add("memory:2048", "--memory", "2048")
    model = "host-passthrough" if d.arch.x86 else "max"
    cells = "cell0.cpus=0-1,cell0.memory=1048576,cell1.cpus=2-3,cell1.memory=1048576"
    d.add("cpu:numa", "--cpu", f"{model},{cells}")
    if d.chance(0.3):
        d.add("numatune", "--numatune", d.pick(("0", "0-1,mode=strict", "memory.mode=interleave,memory.nodeset=0")))
    if d.chance(0.2):
        d.add("memory:hotplug", "--memory", "2048,maxMemory=8192,maxMemory.slots=16")


def _vcpus(d: Draw) -> None:
    v = d.rng.choices(("1", "2", "4", "8", "4,maxvcpus=8", "sockets=1,cores=2,threads=2",
                       "16", "300"), (10, 30, 25, 10, 8, 8, 5, 1))[0]
    d.add("vcpus:" + v.split(",")[0], "--vcpus", v)


def _memory(d: Draw) -> None:
    v = d.rng.choices(("1024", "2048", "4096", "8192", "2048,currentMemory=1024",
                       "2048,maxMemory=8192,maxMemory.slots=16"), (25, 35, 25, 8, 5, 2))[0]
    d.add("memory:" + v.split(",")[0], "--memory", v)


def _memdev(d: Draw) -> None:
    """A DIMM, NVDIMM or virtio-mem device (with the NUMA cell and the maximum memory it
    needs, mostly)."""
    kind = d.pick(("dimm", "dimm", "nvdimm", "virtio-mem", "virtio-pmem"))
    if d.chance(0.85):
        d.add("memory:hotplug", "--memory", "2048,maxMemory=8192,maxMemory.slots=8")
        model = "host-passthrough" if d.arch.x86 else "max"
        d.add("cpu:numa1", "--cpu", f"{model},cell0.cpus=0-1,cell0.memory=2097152")
        d.add("vcpus:2", "--vcpus", "2")
    v = {"dimm": "dimm,target.size=512,target.node=0",
         "nvdimm": "nvdimm,source.path=/var/tmp/pciplan-viprobe-nv.img,target.size=512,target.node=0",
         "virtio-mem": "virtio-mem,target.size=1024,target.node=0,target.block=2048,target.requested=0",
         "virtio-pmem": "virtio-pmem,source.path=/var/tmp/pciplan-viprobe-pm.img,target.size=512"}[kind]
    d.add(f"memdev:{kind}", "--memdev", v + (d.address(0.1) if kind.startswith("virtio") else ""))


def _shmem(d: Draw) -> None:
    n = d.rng.randrange(100)
    v = d.pick((f"name=shm{n},model.type=ivshmem-plain,size=4,size.unit=M",
                f"name=shm{n},model.type=ivshmem-doorbell,server.path=/var/tmp/ivshmem{n}.sock,"
                "msi.vectors=4,msi.ioeventfd=on",
                f"name=shm{n}"))
    d.add("shmem", "--shmem", v + d.address(0.08))


def _parallel(d: Draw) -> None:
    d.add("parallel", "--parallel", d.pick(("pty", "file,path=/var/tmp/vip-lp.log")))


def _audio(d: Draw) -> None:
    d.add("audio", "--audio", d.pick(("id=1,type=spice", "id=1,type=none", "type=pulseaudio")))


def _clock(d: Draw) -> None:
    d.add("clock", "--clock", d.pick(("offset=localtime", "offset=utc,hpet_present=no",
                                      "offset=utc,rtc_tickpolicy=catchup,pit_tickpolicy=delay")))


def _pm(d: Draw) -> None:
    d.add("pm", "--pm", d.pick(("suspend_to_mem=on", "suspend_to_mem=off,suspend_to_disk=off")))


def _tuning(d: Draw) -> None:
    v = d.pick(("iothreads", "cputune", "sysinfo", "launch-security"))
    if v == "iothreads":
        d.add("iothreads", "--iothreads", d.pick(("1", "2", "4")))
    elif v == "cputune":
        d.add("cputune", "--cputune", "vcpupin0.vcpu=0,vcpupin0.cpuset=0,vcpupin1.vcpu=1,vcpupin1.cpuset=1")
    elif v == "sysinfo":
        d.add("sysinfo", "--sysinfo", d.pick(("host", "smbios,system.manufacturer=Acme,system.product=VIP")))
    elif d.arch.family == "x86_64-q35":
        d.add("launch-security:sev", "--launchSecurity", "sev,policy=0x07")
        if "--boot" not in d.argv:
            d.add("boot:uefi", "--boot", "uefi")


def _numatune(d: Draw) -> None:
    d.add("numatune", "--numatune", d.pick(("0", "0-1,mode=strict", "memory.mode=interleave,memory.nodeset=0")))


#: --xml edits of what virt-install wrote (its XPath options): (label, words, archs or None)
XML_EDITS = [
    ("xml:video-vga", "./devices/video/model/@type=vga", None),
    ("xml:no-sound", "xpath.delete=./devices/sound", None),
    ("xml:no-memballoon", "./devices/memballoon/@model=none", None),
    ("xml:no-rng", "xpath.delete=./devices/rng", None),
    # (virt-install splits its --xml values at ',' and '=': the XPaths have neither; the
    # last controller is a root port on q35 and ARM/RISC-V virt, unless the user added some)
    ("xml:no-last-controller", "xpath.delete=./devices/controller[last()]", None),
    ("xml:last-controller-hotplug-off", "./devices/controller[last()]/target/@hotplug=off", None),
    ("xml:controller-index", "./devices/controller[last()]/@index=9", None),
    ("xml:nic-e1000", "./devices/interface/model/@type=e1000", ("x86_64-q35", "x86_64-pc", "i686")),
    ("xml:machine-pc", "./os/type/@machine=pc", ("x86_64-q35",)),
    ("xml:machine-q35", "./os/type/@machine=q35", ("x86_64-pc",)),
    ("xml:disk-sata", "./devices/disk/target/@bus=sata", ("x86_64-q35",)),
    ("xml:disk-addr", "./devices/disk/address/@type=pci", None),
    ("xml:no-console", "xpath.delete=./devices/console", None),
    ("xml:no-channel", "xpath.delete=./devices/channel", None),
    ("xml:rng-addr", "./devices/rng/address/@type=pci", None),
    ("xml:nic-slot", "./devices/interface/address/@slot=0x05", None),
]


def _xml_edit(d: Draw) -> None:
    edits = [e for e in XML_EDITS if e[2] is None or d.arch.family in e[2]]
    label, words, _ = d.pick(edits)
    if words.endswith("address/@type=pci"):       # an address element with its type
        base = words.rsplit("/address/", 1)[0]
        d.add(label, "--xml", f"xpath.create={base}/address")
    d.add(label, "--xml", words)


#: the options drawn for a guest: (drawer, probability of drawing it, how many at most)
OPTIONS = [
    (_disk, 0.85, 4),
    (_network, 0.75, 3),
    (_graphics, 0.45, 1),
    (_video, 0.3, 2),
    (_sound, 0.2, 1),
    (_controller, 0.3, 4),
    (_chardevs, 0.25, 3),
    (_rng, 0.15, 1),
    (_memballoon, 0.15, 1),
    (_watchdog, 0.08, 1),
    (_tpm, 0.1, 1),
    (_input, 0.15, 2),
    (_hostdev, 0.12, 3),
    (_filesystem, 0.1, 2),
    (_memorybacking, 0.06, 1),
    (_iommu, 0.06, 1),
    (_vsock, 0.08, 1),
    (_panic, 0.05, 1),
    (_smartcard, 0.04, 1),
    (_redirdev, 0.05, 2),
    (_boot, 0.15, 1),
    (_features, 0.08, 2),
    (_cpu, 0.15, 1),
    (_numa, 0.05, 1),
    (_vcpus, 0.4, 1),
    (_memory, 0.85, 1),
    (_numatune, 0.02, 1),
    (_memdev, 0.03, 2),
    (_shmem, 0.03, 2),
    (_parallel, 0.03, 1),
    (_audio, 0.03, 1),
    (_clock, 0.05, 1),
    (_pm, 0.03, 1),
    (_tuning, 0.06, 2),
    (_xml_edit, 0.12, 2),
]


def draw(seed, index: int, family: str | None = None, uri: str | None = None) -> Case:
    """Command line ``index`` of the stream ``seed`` (deterministic)."""
    rng = random.Random(f"vip:{seed}:{index}")
    arch = FAMILIES[family] if family else rng.choices(ARCHES, [a.weight for a in ARCHES])[0]
    d = Draw(rng, arch)
    name = f"vip-{seed}-{index}"
    d.argv += ["--connect", libvirt_oracle._uri(uri), "--print-xml", "--check", "path_in_use=off",
               "--name", name]
    d.argv += d.pick(arch.args)
    osname = d.pick(arch.osinfo)
    form = rng.choices(("--osinfo NAME", "--os-variant NAME", "--osinfo name=NAME,require=off",
                        "--osinfo detect=on,name=NAME", "--osinfo short-id=NAME"), (70, 18, 4, 4, 4))[0]
    d.add(f"os:{osname}", *form.replace("NAME", osname).split())
    if rng.random() < 0.07:
        d.add("virt-type:qemu", "--virt-type", "qemu")
    # what users type: a few options, each possibly more than once, in a varied order
    drawn = []
    for fn, p, most in OPTIONS:
        if rng.random() < p:
            drawn += [fn] * rng.randint(1, most) if most > 1 and rng.random() < 0.3 else [fn]
    if _numa in drawn or _memdev in drawn:   # they say how many vCPUs and how much memory
        drawn = [fn for fn in drawn if fn not in (_vcpus, _memory)]
    if _numa in drawn and _memdev in drawn:
        drawn.remove(_memdev)
    rng.shuffle(drawn)
    for fn in drawn:
        fn(d)
    if d.disks == 0:
        # (without any --disk, virt-install creates the OS's default disk in the default pool,
        # --print-xml or not)
        d.add("disk:none", "--disk", "none")
    if "--boot" not in d.argv or rng.random() < 0.8:
        d.argv.append("--import")
    return Case(name, d.argv, arch.family, d.labels, index, str(seed))


# -- virt-install ---------------------------------------------------------------------------
def virt_install_python(program: str = VIRT_INSTALL) -> str | None:
    """The interpreter of virt-install's #! line (it has virtinst and libvirt's bindings)."""
    try:
        first = Path(program).read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    if words and Path(words[0]).name == "env" and len(words) > 1:
        return shutil.which(words[1])
    return words[0] if words else None


def unavailable_reason(uri: str | None = None) -> str:
    """Why the probe cannot run here ('' when it can)."""
    if not Path(VIRT_INSTALL).exists():
        return f"virt-install is not installed ({VIRT_INSTALL}; Debian package virtinst)"
    if not virt_install_python():
        return f"cannot read the interpreter of {VIRT_INSTALL}"
    ok, why = libvirt_oracle.probe(uri)
    if not ok:
        return f"no libvirt daemon to compare with ({why})"
    return ""


def ensure_pool(uri: str | None = None) -> None:
    """The transient pool with the disk files the command lines name (made when missing)."""
    POOL_DIR.mkdir(parents=True, exist_ok=True)
    for f in DISKS + ISOS:
        (POOL_DIR / f).touch(exist_ok=True)
    uri = libvirt_oracle._uri(uri)
    info = libvirt_oracle._virsh(uri, "pool-info", POOL)
    if info.returncode == 0 and re.search(r"State:\s+running", info.stdout):
        libvirt_oracle._virsh(uri, "pool-refresh", POOL)
        return
    if info.returncode == 0:
        libvirt_oracle._virsh(uri, "pool-start", POOL)
        return
    r = libvirt_oracle._virsh(uri, "pool-create-as", POOL, "dir", "--target", str(POOL_DIR))
    if r.returncode != 0 and "already exists" not in (r.stderr or ""):
        raise libvirt_oracle.OracleError(f"cannot make the storage pool {POOL}: {r.stderr.strip()}")


def _run_batch(argvs: list[list[str]]) -> list[dict]:
    p = subprocess.run([virt_install_python(), str(DRIVER)], input=json.dumps(argvs),
                       capture_output=True, text=True, timeout=120 + 30 * len(argvs),
                       env={**os.environ, "LC_ALL": "C.UTF-8"})
    out = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    # a case that killed the interpreter: it and the rest are run again one by one
    if len(out) < len(argvs):
        out.append({"rc": 1, "out": "", "err": f"ERROR    virt-install died: {p.stderr.strip()[-300:]}"})
        out += _run_batch(argvs[len(out):]) if len(out) < len(argvs) else []
    return out


def _run_one(argv: list[str]) -> dict:
    p = subprocess.run([VIRT_INSTALL] + argv, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C.UTF-8"})
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}


def virt_install(cases: list[Case], jobs: int = 2, one_by_one: bool = False) -> None:
    """Run virt-install on every case: its XML (made reproducible) into case.xml, or its
    refusal into case.vi_err."""
    if one_by_one:
        with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            answers = list(ex.map(lambda c: _run_one(c.argv), cases))
    else:
        chunks = [cases[i::max(1, jobs)] for i in range(max(1, jobs))]
        with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            parts = list(ex.map(lambda cs: _run_batch([c.argv for c in cs]), chunks))
        answers = [None] * len(cases)
        for k, part in enumerate(parts):
            for j, a in enumerate(part):
                answers[k + j * len(chunks)] = a
    for c, a in zip(cases, answers):
        c.vi_rc = a["rc"]
        if a["rc"] == 0 and a["out"].lstrip().startswith("<domain"):
            c.xml = reproducible(a["out"], c)
        else:
            c.vi_rc = a["rc"] or 1
            c.vi_err = _vi_error(a["err"] or a["out"] or "no XML printed")


def _vi_error(text: str) -> str:
    """virt-install's error message (its ERROR line, and the lines after it when empty)."""
    lines = text.strip().splitlines()
    at = next((i for i, l in enumerate(lines) if l.startswith("ERROR")), 0)
    words = " ".join(l.strip() for l in lines[at:at + 3] if not l.startswith(("WARNING", "DEBUG")))
    return re.sub(r"^ERROR\s+", "", words).strip()


def reproducible(xml: str, case: Case) -> str:
    """virt-install's XML with its drawn UUID and MAC addresses replaced by the case's own."""
    rng = random.Random(f"vip-ids:{case.seed}:{case.index}")
    xml = re.sub(r"<uuid>[^<]*</uuid>",
                 f"<uuid>{uuidlib.UUID(int=rng.getrandbits(128), version=4)}</uuid>", xml, count=1)
    given = {m.lower() for m in re.findall(r"mac=([0-9a-fA-F:]{17})", " ".join(case.argv))}

    def mac(m):
        if m.group(1).lower() in given:
            return m.group(0)
        return 'address="52:54:00:%02x:%02x:%02x"' % tuple(rng.randrange(256) for _ in range(3))
    return re.sub(r'address="([0-9a-f:]{17})"', mac, xml)


# -- running ----------------------------------------------------------------------------------
def make_cases(seed, indexes, family: str | None = None, uri: str | None = None) -> list[Case]:
    return [draw(seed, i, family, uri) for i in indexes]


def run(cases: list[Case], oracle, jobs: int = 2, one_by_one: bool = False,
        progress=None) -> list[difftest.CaseResult]:
    """virt-install on every case, then the printed XMLs through libvirt and pciplan (the
    results of the cases virt-install printed an XML for)."""
    ensure_pool(oracle.uri)
    virt_install(cases, jobs, one_by_one)
    printed = [c for c in cases if c.xml]
    return editprobe.run(printed, oracle, jobs, progress)


failures = editprobe.failures


def report(cases: list[Case], results: list[difftest.CaseResult], out=sys.stdout,
           examples: int = 2) -> None:
    refused = [c for c in cases if not c.xml]
    fams = collections.Counter(c.family for c in cases)
    print(f"{len(cases)} command lines ({', '.join(f'{f} {n}' for f, n in fams.most_common())})", file=out)
    print(f"virt-install refused {len(refused)} (not asked of libvirt)", file=out)
    why = collections.Counter(difftest.normalize_message(c.vi_err) for c in refused)
    for msg, n in why.most_common(examples * 4):
        print(f"  {n}x {msg}", file=out)
    editprobe.report(results, out, examples, what="virt-install domains", label="options")
    refusals = collections.Counter(difftest.message_core(r.libvirt_text) for r in results
                                   if r.libvirt_ok is False)
    if refusals:
        print(f"libvirt refused {sum(refusals.values())}:", file=out)
        for msg, n in refusals.most_common(examples * 8):
            print(f"  {n}x {msg}", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="number of command lines (default 300)")
    ap.add_argument("--seed", default=None, help="stream seed (default: random, printed)")
    ap.add_argument("--start", type=int, default=0, help="first index (default 0)")
    ap.add_argument("--index", type=int, action="append", default=None,
                    help="run only case INDEX of the stream (repeatable); prints its details")
    ap.add_argument("-k", dest="family", default=None, choices=sorted(FAMILIES),
                    help="only guests of this family")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--one-by-one", action="store_true",
                    help="run the virt-install program for each command line (slower)")
    ap.add_argument("--save", type=Path, help="write each failing case into this folder")
    ap.add_argument("--uri", default=None)
    args = ap.parse_args(argv)

    why = unavailable_reason(args.uri)
    if why:
        print(f"virtinstallprobe: {why}", file=sys.stderr)
        return 2
    oracle = libvirt_oracle.Oracle(args.uri)
    seed = args.seed if args.seed is not None else str(random.randrange(10**6))
    indexes = args.index or range(args.start, args.start + args.n)
    cases = make_cases(seed, indexes, args.family, args.uri)
    print(f"virtinstallprobe: seed {seed}, {len(cases)} command lines, "
          f"pciplan from {difftest.import_pciplan().__file__}", flush=True)
    t0 = time.monotonic()
    progress = difftest.Progress(t0)
    results = run(cases, oracle, args.jobs, args.one_by_one, progress)
    progress.end()
    report(cases, results)
    print(f"oracle: {oracle.misses} asked, {oracle.hits} from cache; {time.monotonic() - t0:.0f}s")
    if args.index:
        by_name = {r.dom.name: r for r in results}
        for c in cases:
            r = by_name.get(c.name)
            print(f"\n=== {c.name} ({c.family}): {r.status if r else 'virt-install refused: ' + c.vi_err}")
            print(f"  {c.command}")
            if r is not None and r.status != difftest.OK_SAME:
                print(f"  first: {r.first_line or ''}")
                if r.libvirt_ok is False:
                    print(f"  libvirt: {difftest.message_core(r.libvirt_text)}")
                if r.plan_ok is False:
                    print(f"  pciplan: {r.plan_reason}")
    if args.save:
        saved = editprobe.save(results, args.save, lambda r: f"command: {r.dom.command}\n",
                               other_messages=True)
        print(f"saved {saved} cases under {args.save}")
    failed = failures(results)
    print(f"\nseed {seed}: {len(failed)} failing of {len(results)} "
          f"({len(cases) - len(results)} refused by virt-install)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
