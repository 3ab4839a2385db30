#!/usr/bin/env python3
"""User-like edits of domains libvirt already planned, through libvirt and through pciplan.

    python tests/support/editprobe.py                       # one edit of every accepted input
    python tests/support/editprobe.py --per-base 2 -j 3 --seed 7 --save DIR
    python tests/support/editprobe.py --edits add,delete -k q35

Users seldom write a domain from nothing: they take one libvirt has already planned
(``virsh edit``, ``virsh dumpxml > x.xml``) and change it.  This probe starts from domains
libvirt accepted and planned:

* libvirt 9.0.0's own test inputs and their corpus variants (tests/support/suiteprobe.py;
  the sources cached in ``--cache``), each defined once on the daemon for its planned output
  (tests/support/libvirt_oracle.py, cached);
* the accepted golden cases (tests/golden/NAME.libvirt.xml: the daemon's answer already).

Each planned domain gets ``--per-base`` edited copies; each copy has one to three edits drawn
from ``EDITS`` (add devices without address, strip some addresses, delete a device or a
controller others sit on, change a model or the machine type, toggle multifunction or share a
slot, empty or partial ``<address type='pci'/>``, controllers with index gaps, devices moved
elsewhere in ``<devices>``).  Every copy is
asked of libvirt and pciplan (tests/support/difftest.py's run_case).

A case counts as a failure when both accept it with different PCI layouts, or when pciplan
refuses what libvirt accepts, or crashes.  libvirt refusals pciplan does not make are listed,
not counted (as in suiteprobe).

Exit status: 0 no failure, 1 some failure, 2 libvirt or the sources cannot be had.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import random
import re
import sys
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from lxml import etree  # noqa: E402

from support import difftest, libvirt_oracle, randomdomain, suiteprobe  # noqa: E402

GOLDEN_DIR = TESTS_DIR / "golden"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)


@dataclass
class Base:
    """A domain libvirt accepted, as libvirt stored it (every address filled in)."""
    name: str
    xml: str
    origin: str            # "suite" or "golden"
    source: str = ""       # the input libvirt planned it from


@dataclass
class Case:
    """One edited copy of a base (what difftest.run_case asks about)."""
    name: str
    xml: str
    base: str = ""
    edits: list = field(default_factory=list)
    index: int = 0
    seed: int = 0
    family: str = "edit"


# -- the planned domains ----------------------------------------------------------------------
def golden_bases(folder: Path = GOLDEN_DIR) -> list[Base]:
    """The accepted golden cases: their .libvirt.xml is the daemon's planned output."""
    return [Base(f.name[: -len(".libvirt.xml")], f.read_text(), "golden",
                 f.with_name(f.name.replace(".libvirt.xml", ".in.xml")).read_text())
            for f in sorted(folder.glob("*.libvirt.xml"))]


def suite_bases(root: Path, oracle, jobs: int = 2, sample=None) -> list[Base]:
    """libvirt's test inputs (and variants) that libvirt accepts, as libvirt planned them.
    ``sample`` (a function of the case list) picks which inputs to ask about."""
    cases = suiteprobe.all_cases(root)
    if sample is not None:
        cases = sample(cases)

    def ask(c):
        try:
            ok, out = oracle.run(c.xml)
        except libvirt_oracle.OracleError:
            return None
        return Base(c.name, out, "suite", c.xml) if ok else None

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        return [b for b in ex.map(ask, cases) if b is not None]


# -- looking at a domain ----------------------------------------------------------------------
@dataclass
class Guest:
    root: object
    arch: str
    machine: str

    @property
    def devices(self):
        return self.root.find("devices")

    @property
    def x86(self) -> bool:
        return self.arch in ("x86_64", "i686")

    @property
    def q35(self) -> bool:
        return self.x86 and "q35" in self.machine

    @property
    def pc(self) -> bool:
        return self.x86 and not self.q35 and self.machine.startswith("pc")

    @property
    def virt(self) -> bool:
        return self.arch in ("aarch64", "armv7l", "riscv64") and self.machine.startswith("virt")

    @property
    def pseries(self) -> bool:
        return self.machine.startswith("pseries")

    @property
    def s390(self) -> bool:
        return self.arch == "s390x"

    @property
    def pcie(self) -> bool:
        """Whether the guest's root bus is PCI Express (pcie-root)."""
        return any(c.get("model") == "pcie-root" for c in self.controllers("pci"))

    def controllers(self, ctype=None):
        devs = self.devices
        if devs is None:
            return []
        return [c for c in devs.findall("controller") if ctype is None or c.get("type") == ctype]

    def pci_devices(self):
        """Device elements (direct children of <devices>) with a PCI address."""
        devs = self.devices
        if devs is None:
            return []
        return [d for d in devs if isinstance(d.tag, str) and d.find("address") is not None
                and d.find("address").get("type") == "pci"]

    def max_index(self, ctype) -> int:
        idx = [int(c.get("index")) for c in self.controllers(ctype) if (c.get("index") or "").isdigit()]
        return max(idx, default=-1)


