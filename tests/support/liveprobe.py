#!/usr/bin/env python3
"""Devices hot-plugged into running guests with ``virsh attach-device --live``, against
``pciplan hotplug`` of the guest's live XML.

    python tests/support/liveprobe.py -n 60                 # random guests, up to 4 attaches each
    python tests/support/liveprobe.py -n 100 --seed 7 --family q35 --save DIR

A management application (Nova's interface-attach, virt-manager's "Add Hardware" on a
running guest, a virsh user) hot-plugs into a running guest.  Controllers cannot be
hot-plugged, so libvirt looks for an empty hot-pluggable slot in the topology the guest
already has.  ``pciplan hotplug DOMAIN DEVICE`` promises the slot libvirt takes, or the
same refusal.

Each case draws a small guest that QEMU can start with TCG and nothing on the host (a
topology of root ports, some with ``hotplug='off'``, switches, PCI bridges, expander
buses or pSeries PHBs; user-mode NICs, disks on fresh image files, an RNG...), defines it
on the daemon, starts it paused and attaches up to ``--steps`` devices one after the
other (NICs of several models, virtio, SCSI, USB, SATA and IDE disks, RNGs, a
virtio-scsi controller, controllers libvirt cannot hot-plug (PCI ones complete or not:
libvirt validates them first), devices libvirt validates against the guest and then does
not hot-plug (audio backends, sound cards, smartcards, IOMMUs, PS/2 inputs, multicast
NICs, IDE/SATA cdroms), virtio inputs, virtio channels, PCI, USB, ISA and SCLP serial
ports, an ivshmem, a watchdog, DIMMs, NVDIMMs, virtio-mem and virtio-pmem, into guests
with memory slots and into guests without, virtiofs and 9p filesystems, into guests with
shared memory and without; no vsock: it needs the host's /dev/vhost-vsock), each
without an address, with ``<address type='pci'/>``, or at a drawn address (a free or a
used slot, of a bus the guest has, sometimes a function other than 0).  Before each
attach pciplan is asked with the live XML (``virsh dumpxml``) of that moment; after it
the new devices' addresses are read from the live XML.  The guest is destroyed and undefined, whatever happens.

Statuses:

* identical / mismatch: both place the device, at the same or at another address;
* both-reject: both refuse it (messages shown with ``-v``);
* planner-rejects: pciplan refuses what libvirt attaches (fails);
* planner-accepts: libvirt refuses what pciplan places: fails, except where pciplan
  knowingly chooses better than libvirt, another bus than the one libvirt takes and QEMU
  then refuses (a ``pci-expander-bus``, pc's ``pci.0`` without ACPI: ``qemu-refuses``);
* qemu-crash: QEMU died on the attach (the case ends there; not counted);
* no-start: the drawn guest was not defined or did not start (not counted).

Exit status: 0 no failure, 1 some failure, 2 libvirt cannot be asked.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support import libvirt_oracle  # noqa: E402

PREFIX = "pciplan-live-"
FAMILIES = {
    # family: (arch, machines, emulator)
    "q35": ("x86_64", ("q35", "pc-q35-7.2", "pc-q35-5.2"), "/usr/bin/qemu-system-x86_64"),
    "pc": ("x86_64", ("pc", "pc-i440fx-7.2"), "/usr/bin/qemu-system-x86_64"),
    "aarch64-virt": ("aarch64", ("virt", "virt-7.2"), "/usr/bin/qemu-system-aarch64"),
    "riscv64-virt": ("riscv64", ("virt",), "/usr/bin/qemu-system-riscv64"),
    "pseries": ("ppc64", ("pseries",), "/usr/bin/qemu-system-ppc64"),
    "s390x": ("s390x", ("s390-ccw-virtio",), "/usr/bin/qemu-system-s390x"),
}
SPREAD = {"q35": 10, "pc": 6, "aarch64-virt": 4, "riscv64-virt": 1, "pseries": 2, "s390x": 1}


@dataclass
class Step:
    device: str
    planner_rc: int
    planner_addr: str | None
    planner_err: str
    libvirt_ok: bool
    libvirt_addr: str | None
    libvirt_err: str
    status: str = ""


@dataclass
class Case:
    index: int
    family: str
    guest: str
    steps: list[Step] = field(default_factory=list)
    status: str = "identical"
    note: str = ""


def virsh(uri: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _hex(v: int, width: int = 2) -> str:
    return f"0x{v:0{width}x}"


# -- the guest -------------------------------------------------------------------------------


class GuestDraw:
    def __init__(self, rng: random.Random, family: str, workdir: Path, only: frozenset[str] = frozenset(),
                 connect: bool = False):
        self.rng, self.family, self.workdir = rng, family, workdir
        #: the kinds of device attached (all when empty)
        self.only = only
        #: pciplan is asked through the daemon (``--connect``): devices that need the host
        self.connect = connect
        self.arch, machines, self.emulator = FAMILIES[family]
        self.machine = rng.choice(machines)
        self.macs = 0
        self.disks = 0
        self.images = 0
        #: the guest takes memory devices (<maxMemory slots>, one NUMA node)
        self.memory_slots = family in ("q35", "pc", "aarch64-virt", "pseries") and rng.random() < 0.35
        #: pSeries places memory in blocks of 256 MiB
        self.mem_unit = 256 if family == "pseries" else 128
        #: the guest's memory is shared (virtiofs needs it)
        self.shared_memory = rng.random() < 0.3
        self.shares = 0

    def mac(self) -> str:
        self.macs += 1
        return f"52:54:00:{self.rng.randrange(256):02x}:{self.macs // 256:02x}:{self.macs % 256:02x}"

    def image(self, mib: int = 1) -> str:
        self.images += 1
        p = self.workdir / f"disk{self.images}.img"
        with open(p, "wb") as f:
            f.truncate(mib * 1024 * 1024)
        return str(p)

    def disk_target(self) -> str:
        t = "vd" + "bcdefghijklmnop"[self.disks]
        self.disks += 1
        return t

    def nic(self, model: str | None = None) -> str:
        model = model or self.rng.choice(self.nic_models())
        alias = f"<alias name='ua-nic{self.macs + 1}'/>" if self.rng.random() < 0.2 else ""
        return (f"<interface type='user'><mac address='{self.mac()}'/>"
                f"<model type='{model}'/>{alias}</interface>")

    def nic_models(self) -> tuple[str, ...]:
        if self.arch == "x86_64":
            return ("virtio", "virtio", "virtio", "e1000", "e1000e", "rtl8139")
        if self.family == "pseries":
            return ("virtio", "virtio", "e1000", "spapr-vlan")
        if self.family == "s390x":
            return ("virtio",)
        return ("virtio", "virtio", "virtio", "e1000e")

    def disk(self) -> str:
        return (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                f"<source file='{self.image()}'/><target dev='{self.disk_target()}' bus='virtio'/></disk>")

    def controllers(self) -> list[str]:
        r, out = self.rng, []
        idx = [0]
        x_slots = [0]   # the next slot of the expander bus

        def nxt() -> int:
            idx[0] += 1
            return idx[0]

        def port(bus: int | None = None, hotplug_off: bool | None = None) -> str:
            off = r.random() < 0.2 if hotplug_off is None else hotplug_off
            target = "<target hotplug='off'/>" if off else ""
            addr = ""
            if bus is not None:
                addr = (f"<address type='pci' domain='0x0000' bus='{_hex(bus)}' slot='{_hex(x_slots[0])}' "
                        "function='0x0'/>")
            return f"<controller type='pci' index='{nxt()}' model='pcie-root-port'>{target}{addr}</controller>"

        if self.family in ("q35", "aarch64-virt", "riscv64-virt"):
            for _ in range(r.choice((0, 1, 2, 3, 4))):
                out.append(port())
            def on_new_port() -> str:
                # (QEMU creates the buses in index order: a port libvirt adds for the child
                # would come after it, so the child gets one of its own first)
                out.append(port(hotplug_off=False))
                return f"<address type='pci' domain='0x0000' bus='{_hex(idx[0])}' slot='0x00' function='0x0'/>"

            if r.random() < 0.3:
                a = on_new_port()
                up = nxt()
                out.append(f"<controller type='pci' index='{up}' model='pcie-switch-upstream-port'>{a}</controller>")
                for _ in range(r.choice((1, 2, 3))):
                    i = nxt()
                    a = (f"<address type='pci' domain='0x0000' bus='{_hex(up)}' slot='{_hex(i - up - 1)}' "
                         "function='0x0'/>") if r.random() < 0.3 else ""
                    out.append(f"<controller type='pci' index='{i}' model='pcie-switch-downstream-port'>"
                               f"{a}</controller>")
            if r.random() < 0.3:
                a = on_new_port()
                out.append(f"<controller type='pci' index='{nxt()}' model='pcie-to-pci-bridge'>{a}</controller>")
            if self.family == "q35" and r.random() < 0.15:
                d = nxt()
                out.append(f"<controller type='pci' index='{d}' model='dmi-to-pci-bridge'/>")
                out.append(f"<controller type='pci' index='{nxt()}' model='pci-bridge'/>")
            if self.family == "q35" and r.random() < 0.15:
                x = nxt()
                out.append(f"<controller type='pci' index='{x}' model='pcie-expander-bus'>"
                           "<target busNr='250'/></controller>")
                for _ in range(r.choice((1, 2))):
                    out.append(port(bus=x))
                    x_slots[0] += 1
        elif self.family == "pc":
            for _ in range(r.choice((0, 0, 1, 2))):
                out.append(f"<controller type='pci' index='{nxt()}' model='pci-bridge'/>")
            if r.random() < 0.15:
                x = nxt()
                out.append(f"<controller type='pci' index='{x}' model='pci-expander-bus'>"
                           "<target busNr='250'/></controller>")
                if r.random() < 0.5:
                    out.append(f"<controller type='pci' index='{nxt()}' model='pci-bridge'>"
                               f"<address type='pci' domain='0x0000' bus='{_hex(x)}' slot='0x01' "
                               "function='0x0'/></controller>")
        elif self.family == "pseries":
            for i in range(r.choice((0, 0, 1, 2))):
                n = nxt()
                out.append(f"<controller type='pci' index='{n}' model='pci-root'>"
                           f"<model name='spapr-pci-host-bridge'/><target index='{n}'/></controller>")
        return out

    def endpoints(self) -> list[str]:
        r, out = self.rng, []
        for _ in range(r.choice((0, 1, 1, 2, 3))):
            out.append(self.nic())
        for _ in range(r.choice((0, 0, 1, 2))):
            out.append(self.disk())
        if r.random() < 0.3:
            out.append("<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>")
        if r.random() < 0.3:
            out.append("<controller type='scsi' index='0' model='virtio-scsi'/>")
        if r.random() < 0.2:
            out.append("<memballoon model='none'/>")
        if r.random() < 0.3:
            out.append("<controller type='virtio-serial' index='0'/>")
        return out

    def xml(self, name: str) -> str:
        features = "<features><acpi/></features>" if self.arch == "x86_64" and self.rng.random() < 0.9 else ""
        devices = "\n    ".join([f"<emulator>{self.emulator}</emulator>", *self.controllers(),
                                 *self.endpoints()])
        unit = self.mem_unit
        memory = f"  <memory unit='MiB'>{unit}</memory>\n"
        cpu, loader = "", ""
        if self.memory_slots:
            memory += f"  <maxMemory slots='4' unit='MiB'>{8 * unit}</maxMemory>\n"
            model = ""
            if self.family == "aarch64-virt":
                # (QEMU plugs memory into ARM's virt board through ACPI, for a 64-bit CPU:
                # without a model TCG gives it a 32-bit Cortex-A15)
                model = self.rng.choice(("", "<model>cortex-a57</model>", "<model>max</model>",
                                         "<model>cortex-a15</model>"))
                if self.rng.random() < 0.6:
                    features = "<features><acpi/></features>"
                    loader = "<loader readonly='yes' type='pflash'>/usr/share/AAVMF/AAVMF_CODE.fd</loader>"
            cpu = (f"  <cpu mode='custom' match='exact'>{model}<numa><cell id='0' cpus='0' memory='{unit}' "
                   "unit='MiB'/></numa></cpu>\n")
        if self.shared_memory:
            memory += "  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\n"
        return (f"<domain type='qemu'>\n  <name>{name}</name>\n{memory}"
                f"  <vcpu>1</vcpu>\n  <os><type arch='{self.arch}' machine='{self.machine}'>hvm</type>{loader}</os>\n"
                f"  {features}\n{cpu}  <devices>\n    {devices}\n  </devices>\n</domain>\n")

    # -- the devices attached ------------------------------------------------------------

    def attachable(self) -> tuple[str, str]:
        r = self.rng
        kinds = [("nic", 30), ("disk", 15), ("rng", 8), ("scsi", 6), ("input", 6), ("watchdog", 2),
                 ("scsi-disk", 5), ("channel", 3), ("pci-serial", 3), ("usb-disk", 2)]
        if self.arch == "x86_64":
            kinds += [("shmem", 3), ("sata-disk", 2)]
        if self.family != "s390x":
            kinds.append(("memory", 8 if self.memory_slots else 2))
        kinds.append(("filesystem", 4 if self.shared_memory else 1))
        kinds.append(("controller", 2))
        kinds.append(("other", 3))
        if self.connect:
            kinds.append(("host", 4))
        kinds = [(k, w) for k, w in kinds if not self.only or k in self.only] or kinds
        kind = r.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        if kind == "memory":
            return kind, self.memory_device()
        if kind == "nic":
            if r.random() < 0.15:
                # a model libvirt does not name itself: passed to QEMU as a device's name
                return kind, self.nic(r.choice(("vlance", "bogus-nic", "ne2k_isa", "virtio-net", "virtio-net-pci",
                                                "e1000-82540em", "i82559er", "vmxnet3", "tulip", "pcnet",
                                                "virtio-net-device", "sungem")))
            return kind, self.nic()
        if kind == "disk":
            return kind, self.disk()
        if kind == "channel":
            if r.random() < 0.15:  # (SPICE's, in a guest without SPICE graphics)
                return kind, "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>"
            return kind, (f"<channel type='pty'><target type='virtio' name='org.example.{r.randrange(1000)}'/>"
                          "</channel>")
        if kind == "filesystem":
            self.shares += 1
            share = self.workdir / f"share{self.shares}"
            share.mkdir(exist_ok=True)
            driver = "<driver type='virtiofs'/>" if r.random() < 0.75 else ""
            return kind, (f"<filesystem type='mount' accessmode='{'passthrough' if driver else 'mapped'}'>"
                          f"{driver}<source dir='{share}'/><target dir='tag{self.shares}'/></filesystem>")
        if kind == "pci-serial":
            if self.family == "s390x":  # (no pci-serial there)
                target = "sclp-serial"
            elif self.arch == "x86_64":
                target = r.choice(("pci-serial", "pci-serial", "isa-serial", "usb-serial"))
            else:
                target = r.choice(("pci-serial", "usb-serial"))
            return kind, f"<serial type='pty'><target type='{target}' port='3'/></serial>"
        if kind == "usb-disk":
            self.disks += 1
            return kind, (f"<disk type='file' device='disk'><source file='{self.image()}'/>"
                          f"<target dev='sd{'abcdefghijklmnop'[self.disks]}' bus='usb'/></disk>")
        if kind == "sata-disk":
            # (libvirt 9.0 asks QEMU, which hot-plugs no IDE or AHCI disk)
            bus, dst = ("sata", "sdb") if self.family == "q35" else ("ide", "hdc")
            return kind, (f"<disk type='file' device='disk'><source file='{self.image()}'/>"
                          f"<target dev='{dst}' bus='{bus}'/></disk>")
        if kind == "scsi-disk":
            # (without a SCSI controller libvirt hot-plugs one first)
            self.disks += 1
            drive = ""
            if r.random() < 0.3:
                drive = (f"<address type='drive' controller='{r.choice((0, 1, 2))}' bus='0' target='0' "
                         f"unit='{self.disks}'/>")
            return kind, (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                          f"<source file='{self.image()}'/><target dev='sd{'abcdefghijklmnop'[self.disks]}' "
                          f"bus='scsi'/>{drive}</disk>")
        if kind == "controller":
            return kind, self.controller()
        if kind == "other":
            return kind, self.other()
        if kind == "host":
            return kind, self.host_device()
        if kind == "rng":
            return kind, "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
        if kind == "scsi":
            return kind, f"<controller type='scsi' index='{r.choice((1, 2, 3))}' model='virtio-scsi'/>"
        if kind == "input":
            return kind, f"<input type='{r.choice(('keyboard', 'tablet', 'mouse'))}' bus='virtio'/>"
        if kind == "watchdog":
            return kind, ("<watchdog model='diag288'/>" if self.family == "s390x" else
                          f"<watchdog model='i6300esb' action='{r.choice(('reset', 'poweroff'))}'/>")
        return kind, (f"<shmem name='shm{r.randrange(1000)}'><model type='ivshmem-plain'/>"
                      "<size unit='M'>1</size></shmem>")

    #: PCI controller models, their QEMU device names and the <target> options each may have
    PCI_CONTROLLERS = {
        "pcie-root-port": ("pcie-root-port", "chassis", "port", "hotplug"),
        "pcie-switch-downstream-port": ("xio3130-downstream", "chassis", "port", "hotplug"),
        "pcie-switch-upstream-port": ("x3130-upstream",),
        "pci-bridge": ("pci-bridge", "chassisNr"),
        "pcie-to-pci-bridge": ("pcie-pci-bridge",),
        "dmi-to-pci-bridge": ("i82801b11-bridge",),
        "pci-expander-bus": ("pxb", "busNr"),
        "pcie-expander-bus": ("pxb-pcie", "busNr"),
        "pci-root": ("spapr-pci-host-bridge",),
        "pcie-root": ("",),
    }

    def controller(self) -> str:
        """A controller libvirt cannot hot-plug (only SCSI ones are), complete or not: a PCI
        controller is validated first, without the index, model name and options define fills in."""
        r = self.rng
        if r.random() < 0.3:
            kind = r.choice(("usb' model='qemu-xhci", "virtio-serial", "sata", "ide", "usb' model='ich9-ehci1",
                             "ccid", "xenbus"))
            return f"<controller type='{kind}'/>"
        model = r.choice([*self.PCI_CONTROLLERS, None])
        if model is None:
            return "<controller type='pci'/>"
        name, *options = self.PCI_CONTROLLERS[model]
        index = f" index='{r.choice((0, 1, 9, 40))}'" if r.random() < 0.3 else ""
        inner = ""
        if r.random() < 0.6:
            inner += f"<model name='{name if r.random() < 0.85 else r.choice(('pci-bridge', 'ioh3420', 'pxb'))}'/>"
        values = {"chassis": "9", "port": "0x28", "hotplug": "off", "chassisNr": "7", "busNr": "120"}
        extra = [o for o in ("busNr", "chassisNr", "port") if o not in options]
        chosen = [o for o in options if r.random() < 0.7] + ([r.choice(extra)] if extra and r.random() < 0.15 else [])
        if chosen:
            inner += "<target " + " ".join(f"{o}='{values[o]}'" for o in chosen) + "/>"
        return f"<controller type='pci'{index} model='{model}'>{inner}</controller>"

    def other(self) -> str:
        """A device libvirt validates against the running guest, then cannot hot-plug or
        refuses as it plugs it (audio ids, smartcards, IOMMUs, PS/2 inputs, a NIC type it
        does not hot-plug, an IDE/SATA disk of a controller the guest lacks)."""
        r = self.rng
        audio = f"<audio id='{r.choice((1, 1, 2, 5))}'/>" if r.random() < 0.5 else ""
        ccid = (f"<address type='ccid' controller='0' slot='{r.choice((0, 0, 1))}'/>"
                if r.random() < 0.4 else "")
        disk_bus = "sata" if self.family == "q35" else "ide"
        ps2 = " bus='ps2'"
        letters = "abcdefghijklmnopqrstuvwxyz"
        return r.choice((
            f"<audio id='{r.choice((1, 2, 3))}' type='{r.choice(('none', 'spice', 'none'))}'/>",
            f"<sound model='{r.choice(('ich9', 'ich6', 'usb', 'ac97', 'es1370'))}'>{audio}</sound>",
            f"<smartcard mode='host'>{ccid}</smartcard>",
            f"<smartcard mode='passthrough' type='spicevmc'>{ccid}</smartcard>",
            f"<iommu model='{r.choice(('intel', 'virtio', 'smmuv3'))}'/>",
            f"<input type='{r.choice(('mouse', 'keyboard', 'tablet'))}'{r.choice(('', '', ps2))}/>",
            "<input type='evdev'><source dev='/dev/input/event7'/></input>",
            f"<interface type='{r.choice(('mcast', 'udp', 'null'))}'><source address='230.0.0.1' port='5558'>"
            f"<local address='127.0.0.1' port='5559'/></source><model type='{r.choice(self.nic_models())}'/>"
            "</interface>",
            f"<disk type='file' device='cdrom'><source file='{self.image()}'/>"
            f"<target dev='{'sd' if disk_bus == 'sata' else 'hd'}{r.choice(letters)}' bus='{disk_bus}'/></disk>",
            f"<disk type='file' device='cdrom'><target dev='sd{r.choice(letters)}' "
            f"bus='{r.choice(('scsi', 'usb', disk_bus))}'/></disk>",  # (no medium)
            "<graphics type='spice'/>", "<video><model type='virtio'/></video>",
            "<panic model='isa'/>", "<hub type='usb'/>", "<memballoon model='none'/>",
        ))

    def host_device(self) -> str:
        """A device whose attach depends on the host (``--connect``: pciplan asks the daemon's
        host as libvirt does): host PCI and mediated devices, a vsock, an evdev input, NICs
        on virtual networks, bridges, host interfaces and taps, disks on missing files."""
        r = self.rng
        pci = "domain='0' bus='6' slot='0x12' function='5'"
        driver = r.choice(("", "", "<driver name='vfio'/>", "<driver name='kvm'/>", "<driver name='xen'/>"))
        model = r.choice(self.nic_models())
        existing = self.image()
        return r.choice((
            f"<hostdev mode='subsystem' type='pci' managed='yes'>{driver}<source><address {pci}/></source></hostdev>",
            f"<interface type='hostdev' managed='yes'>{driver}<source><address type='pci' {pci}/></source>"
            "</interface>",
            "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
            "<address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source></hostdev>",
            "<vsock model='virtio'><cid auto='yes'/></vsock>",
            "<input type='passthrough' bus='virtio'><source evdev='/dev/input/event9'/></input>",
            f"<interface type='network'><source network='{r.choice(('default', 'nosuch'))}'/><model type='{model}'/></interface>",
            f"<interface type='bridge'><source bridge='{r.choice(('br0', 'virbr9'))}'/><model type='{model}'/></interface>",
            f"<interface type='direct'><source dev='eth7' mode='bridge'/><model type='{model}'/></interface>",
            f"<interface type='ethernet'><target dev='tap9' managed='no'/><model type='{model}'/></interface>",
            f"<interface type='ethernet'><model type='{model}'/></interface>",
            f"<disk type='file' device='disk'><source file='{self.workdir}/missing.img'/>"
            f"<target dev='vd{'wxyz'[r.randrange(4)]}' bus='virtio'/></disk>",
            f"<disk type='file' device='disk'><source file='{existing}'/><target dev='vdv' bus='virtio'/></disk>",
        ))

    def memory_device(self) -> str:
        """A DIMM, NVDIMM, virtio-mem or virtio-pmem (the last two are PCI devices)."""
        r, unit = self.rng, self.mem_unit
        node = "<node>0</node>" if self.memory_slots and r.random() < 0.9 else ""
        model = r.choice(("dimm", "virtio-mem", "virtio-mem", "virtio-pmem", "virtio-pmem", "nvdimm"))
        if model == "dimm":
            return f"<memory model='dimm'><target><size unit='MiB'>{unit}</size>{node}</target></memory>"
        if model == "virtio-mem":
            return (f"<memory model='virtio-mem'><target><size unit='MiB'>{unit}</size>{node}"
                    "<block unit='MiB'>2</block><requested unit='MiB'>0</requested></target></memory>")
        if model == "virtio-pmem":
            return (f"<memory model='virtio-pmem' access='shared'><source><path>{self.image(16)}</path>"
                    "</source><target><size unit='MiB'>16</size></target></memory>")
        if self.family == "pseries":
            # (a pSeries NVDIMM has a UUID and a label, and 256 MiB besides the label)
            return (f"<memory model='nvdimm'><uuid>{uuid.UUID(int=r.getrandbits(128))}</uuid>"
                    f"<source><path>{self.image(512)}</path></source><target><size unit='MiB'>512</size>"
                    f"{node}<label><size unit='KiB'>128</size></label></target></memory>")
        return (f"<memory model='nvdimm'><source><path>{self.image(16)}</path></source>"
                f"<target><size unit='MiB'>16</size>{node}</target></memory>")

    def with_address(self, device: str, live: ET.Element) -> str:
        """The device without an address, with an empty PCI one, or at a drawn address
        (and now and then a user alias, one of the guest's or a new one)."""
        r = self.rng
        if r.random() < 0.08 and "<alias" not in device:
            taken = [a.get("name") for a in live.iter("alias") if (a.get("name") or "").startswith("ua-")]
            name = r.choice(taken) if taken and r.random() < 0.6 else f"ua-new{r.randrange(100)}"
            el = ET.fromstring(device)
            el.append(ET.fromstring(f"<alias name='{name}'/>"))
            device = ET.tostring(el, encoding="unicode")
        x = r.random()
        if x < 0.55 or "<address" in device:
            return device
        if x < 0.65:
            return _insert_address(device, "<address type='pci'/>")
        buses = [int(c.get("index")) for c in live.iter("controller")
                 if c.get("type") == "pci" and c.get("index", "").isdigit()]
        bus = r.choice(buses or [0])
        model = next((c.get("model") for c in live.iter("controller")
                      if c.get("type") == "pci" and c.get("index") == str(bus)), "")
        slot = 0 if model in ("pcie-root-port", "pcie-switch-downstream-port") and r.random() < 0.8 \
            else r.randrange(0, 32)
        func = 0 if r.random() < 0.9 else r.randrange(1, 8)
        return _insert_address(device, f"<address type='pci' domain='0x0000' bus='{_hex(bus)}' "
                                       f"slot='{_hex(slot)}' function='{_hex(func, 1)}'/>")


def _insert_address(device: str, address: str) -> str:
    el = ET.fromstring(device)
    el.append(ET.fromstring(address))
    return ET.tostring(el, encoding="unicode")


# -- one case ---------------------------------------------------------------------------------


def _aliases(root: ET.Element) -> set[str]:
    return {a.get("name") for a in root.iter("alias")}


def _pci(el: ET.Element | None) -> str | None:
    a = None if el is None else el.find("address")
    if a is None or a.get("type") != "pci":
        return None
    try:
        return "{:04x}:{:02x}:{:02x}.{:x}".format(*(int(a.get(k, "0"), 0)
                                                   for k in ("domain", "bus", "slot", "function")))
    except ValueError:
        return "?"


def _new_pci_addresses(before: ET.Element, after: ET.Element) -> str | None:
    """The PCI addresses of the devices the attach added (a SCSI disk can bring its
    controller), or None."""
    old = _aliases(before)
    found = []
    for el in after.find("devices"):
        al = el.find("alias")
        if al is not None and al.get("name") not in old and _pci(el) is not None:
            found.append(_pci(el))
    # (a serial port standing for the console is listed twice)
    return " ".join(sorted(set(found))) or None


#: pciplan's note of a device libvirt hot-plugs before the one asked for
FIRST_RE = re.compile(r"^[^\n]*: ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) on [^\n]*libvirt hot-plugs it first",
                      re.M)
#: libvirt's words when QEMU died during the attach
QEMU_CRASH_RE = re.compile(r"Unable to read from monitor|domain is not running")
#: QEMU's refusal of a bus libvirt picked (an expander bus, pc's pci.0 without ACPI)
QEMU_BUS_REFUSAL_RE = re.compile(r"Bus '([^']+)' does not support hotplugging")


def bus_alias(live: ET.Element, addr: str) -> str:
    """The alias of the PCI controller whose bus ``addr`` is on (pci.N)."""
    bus = int(addr.split()[0].split(":")[1], 16)
    for c in live.iter("controller"):
        if c.get("type") == "pci" and c.get("index") == str(bus):
            al = c.find("alias")
            if al is not None:
                return al.get("name", "")
    return f"pci.{bus}"


def pciplan_cmd() -> list[str]:
    return [sys.executable, "-m", "pciplan"]


def run_case(seed: str, index: int, family: str | None, steps: int, uri: str, keep: Path | None,
             only: frozenset[str] = frozenset(), connect: bool = False) -> Case:
    rng = random.Random(f"{seed}:{index}")
    fam = family or rng.choices(list(SPREAD), list(SPREAD.values()))[0]
    work = Path(tempfile.mkdtemp(prefix=PREFIX))
    name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:10]}"
    g = GuestDraw(rng, fam, work, only, connect)
    text = g.xml(name)
    case = Case(index, fam, text)
    defined = False
    env = dict(os.environ)
    try:
        (work / "guest.xml").write_text(text)
        r = virsh(uri, "define", str(work / "guest.xml"))
        if r.returncode != 0:
            case.status, case.note = "no-start", "define: " + (r.stderr or r.stdout).strip()
            return case
        defined = True
        r = virsh(uri, "start", "--paused", name)
        if r.returncode != 0:
            case.status, case.note = "no-start", "start: " + (r.stderr or r.stdout).strip()
            return case
        for k in range(steps):
            d = virsh(uri, "dumpxml", name)
            if d.returncode != 0:
                case.status, case.note = "no-start", "dumpxml: " + d.stderr.strip()
                return case
            live_text = d.stdout
            live = ET.fromstring(live_text)
            (work / "live.xml").write_text(live_text)
            _, dev = g.attachable()
            dev = g.with_address(dev, live)
            (work / f"dev{k}.xml").write_text(dev)
            domain = ["-c", uri, "-d", name] if connect else [str(work / "live.xml")]
            p = subprocess.run([*pciplan_cmd(), "hotplug", *domain, str(work / f"dev{k}.xml")],
                               capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
            p_addr = None
            if p.returncode == 0:
                # the device's address, and those of the devices libvirt hot-plugs first for it
                found = [_pci(ET.fromstring(p.stdout)) if p.stdout.strip() else None,
                         *FIRST_RE.findall(p.stderr)]
                p_addr = " ".join(sorted(a for a in found if a)) or None
            a = virsh(uri, "attach-device", name, str(work / f"dev{k}.xml"), "--live")
            l_addr, l_err = None, ""
            if a.returncode == 0:
                d2 = virsh(uri, "dumpxml", name)
                l_addr = _new_pci_addresses(live, ET.fromstring(d2.stdout))
            else:
                l_err = (a.stderr or a.stdout).strip().replace("error: Failed to attach device", "").strip(": \n")
            st = Step(dev, p.returncode, p_addr, p.stderr.strip(), a.returncode == 0, l_addr, l_err)
            if QEMU_CRASH_RE.search(l_err):
                # QEMU died on the attach (TCG s390x, with some models): nothing to compare, and
                # no guest left to attach to
                st.status = "qemu-crash"
                case.steps.append(st)
                break
            if p.returncode == 2 or (p.returncode != 0 and "Traceback" in p.stderr):
                st.status = "planner-error"
            elif p.returncode == 0 and st.libvirt_ok:
                st.status = "identical" if p_addr == l_addr else "mismatch"
            elif p.returncode != 0 and not st.libvirt_ok:
                st.status = "both-reject"
            elif p.returncode != 0:
                st.status = "planner-rejects"
            elif QEMU_BUS_REFUSAL_RE.search(l_err) and p_addr is not None and \
                    QEMU_BUS_REFUSAL_RE.search(l_err).group(1) != bus_alias(live, p_addr):
                st.status = "qemu-refuses"
            else:
                st.status = "planner-accepts"
            case.steps.append(st)
            if st.status not in ("identical", "both-reject", "qemu-refuses"):
                case.status = st.status
                break
        if case.steps and all(s.status == "both-reject" for s in case.steps):
            case.status = "both-reject"
        return case
    finally:
        if defined:
            virsh(uri, "destroy", name)
            virsh(uri, "undefine", name, "--nvram")
            if virsh(uri, "domstate", name).returncode == 0:
                virsh(uri, "undefine", name)
        if keep is not None and case.status in FAILING:
            dest = keep / f"case-{index}"
            shutil.copytree(work, dest, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


FAILING = ("mismatch", "planner-rejects", "planner-accepts", "planner-error")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=60, help="guests (default 60)")
    ap.add_argument("--steps", type=int, default=4, help="attaches per guest, one after the other (default 4)")
    ap.add_argument("--seed", default=None, help="default: random, printed")
    ap.add_argument("--family", choices=sorted(FAMILIES), default=None)
    ap.add_argument("--index", type=int, action="append", help="run only case INDEX (repeatable)")
    ap.add_argument("--only", action="append", default=[], metavar="KIND",
                    help="attach only devices of this kind (nic, disk, memory, ...; repeatable)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--save", type=Path, help="copy each failing case's files into this folder")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every step")
    ap.add_argument("--uri", default=os.environ.get("LIBVIRT_DEFAULT_URI", "qemu:///system"))
    ap.add_argument("--connect", action="store_true",
                    help="ask pciplan through the daemon (hotplug -c URI -d NAME: this host is the guest's, "
                         "so devices that need the host are drawn too)")
    args = ap.parse_args(argv)

    ok, why = libvirt_oracle.probe(args.uri)
    if not ok:
        print(f"liveprobe: libvirt cannot be asked: {why}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else str(random.randrange(10**9))
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    indexes = args.index or list(range(args.n))
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        cases = list(ex.map(lambda i: run_case(seed, i, args.family, args.steps, args.uri, args.save,
                                                   frozenset(args.only), args.connect), indexes))
    counts = collections.Counter(c.status for c in cases)
    steps = collections.Counter(s.status for c in cases for s in c.steps)
    for c in cases:
        if c.status in FAILING or args.verbose or args.index:
            print(f"== case {c.index} ({c.family}): {c.status} {c.note}")
            if c.status in FAILING or args.index:
                print(c.guest)
            for s in c.steps:
                print(f"  [{s.status}] {s.device}\n    pciplan rc={s.planner_rc} {s.planner_addr} "
                      f"{s.planner_err.splitlines()[-1] if s.planner_err else ''}\n"
                      f"    libvirt ok={s.libvirt_ok} {s.libvirt_addr} {s.libvirt_err}")
        elif c.status == "no-start":
            print(f"== case {c.index} ({c.family}): no-start {c.note[:200]}")
    failing = sum(counts[s] for s in FAILING)
    print(f"liveprobe: seed {seed}, {len(cases)} guests ({dict(counts)}), steps {dict(steps)}; "
          f"{time.monotonic() - t0:.0f}s")
    print(f"seed {seed}: {failing} failing of {len(cases)}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