def parse(text: str) -> Guest | None:
    try:
        root = etree.fromstring(text.encode(), _PARSER)
    except etree.XMLSyntaxError:
        return None
    t = root.find("os/type")
    if t is None or root.find("devices") is None:
        return None
    return Guest(root, t.get("arch", "x86_64"), t.get("machine", ""))


def _el(text: str):
    return etree.fromstring(text, _PARSER)


def _letters(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


def _free_target(g: Guest, prefix: str) -> str:
    used = {t.get("dev") for t in g.root.iter("target") if t.getparent().tag == "disk"}
    return next(prefix + _letters(i) for i in range(702) if prefix + _letters(i) not in used)


def _free_host_address(g: Guest, rng: random.Random) -> str:
    used = {(a.get("bus"), a.get("slot")) for a in g.root.iter("address")
            if a.getparent().tag == "source"}
    while True:
        bus, slot = f"0x{rng.randrange(0x10, 0x80):02x}", f"0x{rng.randrange(0, 32):02x}"
        if (bus, slot) not in used:
            return f"<address domain='0x0000' bus='{bus}' slot='{slot}' function='0x0'/>"


# -- the new devices (no address, as a user adds them) ----------------------------------------
def _new_devices(g: Guest, rng: random.Random) -> list[tuple[str, object]]:
    """(label, maker) of the devices a user of this guest may add; maker(g, rng) -> element."""
    n = rng.randrange(10**6)
    out = [
        ("virtio-disk", lambda g, r: _el(
            f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='/var/lib/libvirt/images/ep-{n}.qcow2'/>"
            f"<target dev='{_free_target(g, 'vd')}' bus='virtio'/></disk>")),
        ("virtio-nic", lambda g, r: _el("<interface type='user'><model type='virtio'/></interface>")),
        ("hostdev-pci", lambda g, r: _el(
            f"<hostdev mode='subsystem' type='pci' managed='yes'><source>"
            f"{_free_host_address(g, r)}</source></hostdev>")),
        ("virtio-scsi", lambda g, r: _el("<controller type='scsi' model='virtio-scsi'/>")),
        ("scsi-default", lambda g, r: _el("<controller type='scsi'/>")),
        ("scsi-disk", lambda g, r: _el(
            f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
            f"<source file='/var/lib/libvirt/images/ep-{n}.img'/>"
            f"<target dev='{_free_target(g, 'sd')}' bus='scsi'/></disk>")),
        ("virtio-serial", lambda g, r: _el("<controller type='virtio-serial'/>")),
        ("virtio-console", lambda g, r: _el(
            "<console type='pty'><target type='virtio'/></console>")),
        ("usb-qemu-xhci", lambda g, r: _el("<controller type='usb' model='qemu-xhci'/>")),
        ("virtio-rng", lambda g, r: _el(
            "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>")),
        ("virtio-tablet", lambda g, r: _el("<input type='tablet' bus='virtio'/>")),
        ("virtio-keyboard", lambda g, r: _el("<input type='keyboard' bus='virtio'/>")),
        ("virtio-video", lambda g, r: _el("<video><model type='virtio'/></video>")),
        ("vsock", lambda g, r: _el("<vsock model='virtio'><cid auto='yes'/></vsock>")),
        ("memballoon", lambda g, r: _el("<memballoon model='virtio'/>")),
        ("virtio-iommu", lambda g, r: _el("<iommu model='virtio'/>")),
        ("nic-hostdev", lambda g, r: _el(
            "<interface type='hostdev' managed='yes'><source>"
            + _free_host_address(g, r).replace("<address ", "<address type='pci' ")
            + "</source></interface>")),
        ("hostdev-functions", _hostdev_functions),
        ("virtiofs", lambda g, r: _el(
            f"<filesystem type='mount' accessmode='passthrough'><source dir='/srv/ep{n}'/>"
            f"<target dir='ep{n}'/></filesystem>")),
    ]
    if not g.s390:
        out += [
            ("pci-bridge", lambda g, r: _el("<controller type='pci' model='pci-bridge'/>")),
            ("usb-default", lambda g, r: _el("<controller type='usb'/>")),
        ]
    if g.pcie or g.virt:
        out += [
            ("pcie-root-port", lambda g, r: _el("<controller type='pci' model='pcie-root-port'/>")),
            ("pcie-switch", lambda g, r: _el("<controller type='pci' model='pcie-switch-upstream-port'/>")),
            ("pcie-to-pci-bridge", lambda g, r: _el("<controller type='pci' model='pcie-to-pci-bridge'/>")),
        ]
    if g.x86:
        out += [
            ("e1000-nic", lambda g, r: _el("<interface type='user'><model type='e1000'/></interface>")),
            ("e1000e-nic", lambda g, r: _el("<interface type='user'><model type='e1000e'/></interface>")),
            ("rtl8139-nic", lambda g, r: _el("<interface type='user'><model type='rtl8139'/></interface>")),
            ("nic-default", lambda g, r: _el("<interface type='user'/>")),
            ("lsilogic", lambda g, r: _el("<controller type='scsi' model='lsilogic'/>")),
            ("sound", lambda g, r: _el(f"<sound model='{r.choice(['ich6', 'ich9', 'ac97', 'es1370'])}'/>")),
            ("i6300esb", lambda g, r: _el("<watchdog model='i6300esb' action='reset'/>")),
            ("usb-piix3", lambda g, r: _el("<controller type='usb' model='piix3-uhci'/>")),
            ("usb-ehci", lambda g, r: _el("<controller type='usb' model='ich9-ehci1'/>")),
            ("sata-disk", lambda g, r: _el(
                f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                f"<source file='/var/lib/libvirt/images/ep-{n}.raw'/>"
                f"<target dev='{_free_target(g, 'sd')}' bus='sata'/></disk>")),
            ("ivshmem", lambda g, r: _el(
                f"<shmem name='ep{n}'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>")),
            ("pci-serial", lambda g, r: _el("<serial type='pty'><target type='pci-serial'/></serial>")),
            ("qxl-video", lambda g, r: _el("<video><model type='qxl'/></video>")),
        ]
    if g.x86:
        out.append(("usb-companions", _usb_companions))
    if g.pcie and g.x86:
        out.append(("dmi-to-pci-bridge", lambda g, r: _el("<controller type='pci' model='dmi-to-pci-bridge'/>")))
    if g.pc:
        out.append(("pci-expander", lambda g, r: _el(
            "<controller type='pci' model='pci-expander-bus'><target busNr='200'/></controller>")))
    if g.virt and g.arch == "aarch64":
        out.append(("e1000e-nic", lambda g, r: _el("<interface type='user'><model type='e1000e'/></interface>")))
    return out


def _usb_companions(g: Guest, rng: random.Random):
    """An EHCI controller with its three UHCI companions (one more USB index), as the
    libvirt docs show them; returned as a list."""
    idx = g.max_index("usb") + 1
    return [_el(f"<controller type='usb' index='{idx}' model='ich9-ehci1'/>")] + [
        _el(f"<controller type='usb' index='{idx}' model='ich9-uhci{i}'>"
            f"<master startport='{2 * (i - 1)}'/></controller>") for i in (1, 2, 3)]


def _hostdev_functions(g: Guest, rng: random.Random):
    """Two functions of one host device (a list of two hostdevs)."""
    a = _free_host_address(g, rng)
    return [_el("<hostdev mode='subsystem' type='pci' managed='yes'><source>"
                + a.replace("function='0x0'", f"function='0x{fn}'") + "</source></hostdev>")
            for fn in (0, 1)]


def edit_add(g: Guest, rng: random.Random) -> str:
    """Add one to three devices without any address."""
    devs = g.devices
    labels = []
    for _ in range(rng.randint(1, 3)):
        label, make = rng.choice(_new_devices(g, rng))
        made = make(g, rng)
        for el in (made if isinstance(made, list) else [made]):
            # devices go after the last of their kind, as virsh edit users put them
            same = [d for d in devs if d.tag == el.tag]
            if same:
                same[-1].addnext(el)
            else:
                devs.append(el)
        labels.append(label)
    return "add(" + ",".join(labels) + ")"


def edit_add_many(g: Guest, rng: random.Random) -> str:
    """Add many devices of one kind at once (a storage or network guest grows)."""
    kinds = [k for k in _new_devices(g, rng) if k[0] in (
        "virtio-disk", "virtio-nic", "e1000e-nic", "e1000-nic", "hostdev-pci", "virtio-scsi",
        "pcie-root-port", "pci-bridge", "virtio-serial", "virtio-rng", "nic-hostdev")]
    label, make = rng.choice(kinds)
    count = rng.choice((4, 8, 16, 31, 40))
    devs = g.devices
    for _ in range(count):
        made = make(g, rng)
        for el in (made if isinstance(made, list) else [made]):
            same = [d for d in devs if d.tag == el.tag]
            (same[-1].addnext(el) if same else devs.append(el))
    return f"add-many({count}x{label})"


def edit_hotplug_off(g: Guest, rng: random.Random) -> str | None:
    """Turn hot-plug off on some root or downstream ports (or the root bus)."""
    ports = [c for c in g.controllers("pci") if c.get("model") in (
        "pcie-root-port", "pcie-switch-downstream-port", "pci-root")]
    if not ports:
        return None
    picked = [c for c in ports if rng.random() < 0.5] or [rng.choice(ports)]
    for c in picked:
        t = c.find("target")
        if t is None:
            t = etree.SubElement(c, "target")
        t.set("hotplug", "off")
    return f"hotplug-off({len(picked)}/{len(ports)})"


def edit_strip(g: Guest, rng: random.Random) -> str | None:
    """Remove the PCI address of a random subset of the devices (the others keep theirs)."""
    devs = g.pci_devices()
    if not devs:
        return None
    share = rng.choice((0.25, 0.5, 0.75, 1.0))
    picked = [d for d in devs if rng.random() < share] or [rng.choice(devs)]
    for d in picked:
        d.remove(d.find("address"))
    return f"strip({len(picked)}/{len(devs)})"


def edit_strip_controllers(g: Guest, rng: random.Random) -> str | None:
    """Remove the addresses of the PCI controllers only (devices keep their bus numbers)."""
    ctrls = [c for c in g.controllers("pci") if c.find("address") is not None]
    if not ctrls:
        return None
    picked = [c for c in ctrls if rng.random() < 0.7] or [rng.choice(ctrls)]
    for c in picked:
        c.remove(c.find("address"))
        if rng.random() < 0.5:
            t = c.find("target")
            if t is not None:
                c.remove(t)
    return f"strip-controllers({len(picked)}/{len(ctrls)})"


#: the other address types a PCI-capable device may be given, per guest
def _other_address_types(g: Guest) -> list[str]:
    if g.s390:
        return ["<address type='ccw'/>", "<address type='pci'/>",
                "<address type='pci'><zpci uid='0x0042'/></address>",
                "<address type='pci'><zpci fid='0x00000042'/></address>"]
    if g.virt:
        return ["<address type='virtio-mmio'/>", "<address type='pci'/>"]
    if g.pseries:
        return ["<address type='spapr-vio'/>", "<address type='pci'/>"]
    return ["<address type='pci'/>", "<address type='isa'/>", "<address type='unassigned'/>"]


def edit_address_type(g: Guest, rng: random.Random) -> str | None:
    """Give a device another kind of address (or a PCI one where it had another kind)."""
    cands = [d for d in g.devices if isinstance(d.tag, str) and d.tag in (
        "disk", "interface", "controller", "hostdev", "rng", "memballoon", "input", "video",
        "filesystem", "vsock")
        and not (d.tag == "controller" and d.get("type") == "pci")]
    if not cands:
        return None
    d = rng.choice(cands)
    old = d.find("address")
    new = _el(rng.choice(_other_address_types(g)))
    if old is not None:
        old.addprevious(new)
        d.remove(old)
    else:
        d.append(new)
    return f"address-type({_describe(d)} {old.get('type') if old is not None else '-'}->{new.get('type')})"


def _describe(el) -> str:
    bits = [el.tag]
    for a in ("type", "model", "index"):
        if el.get(a):
            bits.append(el.get(a))
    m = el.find("model")
    if m is not None and m.get("type"):
        bits.append(m.get("type"))
    return "-".join(bits)


def edit_delete(g: Guest, rng: random.Random) -> str | None:
    """Delete a device, often a controller others sit on (their addresses left dangling)."""
    devs = g.devices
    ctrls = [c for c in g.controllers() if not (c.get("type") == "pci" and c.get("index") == "0")]
    bridges = [c for c in ctrls if c.get("type") == "pci"]
    others = g.pci_devices()
    pool = rng.choice([p for p in (bridges, ctrls, others) if p] or [[]])
    if not pool:
        return None
    victim = rng.choice(pool)
    devs.remove(victim)
    return f"delete({_describe(victim)})"


#: model changes a user makes: element -> (path of the attribute holder, attribute, choices)
_X86_NICS = ("virtio", "e1000e", "e1000", "rtl8139")
_SCSI_MODELS = ("virtio-scsi", "lsilogic", "lsisas1068", "lsisas1078", "vmpvscsi", "virtio-transitional")
_USB_MODELS = ("qemu-xhci", "nec-xhci", "piix3-uhci", "piix4-uhci", "ich9-ehci1", "none")
_SOUND_MODELS = ("ich6", "ich9", "ac97", "es1370", "sb16", "usb")
_PCI_MODELS = ("pcie-root-port", "pci-bridge", "pcie-switch-downstream-port", "pcie-switch-upstream-port",
               "pcie-to-pci-bridge", "dmi-to-pci-bridge")
_VIRTIO_MODELS = ("virtio", "virtio-transitional", "virtio-non-transitional")


def edit_model(g: Guest, rng: random.Random) -> str | None:
    """Change a device's model (or a disk's bus), keeping its address."""
    choices = []
    for i in g.devices.findall("interface"):
        choices.append(("nic", i))
    for c in g.controllers():
        if c.get("type") in ("scsi", "usb") or (c.get("type") == "pci" and c.get("index") != "0"):
            choices.append((c.get("type"), c))
        if c.get("type") == "virtio-serial":
            choices.append(("virtio", c))
    for d in g.devices.findall("disk"):
        t = d.find("target")
        if t is not None and t.get("bus") in ("virtio", "scsi", "sata", "usb"):
            choices.append(("disk", d))
    for tag in ("sound", "rng", "memballoon"):
        for d in g.devices.findall(tag):
            choices.append((tag, d))
    for v in g.devices.findall("video"):
        choices.append(("video", v))
    if not choices:
        return None
    kind, el = rng.choice(choices)
    if kind == "nic":
        m = el.find("model")
        if m is None:
            m = etree.SubElement(el, "model")
        old = m.get("type")
        m.set("type", rng.choice(_X86_NICS if g.x86 else _VIRTIO_MODELS + ("e1000e",)))
        return f"model(nic {old}->{m.get('type')})"
    if kind in ("scsi", "usb", "pci", "virtio"):
        table = {"scsi": _SCSI_MODELS, "usb": _USB_MODELS, "pci": _PCI_MODELS, "virtio": _VIRTIO_MODELS}[kind]
        old = el.get("model")
        el.set("model", rng.choice(table))
        if kind == "pci" and rng.random() < 0.7:
            # the old <model name>/<target> belong to the old model: a careful user drops them
            for child in ("model", "target"):
                x = el.find(child)
                if x is not None:
                    el.remove(x)
        return f"model({kind} {old}->{el.get('model')})"
    if kind == "disk":
        t = el.find("target")
        old = t.get("bus")
        new = rng.choice(("virtio", "scsi", "sata") if g.x86 else ("virtio", "scsi"))
        t.set("bus", new)
        prefix = "vd" if new == "virtio" else "sd"
        if not t.get("dev", "").startswith(prefix):
            t.set("dev", _free_target(g, prefix))
        a = el.find("address")
        if a is not None and rng.random() < 0.8:
            el.remove(a)
        return f"model(disk {old}->{new})"
    if kind == "sound":
        old = el.get("model")
        el.set("model", rng.choice(_SOUND_MODELS))
        return f"model(sound {old}->{el.get('model')})"
    if kind == "video":
        m = el.find("model")
        if m is None:
            return None
        old = m.get("type")
        m.set("type", rng.choice(("virtio", "qxl", "vga", "cirrus", "bochs", "ramfb", "none")
                                 if g.x86 else ("virtio", "ramfb", "bochs", "none")))
        for a in ("vram", "ram", "vgamem", "vram64"):
            m.attrib.pop(a, None)
        return f"model(video {old}->{m.get('type')})"
    old = el.get("model")
    el.set("model", rng.choice(_VIRTIO_MODELS))
    return f"model({kind} {old}->{el.get('model')})"


def _machine_choices(g: Guest) -> list[str]:
    m = g.machine
    if g.q35:
        return ["q35", "pc-q35-7.2", "pc-q35-6.2", "pc-q35-5.2", "pc-q35-4.2", "pc-q35-2.12",
                "pc-i440fx-7.2", "pc"]
    if g.pc:
        return ["pc", "pc-i440fx-7.2", "pc-i440fx-5.2", "pc-i440fx-2.12", "pc-q35-7.2", "q35"]
    if g.virt and g.arch in ("aarch64", "armv7l"):
        return ["virt", "virt-7.2", "virt-6.2", "virt-5.2", "virt-4.0", "virt-2.12"]
    if g.pseries:
        return ["pseries", "pseries-7.2", "pseries-6.2", "pseries-5.2", "pseries-4.0", "pseries-3.1"]
    if g.s390:
        return ["s390-ccw-virtio", "s390-ccw-virtio-7.2", "s390-ccw-virtio-5.2", "s390-ccw-virtio-2.12"]
    return [m]


def edit_machine(g: Guest, rng: random.Random) -> str | None:
    """Change the machine type (alias, an older version, or i440fx <-> q35 keeping addresses),
    or leave ``machine=`` out (the arch's default machine: i440fx's ``pc`` on x86)."""
    default = randomdomain.DEFAULT_MACHINES.get(g.arch)
    t = g.root.find("os/type")
    if default is not None and "machine" in t.attrib and rng.random() < 0.15:
        del t.attrib["machine"]
        old, g.machine = g.machine, default
        return f"machine({old}->omitted)"
    new = rng.choice([m for m in _machine_choices(g) if m != g.machine] or [g.machine])
    if new == g.machine:
        return None
    old = g.machine
    g.root.find("os/type").set("machine", new)
    g.machine = new
    return f"machine({old}->{new})"


def edit_multifunction(g: Guest, rng: random.Random) -> str | None:
    """Toggle multifunction on a device, or move a device onto another's slot (function 1-7)."""
    devs = g.pci_devices()
    if not devs:
        return None
    d = rng.choice(devs)
    a = d.find("address")
    r = rng.random()
    if r < 0.4:
        if a.get("multifunction") == "on":
            del a.attrib["multifunction"]
            return f"multifunction({_describe(d)} off)"
        a.set("multifunction", rng.choice(("on", "off")))
        return f"multifunction({_describe(d)} {a.get('multifunction')})"
    if len(devs) < 2:
        return None
    other = rng.choice([x for x in devs if x is not d]).find("address")
    for k in ("domain", "bus", "slot"):
        if other.get(k) is not None:
            a.set(k, other.get(k))
    a.set("function", f"0x{rng.randint(1, 7):x}")
    a.attrib.pop("multifunction", None)
    if rng.random() < 0.6 and other.get("function") in ("0x0", "0", None):
        other.set("multifunction", "on")
    return f"share-slot({_describe(d)} fn {a.get('function')})"


def edit_empty_address(g: Guest, rng: random.Random) -> str | None:
    """Give some devices <address type='pci'/>, empty or partial, instead of their address."""
    devs = g.devices
    cands = [d for d in devs if isinstance(d.tag, str) and d.tag in (
        "disk", "interface", "controller", "hostdev", "sound", "watchdog", "rng", "memballoon",
        "video", "input", "filesystem", "shmem", "vsock")
        and not (d.tag == "controller" and d.get("index") == "0" and d.get("type") == "pci")]
    if not cands:
        return None
    picked = rng.sample(cands, min(len(cands), rng.randint(1, 3)))
    kinds = []
    for d in picked:
        old = d.find("address")
        new = etree.Element("address", type="pci")
        style = rng.choice(("empty", "empty", "bus", "slot", "bus+slot"))
        src = old if old is not None and old.get("type") == "pci" else None
        if "bus" in style:
            keep = src is not None and src.get("bus") and rng.random() < 0.7
            new.set("bus", src.get("bus") if keep else f"0x{rng.randint(0, 3):02x}")
        if "slot" in style:
            keep = src is not None and src.get("slot") and rng.random() < 0.5
            new.set("slot", src.get("slot") if keep else f"0x{rng.randint(1, 0x1f):02x}")
        if old is not None:
            old.addprevious(new)
            d.remove(old)
        else:
            d.append(new)
        kinds.append(f"{_describe(d)}:{style}")
    return "empty-address(" + ",".join(kinds) + ")"


def edit_gaps(g: Guest, rng: random.Random) -> str:
    """Add controllers with explicit indexes that leave gaps."""
    devs = g.devices
    made = []
    for _ in range(rng.randint(1, 2)):
        kind = rng.choice(("pci", "pci", "scsi", "usb", "virtio-serial", "sata") if g.x86 else
                          ("pci", "pci", "scsi", "usb", "virtio-serial"))
        idx = g.max_index(kind) + rng.randint(2, 5)
        if kind == "pci":
            models = ["pci-bridge"]
            if g.pcie or g.virt:
                models += ["pcie-root-port", "pcie-root-port", "pcie-to-pci-bridge"]
            model = rng.choice(models)
            el = _el(f"<controller type='pci' index='{idx}' model='{model}'/>")
        elif kind == "scsi":
            el = _el(f"<controller type='scsi' index='{idx}' model='virtio-scsi'/>")
        elif kind == "usb":
            el = _el(f"<controller type='usb' index='{idx}' model='qemu-xhci'/>")
        else:
            el = _el(f"<controller type='{kind}' index='{idx}'/>")
        same = [d for d in devs if d.tag == "controller"]
        (same[-1].addnext(el) if same else devs.append(el))
        made.append(f"{kind}#{idx}")
    return "gaps(" + ",".join(made) + ")"


def edit_duplicate(g: Guest, rng: random.Random) -> str | None:
    """Copy a device block (as users add a second NIC or disk), usually without its address."""
    cands = [d for d in g.devices if isinstance(d.tag, str) and d.tag in (
        "disk", "interface", "controller", "hostdev", "sound", "rng", "input", "video", "shmem")
        and not (d.tag == "controller" and d.get("type") == "pci" and d.get("index") == "0")]
    if not cands:
        return None
    d = rng.choice(cands)
    new = etree.fromstring(etree.tostring(d))
    a = new.find("address")
    if a is not None and rng.random() < 0.85:
        new.remove(a)
    if new.tag == "disk":
        t = new.find("target")
        if t is None or not t.get("dev"):
            return None
        m = re.match(r"(xvd|[a-z]d)", t.get("dev"))
        t.set("dev", _free_target(g, m.group(1) if m else "vd"))
        src = new.find("source")
        if src is not None and src.get("file"):
            src.set("file", src.get("file") + ".copy")
        for x in ("alias", "boot", "serial", "wwn"):
            for el in new.findall(x):
                new.remove(el)
    elif new.tag == "interface":
        for el in new.findall("mac") + new.findall("boot") + new.findall("alias"):
            new.remove(el)
    elif new.tag == "controller":
        if rng.random() < 0.7:
            new.attrib.pop("index", None)
        else:
            new.set("index", str(g.max_index(new.get("type")) + 1))
        for el in new.findall("target"):
            if new.get("type") == "pci":
                new.remove(el)
    elif new.tag == "hostdev":
        src = new.find("source")
        if src is not None and src.find("address") is not None:
            src.remove(src.find("address"))
            src.append(_el(_free_host_address(g, rng)))
        for el in new.findall("boot"):
            new.remove(el)
    elif new.tag == "shmem":
        new.set("name", new.get("name", "shm") + "-copy")
    d.addnext(new)
    return f"duplicate({_describe(d)}{' +addr' if new.find('address') is not None else ''})"


def edit_move(g: Guest, rng: random.Random) -> str | None:
    """Move a device to another bus (or slot) by editing its address."""
    devs = [d for d in g.pci_devices() if d.tag != "controller" or d.get("type") != "pci"]
    if not devs:
        return None
    d = rng.choice(devs)
    a = d.find("address")
    buses = sorted({int(c.get("index")) for c in g.controllers("pci") if (c.get("index") or "").isdigit()})
    if rng.random() < 0.6 and buses:
        a.set("bus", f"0x{rng.choice(buses):02x}")
    slot = rng.choice((0, 0, 1, 2, 3, 5, 0x0a, 0x1f))
    a.set("slot", f"0x{slot:02x}")
    a.set("function", "0x0")
    return f"move({_describe(d)} -> {a.get('bus')}:{a.get('slot')})"


def edit_reorder(g: Guest, rng: random.Random) -> str | None:
    """Move some devices elsewhere in <devices> (users paste a block where they like), most
    without their PCI address: libvirt places by kind, then by the order within a kind."""
    devs = [d for d in g.devices if isinstance(d.tag, str) and d.tag != "emulator"]
    if len(devs) < 3:
        return None
    picked = rng.sample(devs, rng.randint(1, min(4, len(devs) - 1)))
    parent = devs[0].getparent()
    for d in picked:
        a = d.find("address")
        if a is not None and a.get("type") == "pci" and rng.random() < 0.7 and \
                not (d.tag == "controller" and d.get("type") == "pci" and d.get("index") == "0"):
            d.remove(a)
        tail, d.tail = d.tail, None
        parent.remove(d)
        stay = [e for e in parent if isinstance(e.tag, str)]
        stay[rng.randrange(len(stay))].addprevious(d) if stay and rng.random() < 0.9 else parent.append(d)
        d.tail = tail
    return f"reorder({', '.join(_describe(d) for d in picked)})"


def edit_reindex(g: Guest, rng: random.Random) -> str | None:
    """Renumber a PCI controller (the devices behind it keep their bus numbers)."""
    cands = [c for c in g.controllers("pci") if c.get("index") not in (None, "0")]
    if not cands:
        return None
    c = rng.choice(cands)
    old = c.get("index")
    c.set("index", str(g.max_index("pci") + rng.randint(1, 3)))
    if rng.random() < 0.5:
        t = c.find("target")
        if t is not None:
            c.remove(t)
    return f"reindex({c.get('model')} {old}->{c.get('index')})"


#: the edits and how often each is drawn
EDITS = {
    "add": (edit_add, 5),
    "strip": (edit_strip, 3),
    "delete": (edit_delete, 3),
    "model": (edit_model, 3),
    "machine": (edit_machine, 2),
    "multifunction": (edit_multifunction, 2),
    "empty-address": (edit_empty_address, 2),
    "gaps": (edit_gaps, 2),
    "duplicate": (edit_duplicate, 3),
    "move": (edit_move, 2),
    "reindex": (edit_reindex, 1),
    "reorder": (edit_reorder, 2),
    "strip-controllers": (edit_strip_controllers, 2),
    "address-type": (edit_address_type, 1),
    "add-many": (edit_add_many, 2),
    "hotplug-off": (edit_hotplug_off, 1),
}


def fresh_uuid(g: Guest, rng: random.Random) -> None:
    """Give the guest a fresh UUID (also in an SMBIOS system entry, which must match it):
    copies of one base asked at the same time would clash in the daemon."""
    fresh = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
    uuid = g.root.find("uuid")
    if uuid is not None:
        uuid.text = fresh
    for entry in g.root.iterfind("sysinfo/system/entry[@name='uuid']"):
        entry.text = fresh


def make_edit(base: Base, k: int, seed, kinds=tuple(EDITS)) -> Case | None:
    """Edited copy number k of base (one to three edits), or None when none applies."""
    rng = random.Random(f"{seed}:{base.name}:{k}")
    g = parse(base.xml)
    if g is None:
        return None
    fresh_uuid(g, rng)
    names = [n for n in kinds if n in EDITS]
    weights = [EDITS[n][1] for n in names]
    done = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
        name = rng.choices(names, weights)[0]
        what = EDITS[name][0](g, rng)
        if what:
            done.append(what)
    if not done:
        return None
    case_name = f"{base.name}~{k}"
    name_el = g.root.find("name")
    if name_el is not None:
        name_el.text = f"ep-{case_name}"[:200]
    etree.indent(g.root, "  ")
    return Case(case_name, etree.tostring(g.root, encoding="unicode"), base.name, done,
                family=base.origin)


def make_cases(bases: list[Base], per_base: int, seed, kinds=tuple(EDITS)) -> list[Case]:
    out = []
    for b in bases:
        for k in range(per_base):
            c = make_edit(b, k, seed, kinds)
            if c is not None:
                c.index, c.seed = len(out), seed
                out.append(c)
    return out


# -- running ----------------------------------------------------------------------------------
def run(cases: list[Case], oracle, jobs: int = 2, progress=None) -> list[difftest.CaseResult]:
    plan, plan_error = difftest.load_planner("pciplan")
    done = [0]

    def one(c):
        r = difftest.run_case(c, oracle, plan, plan_error)
        done[0] += 1
        if progress:
            progress(done[0], len(cases))
        return r

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        results = list(ex.map(one, cases))
    for _ in range(2):
        again = [i for i, r in enumerate(results) if r.status == difftest.ORACLE_ERROR]
        for i in again:
            if not suiteprobe._wait_for_daemon(oracle):
                return results
            results[i] = difftest.run_case(cases[i], oracle, plan, plan_error)
    return results


failures = suiteprobe.failures


def report(results: list[difftest.CaseResult], out=sys.stdout, examples: int = 2,
           what: str = "edit cases", label: str = "edits") -> None:
    """Counts by status, the edits (``label``) drawn, and each difference grouped; for the
    cases of another probe, ``what`` names them."""
    counts = collections.Counter(r.status for r in results)
    print(f"{len(results)} {what} ({', '.join(f'{n} {s}' for s, n in counts.most_common())})", file=out)
    edits = collections.Counter(e.split("(")[0] for r in results for e in r.dom.edits)
    print(f"{label}: " + ", ".join(f"{k} {n}" for k, n in edits.most_common()), file=out)
    both = [r for r in results if r.status == difftest.OK_REJECT]
    if both:
        same = sum(1 for r in both if r.message_match)
        print(f"both refuse: {same}/{len(both)} with libvirt's message", file=out)
        for r in [r for r in both if not r.message_match][:examples * 5]:
            print(f"    other message: {r.dom.name} [{'; '.join(r.dom.edits)}]\n"
                  f"      libvirt: {difftest.message_core(r.libvirt_text)[:200]}\n"
                  f"      pciplan: {difftest.message_core(r.plan_reason)[:200]}", file=out)
    groups = collections.defaultdict(list)
    for r in failures(results):
        groups[f"{r.status}: {r.signature}"].append(r)
    for sig, rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"FAIL {len(rs)}x {sig}", file=out)
        for r in rs[:examples]:
            print(f"    {r.dom.name} [{'; '.join(r.dom.edits)}]: {r.first_line}", file=out)
    missed = collections.defaultdict(list)
    for r in results:
        if r.status == difftest.FALSE_ACCEPT:
            missed[difftest.message_core(r.libvirt_text)].append(r)
    if missed:
        print(f"refused by libvirt, accepted by pciplan ({sum(map(len, missed.values()))}; not counted):",
              file=out)
        for msg, rs in sorted(missed.items(), key=lambda kv: -len(kv[1])):
            print(f"  {len(rs)}x {msg[:150]}  e.g. {rs[0].dom.name} [{'; '.join(rs[0].dom.edits)}]", file=out)


def save(results: list[difftest.CaseResult], folder: Path,
         header: Callable[[difftest.CaseResult], str] = lambda r: (
             f"base: {r.dom.base}\nedits: {'; '.join(r.dom.edits)}\n"),
         other_messages: bool = False, also: Callable[[difftest.CaseResult], bool] = lambda r: False) -> int:
    """Write each failing case (with ``other_messages``, also each refused by both with
    another first message; and each case ``also`` picks) as FOLDER/NAME.in.xml, with NAME.txt:
    its status, ``header`` (where the case comes from), the differences and both answers."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for r in results:
        other = other_messages and r.status == difftest.OK_REJECT and not r.message_match
        if not (r.failed or r.status == difftest.CRASH or other or also(r)):
            continue
        stem = re.sub(r"[^A-Za-z0-9_.~-]", "_", r.dom.name)
        (folder / f"{stem}.in.xml").write_text(r.dom.xml)
        (folder / f"{stem}.txt").write_text(
            f"status: {r.status}{' (other message)' if other else ''}\n{header(r)}"
            f"first: {r.first_line}\n" + "".join(f"{d}\n" for d in r.diffs) +
            (f"\n--- libvirt\n{r.libvirt_text}\n" if r.libvirt_ok is False else "") +
            (f"\n--- pciplan\n{r.plan_text}\n" if r.plan_ok is not True else ""))
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", default="9.0.0", help="libvirt release whose test inputs to take")
    ap.add_argument("--cache", type=Path, default=suiteprobe.DEFAULT_CACHE)
    ap.add_argument("--bases", default="suite,golden", help="comma list of suite, golden")
    ap.add_argument("--edits", default=",".join(EDITS), help="comma list of " + ", ".join(EDITS))
    ap.add_argument("--per-base", type=int, default=1, help="edited copies of each planned domain")
    ap.add_argument("--seed", default="1")
    ap.add_argument("-k", dest="match", default="", help="only bases whose name contains this")
    ap.add_argument("-n", type=int, default=0, help="at most this many cases (a random sample)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--save", type=Path, help="write each failing case into this folder")
    ap.add_argument("--uri", default=None)
    args = ap.parse_args(argv)

    ok, why = libvirt_oracle.probe(args.uri)
    if not ok:
        print(f"editprobe: libvirt cannot be asked: {why}", file=sys.stderr)
        return 2
    oracle = libvirt_oracle.Oracle(args.uri)
    kinds = set(args.bases.split(","))
    bases: list[Base] = []
    t0 = time.monotonic()
    if "suite" in kinds:
        try:
            root = suiteprobe.fetch(args.version, args.cache)
        except OSError as err:
            print(f"editprobe: cannot get libvirt {args.version}'s sources: {err}", file=sys.stderr)
            return 2
        bases += suite_bases(root, oracle, args.jobs,
                             lambda cs: [c for c in cs if args.match in c.name])
    if "golden" in kinds:
        bases += [b for b in golden_bases() if args.match in b.name]
    cases = make_cases(bases, args.per_base, args.seed, tuple(args.edits.split(",")))
    if args.n and len(cases) > args.n:
        cases = random.Random(args.seed).sample(cases, args.n)
    print(f"editprobe: {len(bases)} planned domains, {len(cases)} edit cases, seed {args.seed}, "
          f"pciplan from {difftest.import_pciplan().__file__}", flush=True)

    progress = difftest.Progress(t0)
    results = run(cases, oracle, args.jobs, progress)
    progress.end()
    report(results)
    print(f"oracle: {oracle.misses} asked, {oracle.hits} from cache; {time.monotonic() - t0:.0f}s")
    if args.save:
        print(f"saved {save(results, args.save)} cases under {args.save}")
    return 1 if failures(results) else 0


if __name__ == "__main__":
    sys.exit(main())
