"""Seeded generator of random libvirt domain XMLs, "drawn the way users write them".

    from support.randomdomain import generate, parse_spread
    dom = generate(seed=1234, index=7)          # GeneratedDomain
    dom.xml, dom.family, dom.style

The same (seed, index, spread, kvm) always gives the same XML.  Each domain
belongs to a machine *family* drawn from a configurable spread (see
``DEFAULT_SPREAD``; ``parse_spread("q35=1,pc=1")`` builds one from a string)
and to a *style* (virt-manager/virt-install, Nova, KubeVirt, minimal,
legacy, crowded, odd) that decides the device mix.  Only devices that exist for
the family's arch/machine are drawn (no IDE on q35, no x86 devices on ARM, ...),
addresses are mostly absent, sometimes ``<address type='pci'/>``, all-zero or
partial, and a few are explicit and plausible.  PCI hostdevs use host
addresses that do not exist on a normal test host (buses 0x0a..0x7f).

Some generated domains are rejected by libvirt on purpose (about 10%: odd but
plausible user mistakes); a differential test checks that a planner rejects
the same ones.

Command line (from the tests/ directory)::

    python -m support.randomdomain --seed 5 --index 3          # print one
    python -m support.randomdomain --seed 5 -n 50 --out DIR    # write files
"""

from __future__ import annotations

import os
import random
import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace

__all__ = ["DEFAULT_SPREAD", "FAMILIES", "GeneratedDomain", "generate", "generate_many", "parse_spread"]

# family -> weight (percent); see also FAMILIES below
DEFAULT_SPREAD = {
    "q35": 30,
    "pc": 20,
    "aarch64-virt": 20,
    "riscv64-virt": 10,
    "pseries": 10,
    "armv7l-virt": 5,
    "s390x": 5,
}


@dataclass(frozen=True)
class Family:
    name: str
    arches: tuple          # ((arch, weight), ...)
    machines: tuple        # ((machine, weight), ...)
    kind: str              # "q35" | "pc" | "virt" | "riscv" | "pseries" | "s390"

    @property
    def x86(self) -> bool:
        return self.kind in ("q35", "pc")

    @property
    def pcie(self) -> bool:
        return self.kind in ("q35", "virt", "riscv")


FAMILIES = {
    "q35": Family("q35", (("x86_64", 85), ("i686", 15)),
                  (("q35", 50), ("pc-q35-7.2", 38), ("pc-q35-6.2", 6), ("pc-q35-5.2", 3), ("pc-q35-4.2", 3)), "q35"),
    "pc": Family("pc", (("x86_64", 75), ("i686", 25)),
                 (("pc", 50), ("pc-i440fx-7.2", 38), ("pc-i440fx-6.2", 6), ("pc-i440fx-5.2", 3),
                  ("pc-i440fx-4.2", 3)), "pc"),
    "aarch64-virt": Family("aarch64-virt", (("aarch64", 1),),
                           (("virt", 70), ("virt-7.2", 22), ("virt-6.2", 5), ("virt-4.0", 3)), "virt"),
    "armv7l-virt": Family("armv7l-virt", (("armv7l", 1),), (("virt", 80), ("virt-7.2", 20)), "virt"),
    "riscv64-virt": Family("riscv64-virt", (("riscv64", 1),), (("virt", 1),), "riscv"),
    "pseries": Family("pseries", (("ppc64", 60), ("ppc64le", 40)),
                      (("pseries", 75), ("pseries-7.2", 20), ("pseries-6.2", 5)), "pseries"),
    "s390x": Family("s390x", (("s390x", 1),), (("s390-ccw-virtio", 75), ("s390-ccw-virtio-7.2", 25)), "s390"),
}

EMULATORS = {
    "x86_64": "/usr/bin/qemu-system-x86_64",
    "i686": "/usr/bin/qemu-system-i386",
    "aarch64": "/usr/bin/qemu-system-aarch64",
    "armv7l": "/usr/bin/qemu-system-arm",
    "riscv64": "/usr/bin/qemu-system-riscv64",
    "ppc64": "/usr/bin/qemu-system-ppc64",
    "ppc64le": "/usr/bin/qemu-system-ppc64",
    "s390x": "/usr/bin/qemu-system-s390x",
}

# style -> weight, per family kind
STYLES = {
    "q35": (("virt-install", 30), ("nova", 18), ("kubevirt", 12), ("minimal", 8), ("odd", 17),
            ("crowded", 7), ("legacy", 8)),
    "pc": (("virt-install", 25), ("nova", 20), ("minimal", 10), ("odd", 20), ("crowded", 10), ("legacy", 15)),
    "virt": (("virt-install", 40), ("nova", 15), ("minimal", 12), ("odd", 20), ("crowded", 8), ("legacy", 5)),
    "riscv": (("virt-install", 40), ("nova", 15), ("minimal", 15), ("odd", 20), ("crowded", 10)),
    "pseries": (("virt-install", 35), ("nova", 20), ("minimal", 12), ("odd", 18), ("crowded", 15)),
    "s390": (("virt-install", 40), ("nova", 20), ("minimal", 15), ("odd", 25)),
}


def parse_spread(text: str | dict | None) -> dict:
    """'q35=30,pc=20' (or a dict, or None for the default) -> {family: weight}."""
    if text is None or text == "":
        return dict(DEFAULT_SPREAD)
    if isinstance(text, dict):
        spread = dict(text)
    else:
        spread = {}
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            name, _, w = part.partition("=")
            spread[name.strip()] = float(w) if w.strip() else 1.0
    unknown = sorted(set(spread) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown machine families {unknown}; known: {sorted(FAMILIES)}")
    if not any(w > 0 for w in spread.values()):
        raise ValueError("the spread gives every family weight 0")
    return spread


@dataclass
class GeneratedDomain:
    xml: str
    family: str
    style: str
    arch: str
    machine: str
    seed: object
    index: int
    notes: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"gen-{self.seed}-{self.index}"


def _pick(rng: random.Random, weighted):
    items = list(weighted)
    return rng.choices([i[0] for i in items], weights=[i[1] for i in items], k=1)[0]


def _hex(v: int, width: int = 2) -> str:
    return f"0x{v:0{width}x}"


class _Builder:
    """State of one domain while it is being drawn."""

    def __init__(self, rng: random.Random, fam: Family, arch: str, machine: str, style: str,
                 kvm: bool, name: str):
        self.rng, self.fam, self.arch, self.machine, self.style = rng, fam, arch, machine, style
        self.kvm, self.name = kvm, name
        self.notes: list[str] = []
        # device element lists, emitted in _emit()
        self.disks: list[ET.Element] = []
        self.pci_ctrls: list[ET.Element] = []
        self.other_ctrls: list[ET.Element] = []
        self.rest: list[ET.Element] = []        # everything after controllers
        self.nics: list[ET.Element] = []
        self.hostdevs: list[ET.Element] = []
        # bookkeeping
        self.vd = iter("abcdefghijklmnopqrstuvwxyz")
        self.sd = iter("abcdefghijklmnopqrstuvwxyz")
        self.hd = iter("abcd")
        self.used_slots: set[tuple] = set()     # explicit (bus, slot) used
        self.used_host: set[tuple] = set()
        self.used_zpci_uid: set[int] = set()
        self.used_zpci_fid: set[int] = set()
        self.usb = "default"                    # "default" | "none" | model | "absent"
        self.free_ports: list[int] = []         # explicit-index root/downstream ports, unused
        self.pci_buses: list[int] = []          # explicit-index buses accepting PCI endpoints (slots 1..31)
        self.phbs: list[int] = []               # pseries extra PHB indexes
        self.explicit_rate = {"odd": 0.18, "legacy": 0.10, "crowded": 0.03}.get(style, 0.04)
        self.typeonly_rate = {"odd": 0.12}.get(style, 0.04)
        self.zero_rate = {"odd": 0.06}.get(style, 0.01)
        self.graphics = None
        self.acpi = False
        self.serial_ctrl = False
        self.mac_n = 0
        self.pci_devices: list[tuple] = []     # (element, kind) of every PCI-capable endpoint
        self.numa = False                      # emit a <cpu><numa> cell
        self.max_memory = False                # emit <maxMemory> (memory devices)

    # -- small helpers -----------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def mac(self) -> str:
        self.mac_n += 1
        r = self.rng
        return "52:54:00:%02x:%02x:%02x" % (r.randrange(256), r.randrange(256), self.mac_n % 256)

    def host_address(self) -> dict:
        while True:
            b = self.rng.randrange(0x0a, 0x80)
            s = self.rng.randrange(0, 0x20)
            f = self.rng.choice((0, 0, 0, 1, 2, 3, 4, 5, 6, 7))
            if (b, s, f) not in self.used_host:
                self.used_host.add((b, s, f))
                return {"domain": "0x0000", "bus": _hex(b), "slot": _hex(s), "function": _hex(f, 1)}

    def pcie_like(self) -> bool:
        return self.fam.pcie

    # -- addresses -----------------------------------------------------------------
    def maybe_address(self, el: ET.Element, pci_kind: str | None):
        """Give `el` an address the way users do (mostly none).

        pci_kind: None (device is not PCI here, give nothing), "pci" (conventional),
        "pcie" (PCIe/virtio: wants a port on PCIe machines).
        """
        if pci_kind is None:
            return
        self.pci_devices.append((el, pci_kind))
        r = self.rng.random()
        if r < self.explicit_rate:
            self.explicit_address(el, pci_kind)
        elif r < self.explicit_rate + self.typeonly_rate:
            ET.SubElement(el, "address", type="pci")
        elif r < self.explicit_rate + self.typeonly_rate + self.zero_rate:
            attrs = {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x00",
                     "function": self.rng.choice(("0x0", "0x0", "0x3"))}
            if self.chance(0.3):
                attrs["multifunction"] = "on"
            ET.SubElement(el, "address", attrs)

    def bus0_slot(self) -> int | None:
        kind = self.fam.kind
        if kind == "pc":
            candidates = range(0x03, 0x20)
        elif kind == "q35":
            candidates = [s for s in range(0x02, 0x1d) if s not in (0x1a, 0x1b)]
        elif kind == "pseries":
            candidates = range(0x01, 0x20)
        elif kind == "s390":
            candidates = range(0x01, 0x20)
        else:                       # virt / riscv: bus 0 slots past the usual root-port slots
            candidates = range(0x02, 0x20)
        free = [s for s in candidates if (0, s) not in self.used_slots]
        if not free:
            return None
        # users pick "round" looking slots more often than others
        s = self.rng.choice(free[: max(4, len(free) // 2)] if self.chance(0.6) else free)
        self.used_slots.add((0, s))
        return s

    def explicit_address(self, el: ET.Element, pci_kind: str):
        kind = self.fam.kind
        attrs = {"type": "pci", "domain": "0x0000"}
        # a free explicit port/bus declared by the user, when there is one
        if pci_kind == "pcie" and self.free_ports and self.chance(0.7):
            bus = self.free_ports.pop(0)
            attrs.update(bus=_hex(bus), slot="0x00", function="0x0")
        elif pci_kind == "pci" and self.pci_buses and self.chance(0.6):
            bus = self.rng.choice(self.pci_buses)
            free = [s for s in range(1, 0x20) if (bus, s) not in self.used_slots]
            if not free:
                return
            s = free[0] if self.chance(0.5) else self.rng.choice(free)
            self.used_slots.add((bus, s))
            attrs.update(bus=_hex(bus), slot=_hex(s), function="0x0")
        elif kind == "pseries" and self.phbs and self.chance(0.5):
            bus = self.rng.choice(self.phbs)
            free = [s for s in range(1, 0x20) if (bus, s) not in self.used_slots]
            s = self.rng.choice(free)
            self.used_slots.add((bus, s))
            attrs.update(bus=_hex(bus), slot=_hex(s), function="0x0")
        else:
            s = self.bus0_slot()
            if s is None:
                return
            if self.chance(0.25):           # partial: slot only
                attrs = {"type": "pci", "slot": _hex(s)}
            else:
                attrs.update(bus="0x00", slot=_hex(s), function="0x0")
        if kind == "s390" and self.chance(0.5):
            a = ET.SubElement(el, "address", attrs)
            self.zpci(a)
            return
        ET.SubElement(el, "address", attrs)

    def zpci(self, addr: ET.Element, p_uid=0.7, p_fid=0.5):
        attrs = {}
        if self.chance(p_uid):
            while True:
                uid = self.rng.randrange(1, 0x80)
                if uid not in self.used_zpci_uid:
                    self.used_zpci_uid.add(uid)
                    attrs["uid"] = _hex(uid, 4)
                    break
        if self.chance(p_fid):
            while True:
                fid = self.rng.randrange(0, 0x100)
                if fid not in self.used_zpci_fid:
                    self.used_zpci_fid.add(fid)
                    attrs["fid"] = _hex(fid, 8)
                    break
        if attrs:
            ET.SubElement(addr, "zpci", attrs)

    # -- device families -----------------------------------------------------------
    def virtio_kind(self) -> str | None:
        """PCI kind of a virtio device on this machine (None: not PCI, e.g. ccw)."""
        return None if self.fam.kind == "s390" else "pcie"

    def disk(self, bus: str, device: str = "disk"):
        r = self.rng
        el = ET.Element("disk", type="file", device=device)
        if bus == "virtio" and self.chance(0.06) and self.fam.kind != "s390":
            el.set("model", r.choice(("virtio-transitional", "virtio-non-transitional")))
        fmt = "raw" if device == "cdrom" else r.choice(("qcow2", "qcow2", "raw"))
        ET.SubElement(el, "driver", name="qemu", type=fmt)
        if device == "disk" or self.chance(0.5):
            ext = "iso" if device == "cdrom" else fmt
            ET.SubElement(el, "source", file=f"/var/lib/libvirt/images/{self.name}-{len(self.disks)}.{ext}")
        letters = {"virtio": self.vd, "ide": self.hd}.get(bus, self.sd)
        try:
            letter = next(letters)
        except StopIteration:
            return
        prefix = {"virtio": "vd", "ide": "hd"}.get(bus, "sd")
        target = ET.SubElement(el, "target", dev=prefix + letter, bus=bus)
        if self.style == "odd":
            self.odd_disk_name(target, prefix, bus)
        if device == "cdrom":
            ET.SubElement(el, "readonly")
        if bus == "virtio":
            kind = self.virtio_kind()
            if el.get("model") == "virtio-transitional":
                kind = "pci"
            if self.fam.kind == "s390" and self.chance(0.15):
                kind = "pcie"       # a zPCI virtio disk
            self.maybe_address(el, kind)
        self.disks.append(el)

    def disk_buses(self):
        """(bus, weight) for hard disks on this machine."""
        k = self.fam.kind
        if k == "pc":
            return (("virtio", 60), ("sata", 10), ("scsi", 12), ("ide", 15), ("usb", 3))
        if k == "q35":
            return (("virtio", 68), ("sata", 15), ("scsi", 14), ("usb", 3))
        if k in ("virt", "riscv"):
            return (("virtio", 80), ("scsi", 16), ("usb", 4))
        if k == "pseries":
            return (("virtio", 70), ("scsi", 27), ("usb", 3))
        return (("virtio", 1),)

    def cdrom_bus(self) -> str | None:
        k = self.fam.kind
        if k == "pc":
            return _pick(self.rng, (("ide", 80), ("sata", 10), ("scsi", 10)))
        if k == "q35":
            return _pick(self.rng, (("sata", 85), ("scsi", 15)))
        if k in ("virt", "riscv", "pseries"):
            return _pick(self.rng, (("scsi", 85), ("usb", 15)))
        return None

    def nic_models(self):
        k = self.fam.kind
        if self.fam.x86:
            return (("virtio", 55), (None, 7), ("e1000", 8), ("e1000e", 6), ("rtl8139", 6),
                    ("virtio-transitional", 3), ("virtio-non-transitional", 4), ("vmxnet3", 3),
                    ("ne2k_pci", 2), ("pcnet", 2), ("igb", 2))
        if k in ("virt", "riscv"):
            return (("virtio", 75), (None, 8), ("e1000", 4), ("e1000e", 4), ("rtl8139", 2),
                    ("virtio-transitional", 2), ("virtio-non-transitional", 3), ("igb", 1), ("vmxnet3", 1))
        if k == "pseries":
            return (("virtio", 65), (None, 10), ("e1000", 8), ("rtl8139", 5), ("spapr-vlan", 8),
                    ("virtio-non-transitional", 4))
        return (("virtio", 90), (None, 10))

    def nic_kind(self, model) -> str | None:
        if self.fam.kind == "s390":
            return None
        if model in ("virtio", "virtio-non-transitional"):
            return "pcie"
        if model is None:
            return "pcie" if self.fam.kind in ("virt", "riscv") else "pci"
        if model == "spapr-vlan":
            return None
        if model in ("e1000e", "igb"):
            return "pcie"
        return "pci"

    def interface(self, model="__draw__", kind=None):
        r = self.rng
        if model == "__draw__":
            model = _pick(r, self.nic_models())
        itype = kind or _pick(r, (("network", 50), ("bridge", 30), ("user", 10), ("ethernet", 10)))
        el = ET.Element("interface", type=itype)
        if self.chance(0.85):
            ET.SubElement(el, "mac", address=self.mac())
        if itype == "network":
            ET.SubElement(el, "source", network=r.choice(("default", "default", "provider", "tenant-net")))
        elif itype == "bridge":
            ET.SubElement(el, "source", bridge=r.choice(("br0", "virbr0", "br-ex")))
        elif itype == "ethernet" and self.chance(0.7):
            ET.SubElement(el, "target", dev=f"tap{r.randrange(16**6):06x}-{len(self.nics)}")
        if model is not None:
            ET.SubElement(el, "model", type=model)
        self.maybe_address(el, self.nic_kind(model))
        self.nics.append(el)

    def hostdev_interface(self):
        el = ET.Element("interface", type="hostdev", managed="yes")
        ET.SubElement(el, "mac", address=self.mac())
        src = ET.SubElement(el, "source")
        ET.SubElement(src, "address", dict(type="pci", **self.host_address()))
        self.maybe_address(el, "pcie")
        self.nics.append(el)

    def hostdev(self):
        el = ET.Element("hostdev", mode="subsystem", type="pci", managed=self.rng.choice(("yes", "yes", "no")))
        if self.chance(0.3):
            ET.SubElement(el, "driver", name="vfio")
        src = ET.SubElement(el, "source")
        ET.SubElement(src, "address", self.host_address())
        if self.fam.kind == "s390":
            r = self.rng.random()
            if r < 0.35:
                a = ET.SubElement(el, "address", type="pci")
                self.zpci(a)
            elif r < 0.5:
                self.explicit_address(el, "pcie")
        else:
            self.maybe_address(el, "pcie")
        self.hostdevs.append(el)

    # USB ---------------------------------------------------------------------------
    def usb_controllers(self):
        r, k = self.rng, self.fam.kind
        if k == "s390":
            self.usb = "absent"
            return
        if self.fam.x86:
            p_explicit = {"virt-install": 0.75, "legacy": 0.7, "nova": 0.25, "kubevirt": 0.5, "odd": 0.5}.get(
                self.style, 0.2)
        else:
            p_explicit = {"virt-install": 0.85, "minimal": 0.2, "nova": 0.5}.get(self.style, 0.45)
        if not self.chance(p_explicit):
            self.usb = "absent" if k in ("virt", "riscv") else "default"
            return
        if self.style == "kubevirt" and self.chance(0.6):
            model = "none"
        elif self.fam.x86:
            model = _pick(r, (("qemu-xhci", 45), ("ich9-set", 14), ("piix3-uhci", 8), ("nec-xhci", 6),
                              ("none", 8), (None, 7), ("ehci", 4), ("piix4-uhci", 2), ("pci-ohci", 2),
                              ("two", 4)))
        elif k == "pseries":
            model = _pick(r, (("qemu-xhci", 60), (None, 15), ("pci-ohci", 8), ("nec-xhci", 7), ("none", 10)))
        else:
            model = _pick(r, (("qemu-xhci", 70), (None, 12), ("nec-xhci", 10), ("none", 8)))
        if model == "ich9-set":
            self.ich9_set(0)
            if self.chance(0.1):
                self.ich9_set(1)
            self.usb = "ich9"
            return
        if model == "two":          # e.g. an xhci plus an ich9 set for legacy guests
            c = ET.Element("controller", type="usb", index="0", model="qemu-xhci")
            self.maybe_address(c, "pcie")
            self.other_ctrls.append(c)
            self.ich9_set(1)
            self.usb = "qemu-xhci"
            return
        c = ET.Element("controller", type="usb")
        if self.chance(0.8) or model == "none":
            c.set("index", "0")
        if model is not None:
            c.set("model", model)
        if model in ("qemu-xhci", "nec-xhci") and self.chance(0.5):
            c.set("ports", "15")
        if model != "none":
            pk = "pcie" if model in ("qemu-xhci", "nec-xhci") else "pci"
            # the PIIX3 USB controller index 0 on pc is fixed at 00:01.2
            if not (self.fam.kind == "pc" and model in (None, "piix3-uhci")):
                self.maybe_address(c, pk)
            elif self.chance(0.1):
                ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x00", slot="0x01",
                              function="0x2")
        self.other_ctrls.append(c)
        self.usb = model or "default-model"

    def ich9_set(self, index: int):
        order = ["ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3"]
        if self.chance(0.2):
            order = order[1:] + order[:1]
        starts = {"ich9-uhci1": "0", "ich9-uhci2": "2", "ich9-uhci3": "4"}
        explicit = self.chance(self.explicit_rate * 1.5)
        slot = self.bus0_slot() if explicit else None
        for m in order:
            c = ET.Element("controller", type="usb", index=str(index), model=m)
            if m in starts:
                ET.SubElement(c, "master", startport=starts[m])
            if slot is not None:
                fn = {"ich9-ehci1": 7, "ich9-uhci1": 0, "ich9-uhci2": 1, "ich9-uhci3": 2}[m]
                a = {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": _hex(slot), "function": _hex(fn, 1)}
                if fn == 0:
                    a["multifunction"] = "on"
                ET.SubElement(c, "address", a)
            self.other_ctrls.append(c)

    def usb_ok(self) -> bool:
        """Whether the domain will have a USB bus (explicit or machine default)."""
        return self.usb not in ("none", "absent")

    # PCI controllers -------------------------------------------------------------------
    def pci_controllers(self):
        k = self.fam.kind
        if k in ("q35", "virt", "riscv"):
            self.pcie_controllers()
        elif k == "pc":
            self.pc_controllers()
        elif k == "pseries":
            self.pseries_controllers()
        elif k == "s390":
            if self.chance(0.3):
                self.pci_ctrls.append(ET.Element("controller", type="pci", index="0", model="pci-root"))

    def root(self, model: str, with_index: bool = True):
        c = ET.Element("controller", type="pci", model=model)
        if with_index:
            c.set("index", "0")
        self.pci_ctrls.append(c)

    def pcie_controllers(self):
        r, st = self.rng, self.style
        p = {"virt-install": 0.55, "nova": 0.55, "kubevirt": 0.9, "odd": 0.55, "crowded": 0.3,
             "legacy": 0.35, "minimal": 0.1}[st]
        if not self.chance(p):
            if self.chance(0.1):
                self.root("pcie-root")
            return
        layout = _pick(r, (("virt-install", 45), ("numbered", 25), ("bridges", 10), ("switch", 7),
                           ("dmi", 6 if self.fam.kind == "q35" else 2), ("pxb-pcie", 3), ("odd", 4)))
        if st == "kubevirt":
            layout = "numbered"
        if layout == "virt-install":
            # virt-install: pcie-root without index, then N bare root ports
            self.root("pcie-root", with_index=self.chance(0.3))
            for _ in range(r.choice((1, 2, 4, 8, 14, 14, 14))):
                self.pci_ctrls.append(ET.Element("controller", type="pci", model="pcie-root-port"))
            return
        if layout == "numbered":
            self.root("pcie-root", with_index=True)
            n = r.choice((1, 2, 3, 4, 6, 8, 10, 16))
            full = self.chance(0.35)           # "saved" XML: chassis/port/address given
            slot, fn = 1 if self.fam.kind != "q35" or self.chance(0.5) else 2, 0
            for i in range(1, n + 1):
                c = ET.Element("controller", type="pci", index=str(i), model="pcie-root-port")
                if self.chance(0.08):
                    ET.SubElement(c, "model", name="ioh3420")
                elif full:
                    ET.SubElement(c, "model", name="pcie-root-port")
                if full:
                    t = {"chassis": str(i), "port": _hex(slot * 8 + fn)}
                    if self.chance(0.05):
                        t["hotplug"] = "off"
                    ET.SubElement(c, "target", t)
                    a = {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": _hex(slot), "function": _hex(fn, 1)}
                    if fn == 0 and i < n:
                        a["multifunction"] = "on"
                    ET.SubElement(c, "address", a)
                    self.used_slots.add((0, slot))
                    fn += 1
                    if fn == 8:
                        slot, fn = slot + 1, 0
                elif self.chance(0.03):
                    ET.SubElement(c, "target", hotplug="off")
                self.pci_ctrls.append(c)
                self.free_ports.append(i)
            if self.chance(0.2):
                self.pcie_to_pci_bridge(n + 1)
            return
        if layout == "bridges":
            self.root("pcie-root", with_index=True)
            self.pci_ctrls.append(ET.Element("controller", type="pci", index="1", model="pcie-root-port"))
            self.pcie_to_pci_bridge(2, on_port=1 if self.chance(0.4) else None)
            if self.chance(0.3):
                c = ET.Element("controller", type="pci", index="3", model="pci-bridge")
                self.pci_ctrls.append(c)
                self.pci_buses.append(3)
            return
        if layout == "switch":
            self.root("pcie-root", with_index=True)
            self.pci_ctrls.append(ET.Element("controller", type="pci", index="1", model="pcie-root-port"))
            self.pci_ctrls.append(ET.Element("controller", type="pci", index="2",
                                             model="pcie-switch-upstream-port"))
            n = r.choice((1, 2, 3, 4))
            for i in range(3, 3 + n):
                self.pci_ctrls.append(ET.Element("controller", type="pci", index=str(i),
                                                 model="pcie-switch-downstream-port"))
                self.free_ports.append(i)
            return
        if layout == "dmi":
            self.root("pcie-root", with_index=True)
            c = ET.Element("controller", type="pci", index="1", model="dmi-to-pci-bridge")
            if self.chance(0.2):
                ET.SubElement(c, "model", name="i82801b11-bridge")
                ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x00", slot="0x1e", function="0x0")
                self.used_slots.add((0, 0x1e))
            self.pci_ctrls.append(c)
            c = ET.Element("controller", type="pci", index="2", model="pci-bridge")
            self.pci_ctrls.append(c)
            self.pci_buses.append(2)
            return
        if layout == "pxb-pcie":
            self.root("pcie-root", with_index=True)
            c = ET.Element("controller", type="pci", index="1", model="pcie-expander-bus")
            if self.chance(0.5):
                ET.SubElement(c, "target", busNr=str(r.choice((100, 200, 254, 252))))
            self.pci_ctrls.append(c)
            for i in (2, 3):
                c = ET.Element("controller", type="pci", index=str(i), model="pcie-root-port")
                if self.chance(0.6):
                    ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x01", slot="0x00",
                                  function=_hex(i - 2, 1))
                self.pci_ctrls.append(c)
                self.free_ports.append(i)
            return
        # odd: a mixture of indexed and bare controllers, possibly out of order
        if self.chance(0.85):
            self.root("pcie-root", with_index=self.chance(0.6))
        items = [("pcie-root-port", str(i)) for i in r.sample(range(1, 7), r.randrange(1, 4))]
        items += [("pcie-root-port", None)] * r.randrange(0, 3)
        if self.chance(0.3):
            items.append(("pcie-to-pci-bridge", None))
        if self.chance(0.1):
            items.append(("pci-bridge", None))         # usually rejected: no legacy bus
        r.shuffle(items)
        for model, idx in items:
            c = ET.Element("controller", type="pci", model=model)
            if idx is not None:
                c.set("index", idx)
            self.pci_ctrls.append(c)

    def pcie_to_pci_bridge(self, index: int, on_port: int | None = None):
        c = ET.Element("controller", type="pci", index=str(index), model="pcie-to-pci-bridge")
        if on_port is not None:
            ET.SubElement(c, "address", type="pci", domain="0x0000", bus=_hex(on_port), slot="0x00",
                          function="0x0")
            if on_port in self.free_ports:
                self.free_ports.remove(on_port)
        self.pci_ctrls.append(c)
        self.pci_buses.append(index)

    def pc_controllers(self):
        r, st = self.rng, self.style
        p = {"odd": 0.35, "legacy": 0.2, "crowded": 0.25}.get(st, 0.07)
        if self.chance(0.08):
            self.root("pci-root", with_index=self.chance(0.9))
        if not self.chance(p):
            return
        layout = _pick(r, (("bridges", 60), ("pxb", 15), ("bare", 25)))
        if layout == "bridges":
            if not any(c.get("model") == "pci-root" for c in self.pci_ctrls):
                self.root("pci-root")
            n = r.choice((1, 1, 2, 3))
            for i in range(1, n + 1):
                c = ET.Element("controller", type="pci", index=str(i), model="pci-bridge")
                if self.chance(0.2):
                    ET.SubElement(c, "target", chassisNr=str(i + r.choice((0, 0, 10))))
                if self.chance(0.15):
                    s = self.bus0_slot()
                    if s is not None:
                        ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x00", slot=_hex(s),
                                      function="0x0")
                self.pci_ctrls.append(c)
                self.pci_buses.append(i)
        elif layout == "pxb":
            self.root("pci-root")
            c = ET.Element("controller", type="pci", index="1", model="pci-expander-bus")
            if self.chance(0.5):
                ET.SubElement(c, "target", busNr=str(r.choice((254, 252, 128))))
            self.pci_ctrls.append(c)
            self.pci_buses.append(1)
            if self.chance(0.5):
                c = ET.Element("controller", type="pci", index="2", model="pci-bridge")
                ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x01", slot="0x00", function="0x0")
                self.used_slots.add((1, 0))
                self.pci_ctrls.append(c)
                self.pci_buses.append(2)
        else:
            for _ in range(r.randrange(1, 3)):
                self.pci_ctrls.append(ET.Element("controller", type="pci", model="pci-bridge"))

    def pseries_controllers(self):
        r = self.rng
        p = {"odd": 0.35, "crowded": 0.3}.get(self.style, 0.1)
        if self.chance(0.15):
            c = ET.Element("controller", type="pci", index="0", model="pci-root")
            if self.chance(0.5):
                ET.SubElement(c, "model", name="spapr-pci-host-bridge")
                ET.SubElement(c, "target", index="0")
            self.pci_ctrls.append(c)
        if not self.chance(p):
            return
        for i in range(1, r.choice((1, 1, 2, 3)) + 1):
            c = ET.Element("controller", type="pci", index=str(i), model="pci-root")
            if self.chance(0.7):
                ET.SubElement(c, "model", name="spapr-pci-host-bridge")
            if self.chance(0.6):
                ET.SubElement(c, "target", index=str(i))
            self.pci_ctrls.append(c)
            self.phbs.append(i)

    # other controllers -------------------------------------------------------------------
    def scsi_controller(self, force=False):
        r, k = self.rng, self.fam.kind
        if not force and not self.chance({"virt-install": 0.25, "kubevirt": 0.3, "odd": 0.3}.get(self.style, 0.12)):
            return
        if k == "s390":
            models = (("virtio-scsi", 1),)
        elif self.fam.x86:
            models = (("virtio-scsi", 60), ("lsilogic", 12), (None, 15), ("virtio-non-transitional", 4),
                      ("virtio-transitional", 3), ("lsisas1068", 3), ("megasas" if False else "lsisas1078", 3))
        elif k == "pseries":
            models = (("virtio-scsi", 55), (None, 30), ("ibmvscsi", 15))
        else:
            models = (("virtio-scsi", 80), (None, 12), ("virtio-non-transitional", 8))
        n = 2 if self.chance(0.1) else 1
        for i in range(n):
            model = _pick(r, models)
            c = ET.Element("controller", type="scsi", index=str(i))
            if model:
                c.set("model", model)
            if model in ("virtio-scsi", "virtio-non-transitional"):
                kind = self.virtio_kind()
                if self.chance(0.2) and k != "s390":
                    ET.SubElement(c, "driver", queues=str(r.choice((2, 4))))
            elif model == "ibmvscsi" or (model is None and k == "pseries") or k == "s390":
                kind = None
            else:
                kind = "pci"
            self.maybe_address(c, kind)
            self.other_ctrls.append(c)

    def virtio_serial_controller(self):
        if not self.chance({"odd": 0.2}.get(self.style, 0.08)):
            return
        c = ET.Element("controller", type="virtio-serial", index="0")
        if self.chance(0.3):
            c.set("ports", "16")
        self.maybe_address(c, self.virtio_kind())
        self.other_ctrls.append(c)
        self.serial_ctrl = True

    # the rest ------------------------------------------------------------------------
    def video_and_graphics(self):
        r, k = self.rng, self.fam.kind
        p_graphics = {"virt-install": 0.8, "nova": 0.9, "kubevirt": 0.6, "minimal": 0.15, "legacy": 0.9}.get(
            self.style, 0.55)
        if k in ("virt", "riscv", "s390"):
            p_graphics *= 0.5
        if not self.chance(p_graphics):
            if self.chance(0.05) and k != "s390":
                v = ET.Element("video")
                ET.SubElement(v, "model", type="none")
                self.rest.append(v)
            return
        gtype = "spice" if self.fam.x86 and self.chance(0.35) else "vnc"
        g = ET.Element("graphics", type=gtype, autoport="yes")
        if gtype == "vnc" and self.chance(0.5):
            g.set("listen", "127.0.0.1")
        if gtype == "spice":
            ET.SubElement(g, "image", compression="off")
        self.graphics = gtype
        self.rest.append(g)
        if self.chance(0.12):
            return                  # graphics only: libvirt adds the default video
        if self.fam.x86:
            models = (("qxl", 30), ("virtio", 25), ("cirrus", 15), ("vga", 15), ("bochs", 6), (None, 4),
                      ("none", 5))
        elif k == "pseries":
            models = (("vga", 45), ("virtio", 35), ("bochs", 8), (None, 7), ("none", 5))
        elif k == "s390":
            models = (("virtio", 1),)
        else:
            models = (("virtio", 80), (None, 10), ("none", 5), ("ramfb", 5))
        model = _pick(r, models)
        v = ET.Element("video")
        if model is not None:
            attrs = {"type": model}
            if model in ("qxl", "vga", "cirrus", "virtio", "bochs"):
                if model == "qxl":
                    attrs.update(ram="65536", vram="65536", vgamem="16384")
                if self.chance(0.7):
                    attrs["heads"] = "1"
                if self.chance(0.5):
                    attrs["primary"] = "yes"
            ET.SubElement(v, "model", attrs)
        kind = {"virtio": self.virtio_kind(), "bochs": "pcie", "none": None, "ramfb": None}.get(model, "pci")
        if model is None:
            kind = "pcie" if k in ("virt", "riscv") else (None if k == "s390" else "pci")
        # the primary video's slot is chipset-managed on x86; explicit addresses are rarer
        if not (self.fam.x86 and self.chance(0.5)):
            self.maybe_address(v, kind)
        self.rest.append(v)
        if model in ("qxl", "virtio") and self.chance(0.08):
            v2 = ET.Element("video")
            ET.SubElement(v2, "model", type=model, heads="1")
            self.maybe_address(v2, "pci" if model == "qxl" else self.virtio_kind())
            self.rest.append(v2)
        elif self.style == "odd" and k != "s390" and self.chance(0.04):
            # a second video libvirt refuses (none beside others, ramfb not primary) or takes
            v2 = ET.Element("video")
            ET.SubElement(v2, "model", type=self.rng.choice(("none", "ramfb", "virtio")))
            self.rest.append(v2)

    def sound(self):
        if not self.fam.x86 or not self.chance({"virt-install": 0.45, "legacy": 0.5, "odd": 0.3}.get(self.style, 0.08)):
            return
        models = [("ich9", 35), ("ich6", 35), ("ac97", 18), ("es1370", 7), ("sb16", 2), ("usb", 3)]
        if self.style == "odd":
            models.append(("ich7", 3))   # libvirt 9.0 cannot place it (no connect flags)
        model = _pick(self.rng, models)
        if model == "usb" and not self.usb_ok():
            return
        s = ET.Element("sound", model=model)
        if model in ("ich6", "ich9") and self.chance(0.2):
            ET.SubElement(s, "codec", type=self.rng.choice(("duplex", "micro", "output")))
        self.maybe_address(s, None if model in ("sb16", "usb") else "pci")
        self.rest.append(s)
        if self.chance(0.05):
            s2 = ET.Element("sound", model=self.rng.choice(("ich6", "ac97")))
            self.rest.append(s2)

    def balloon(self):
        r = self.rng.random()
        if r < 0.45:
            return
        if r < 0.62:
            self.rest.append(ET.Element("memballoon", model="none"))
            return
        model = "virtio"
        if self.fam.kind != "s390" and self.chance(0.08):
            model = self.rng.choice(("virtio-transitional", "virtio-non-transitional"))
        if self.style == "kubevirt":
            model = "virtio-non-transitional"
        m = ET.Element("memballoon", model=model)
        if self.chance(0.4):
            ET.SubElement(m, "stats", period="10")
        if self.chance(0.1):
            m.set("autodeflate", "on")
        kind = "pci" if model == "virtio-transitional" else self.virtio_kind()
        self.maybe_address(m, kind)
        self.rest.append(m)

    def rngdev(self):
        p = {"virt-install": 0.7, "nova": 0.5, "kubevirt": 0.3, "odd": 0.4}.get(self.style, 0.1)
        for _ in range(2 if self.chance(0.05) else 1):
            if not self.chance(p):
                return
            model = "virtio"
            if self.chance(0.06) and self.fam.kind != "s390":
                model = self.rng.choice(("virtio-transitional", "virtio-non-transitional"))
            el = ET.Element("rng", model=model)
            if self.chance(0.2):
                ET.SubElement(el, "rate", bytes="1024", period="1000")
            b = ET.SubElement(el, "backend", model="random")
            b.text = "/dev/urandom"
            self.maybe_address(el, "pci" if model == "virtio-transitional" else self.virtio_kind())
            self.rest.append(el)

    def watchdog(self):
        if not self.fam.x86 or not self.chance({"odd": 0.2, "legacy": 0.2}.get(self.style, 0.06)):
            return
        model = "i6300esb" if self.chance(0.85) else "ib700"
        w = ET.Element("watchdog", model=model, action=self.rng.choice(("reset", "poweroff", "none")))
        self.maybe_address(w, "pci" if model == "i6300esb" else None)
        self.rest.append(w)

    def inputs(self):
        r = self.rng
        if self.usb_ok() and self.chance(
                {"virt-install": 0.8, "nova": 0.3, "kubevirt": 0.2}.get(self.style, 0.25)):
            self.rest.append(ET.Element("input", type="tablet", bus="usb"))
        if self.chance({"odd": 0.25, "minimal": 0.05}.get(self.style, 0.1)):
            for t in r.sample(("tablet", "keyboard", "mouse"), r.randrange(1, 4)):
                el = ET.Element("input", type=t, bus="virtio")
                self.maybe_address(el, self.virtio_kind())
                self.rest.append(el)
        if self.fam.kind == "pc" and self.chance(0.1):
            self.rest.append(ET.Element("input", type="mouse", bus="ps2"))
        if self.fam.kind in ("virt", "riscv") and self.chance(0.3) and self.usb_ok():
            self.rest.append(ET.Element("input", type="keyboard", bus="usb"))

    def channels_consoles(self):
        r = self.rng
        p = {"virt-install": 0.85, "nova": 0.3, "kubevirt": 0.7, "minimal": 0.1}.get(self.style, 0.35)
        if self.chance(p):
            ch = ET.Element("channel", type="unix")
            ET.SubElement(ch, "target", type="virtio", name="org.qemu.guest_agent.0")
            self.rest.append(ch)
        if self.graphics == "spice" and self.chance(0.8):
            ch = ET.Element("channel", type="spicevmc")
            ET.SubElement(ch, "target", type="virtio", name="com.redhat.spice.0")
            self.rest.append(ch)
            if self.usb_ok() and self.chance(0.6):
                for _ in range(2):
                    self.rest.append(ET.Element("redirdev", bus="usb", type="spicevmc"))
        if self.chance(0.08):
            ch = ET.Element("channel", type="pty")
            ET.SubElement(ch, "target", type="virtio", name=f"org.example.port{r.randrange(10)}")
            self.rest.append(ch)
        if self.fam.kind == "s390":
            if self.chance(0.4):
                c = ET.Element("console", type="pty")
                ET.SubElement(c, "target", type=r.choice(("sclp", "virtio")))
                self.rest.append(c)
            return
        if self.chance({"nova": 0.8, "virt-install": 0.6}.get(self.style, 0.4)):
            if self.fam.x86 or self.fam.kind == "pseries":
                s = ET.Element("serial", type="pty")
                self.rest.append(s)
            c = ET.Element("console", type="pty")
            self.rest.append(c)
        if self.chance(0.08):
            c = ET.Element("console", type="pty")
            ET.SubElement(c, "target", type="virtio", port=str(r.randrange(1, 3)))
            self.rest.append(c)
        if self.fam.kind in ("pc", "q35", "virt", "pseries") and self.chance(
                {"odd": 0.08}.get(self.style, 0.015)):
            s = ET.Element("serial", type="pty")
            ET.SubElement(s, "target", type="pci-serial")
            self.maybe_address(s, "pci")
            self.rest.append(s)

    def filesystems(self):
        if self.fam.kind == "s390" or not self.chance({"odd": 0.15, "kubevirt": 0.05}.get(self.style, 0.06)):
            return
        for i in range(self.rng.choice((1, 1, 2))):
            fs = ET.Element("filesystem", type="mount", accessmode=self.rng.choice(("mapped", "passthrough", "squash")))
            ET.SubElement(fs, "source", dir=f"/srv/share{i}")
            ET.SubElement(fs, "target", dir=f"share{i}")
            if self.chance(0.2):
                ET.SubElement(fs, "readonly")
            self.maybe_address(fs, self.virtio_kind())
            self.rest.append(fs)

    def misc(self):
        r, k = self.rng, self.fam.kind
        odd = self.style == "odd"
        if self.fam.x86 and odd and self.chance(0.05):
            # libvirt 9.0 knows isa/hyperv (and default); 'pvpanic' is newer: refused
            self.rest.append(ET.Element("panic", model=r.choice(("isa", "hyperv", "pvpanic"))))
        if self.chance(0.12 if odd else 0.04):
            v = ET.Element("vsock", model="virtio")
            ET.SubElement(v, "cid", auto="yes")
            self.maybe_address(v, self.virtio_kind())
            self.rest.append(v)
        if k in ("q35", "virt") and self.arch != "armv7l" and self.chance(0.08 if odd else 0.025):
            if k == "q35" and self.chance(0.3):
                self.rest.append(ET.Element("iommu", model="intel"))
            elif k == "virt" and self.chance(0.2):
                self.rest.append(ET.Element("iommu", model="smmuv3"))
            else:
                el = ET.Element("iommu", model="virtio")
                if self.chance(0.1):     # an integrated device: bus 0 only
                    s = self.bus0_slot()
                    if s is not None:
                        ET.SubElement(el, "address", type="pci", domain="0x0000", bus="0x00", slot=_hex(s),
                                      function="0x0")
                self.rest.append(el)
        if self.fam.x86 and self.chance(0.08 if odd else 0.02):
            for i in range(r.choice((1, 1, 2))):
                sh = ET.Element("shmem", name=f"shmem{i}")
                ET.SubElement(sh, "model", type="ivshmem-plain")
                ET.SubElement(sh, "size", unit="M").text = "4"
                self.maybe_address(sh, "pci")
                self.rest.append(sh)
        if k in ("q35", "pc", "virt") and self.arch != "armv7l" and self.chance(0.06 if odd else 0.01):
            # virtio-mem needs <maxMemory> and a NUMA node
            mem = ET.Element("memory", model="virtio-mem")
            t = ET.SubElement(mem, "target")
            ET.SubElement(t, "size", unit="KiB").text = "1048576"
            ET.SubElement(t, "node").text = "0"
            ET.SubElement(t, "block", unit="KiB").text = "2048"
            self.maybe_address(mem, "pcie")
            self.rest.append(mem)
            self.numa = self.max_memory = True
        if k in ("q35", "pc", "virt") and self.chance(0.05 if odd else 0.01):
            if self.chance(0.5):
                h = ET.Element("hostdev", mode="subsystem", type="scsi_host")
                ET.SubElement(h, "source", protocol="vhost", wwpn=f"naa.5001405{r.randrange(16**9):09x}")
                self.maybe_address(h, "pcie")
            else:
                h = ET.Element("hostdev", mode="subsystem", type="mdev", model="vfio-pci")
                src = ET.SubElement(h, "source")
                ET.SubElement(src, "address", uuid=str(uuidlib.UUID(int=r.getrandbits(128), version=4)))
                self.maybe_address(h, "pcie")
            self.hostdevs.append(h)
        if self.fam.x86 and self.usb_ok() and self.chance(0.03):
            self.rest.append(ET.Element("hub", type="usb"))
        if self.fam.x86 and self.chance(0.08 if odd else 0.04):
            t = ET.Element("tpm", model="tpm-crb" if k == "q35" and self.chance(0.6) else "tpm-tis")
            b = ET.SubElement(t, "backend", type="passthrough")
            ET.SubElement(b, "device", path="/dev/tpm0")
            self.rest.append(t)

    # -- deliberate oddities and user mistakes ------------------------------------------
    def set_address(self, el: ET.Element, **attrs):
        old = el.find("address")
        if old is not None:
            el.remove(old)
        a = {"type": "pci", "domain": "0x0000"}
        a.update(attrs)
        ET.SubElement(el, "address", a)

    def odd_disk_name(self, target, prefix: str, bus: str) -> None:
        """Disk names as users write them now and then: a trailing 0 (no partition to libvirt),
        a digit for the letter (fog05's 'hd1': refused), no bus (the name's prefix says it).
        Drawn from a generator of their own: the main stream, and so the rest of the domain,
        stays as it was."""
        side = random.Random(f"disk-name:{self.name}:{len(self.disks)}")
        roll = side.random()
        if roll < 0.04:
            target.set("dev", target.get("dev") + "0")
        elif roll < 0.05:
            target.set("dev", prefix + str(side.randrange(1, 4)))
        if side.random() < 0.2 and bus in ("ide", "scsi", "virtio"):  # (the buses names imply)
            del target.attrib["bus"]

    def oddities(self):
        """Plausible-but-unusual things users write; some of them libvirt refuses."""
        r, k = self.rng, self.fam.kind
        p = {"odd": 0.6, "crowded": 0.1, "legacy": 0.1}.get(self.style, 0.04)
        if not self.chance(p):
            return
        devs = [d for d in self.pci_devices if d[0].tag != "controller" or d[0].get("type") != "pci"]
        options = []
        if len(devs) >= 2:
            options += [("double-use", 4), ("multifunction", 8)]
        if devs:
            options += [("far-bus", 8), ("domain1", 1), ("bus0-fn", 4)]
            if self.free_ports:
                options.append(("port-slot1", 3))
            if self.pci_buses:
                options.append(("bridge-slot0", 3))
            if k == "pc":
                options += [("pc-00:01.x", 4)]
        if self.pci_ctrls and k != "s390":
            options += [("dup-index", 2), ("index-too-high", 1)]
        if k == "pc":
            options += [("pcie-port-on-pc", 2), ("pcie-bridge-on-pc", 1), ("pcie-root-on-pc", 1),
                        ("piix3-moved", 2), ("bridge-hotplug-off", 1), ("bridge-full", 4)]
        if k == "q35":
            options += [("pci-root-on-q35", 1), ("sata-moved", 2), ("ide-on-q35", 1)]
        if k in ("q35", "virt", "riscv"):
            options += [("bridge-no-legacy", 2), ("bare-root-port", 2), ("chassis-256", 1),
                        ("port-on-port", 2)]
        if k == "pseries":
            options += [("phb-target0", 1), ("phb-dup-target", 2), ("phb-no-name", 2)]
        if k == "s390":
            options += [("zpci-dup-uid", 2)]
        if k in ("virt", "riscv"):
            options += [("virtio-mmio", 5)]
        if self.fam.x86:
            options += [("primary-second", 2)]
        if not options:
            return
        what = _pick(r, options)
        self.notes.append(what)
        if what == "double-use":
            (a, _), (b, _) = r.sample(devs, 2)
            s = self.bus0_slot() or 5
            self.set_address(a, bus="0x00", slot=_hex(s), function="0x0")
            self.set_address(b, bus="0x00", slot=_hex(s), function="0x0")
        elif what == "multifunction":
            group = r.sample(devs, min(len(devs), r.choice((2, 2, 3, 4))))
            s = self.bus0_slot() or 6
            fns = sorted(r.sample(range(8), len(group)))
            if r.random() < 0.7:
                fns[0] = 0
            for (el, _), fn in zip(group, fns):
                attrs = dict(bus="0x00", slot=_hex(s), function=_hex(fn, 1))
                if fn == 0 and r.random() < 0.5:
                    attrs["multifunction"] = r.choice(("on", "on", "off"))
                self.set_address(el, **attrs)
        elif what == "far-bus":
            el, _ = r.choice(devs)
            bus = r.choice((1, 1, 2, 3, 5))
            attrs = dict(bus=_hex(bus), slot=_hex(r.choice((0, 1, 3))))
            if r.random() < 0.7:
                attrs["function"] = "0x0"
            self.set_address(el, **attrs)
        elif what == "domain1":
            el, _ = r.choice(devs)
            self.set_address(el, domain="0x0001", bus="0x00", slot="0x05", function="0x0")
        elif what == "bus0-fn":
            el, _ = r.choice(devs)
            self.set_address(el, bus="0x00", slot=_hex(self.bus0_slot() or 7), function=_hex(r.randrange(1, 8), 1))
        elif what == "port-slot1":
            el, _ = r.choice(devs)
            self.set_address(el, bus=_hex(r.choice(self.free_ports)), slot="0x01", function="0x0")
        elif what == "bridge-slot0":
            el, _ = r.choice(devs)
            self.set_address(el, bus=_hex(r.choice(self.pci_buses)), slot="0x00", function="0x0")
        elif what == "pc-00:01.x":
            el, _ = r.choice(devs)
            self.set_address(el, bus="0x00", slot="0x01", function=_hex(r.choice((0, 1, 1, 3, 4, 5)), 1))
        elif what == "dup-index":
            idx = [c.get("index") for c in self.pci_ctrls if c.get("index") not in (None, "0")]
            c = ET.Element("controller", type="pci", index=r.choice(idx) if idx else "0",
                           model=self.pci_ctrls[-1].get("model"))
            self.pci_ctrls.append(c)
        elif what == "index-too-high":
            model = {"pc": "pci-bridge", "pseries": "pci-root"}.get(k, "pcie-root-port")
            self.pci_ctrls.append(ET.Element("controller", type="pci", index=str(r.choice((40, 255, 256))),
                                             model=model))
        elif what == "pcie-port-on-pc":
            self.pci_ctrls.append(ET.Element("controller", type="pci", index=str(10 + r.randrange(5)),
                                             model="pcie-root-port"))
        elif what == "pcie-bridge-on-pc":
            self.pci_ctrls.append(ET.Element("controller", type="pci", index="9", model="pcie-to-pci-bridge"))
        elif what == "pcie-root-on-pc":
            self.pci_ctrls.insert(0, ET.Element("controller", type="pci", index="0", model="pcie-root"))
        elif what == "pci-root-on-q35":
            self.pci_ctrls.insert(0, ET.Element("controller", type="pci", index="0", model="pci-root"))
        elif what == "piix3-moved":
            c = ET.Element("controller", type="usb", index="0", model="piix3-uhci")
            ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x00", slot=_hex(self.bus0_slot() or 9),
                          function="0x0")
            self.other_ctrls = [x for x in self.other_ctrls if x.get("type") != "usb"] + [c]
            self.usb = "piix3-uhci"
        elif what == "sata-moved":
            c = ET.Element("controller", type="sata", index="0")
            ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x00", slot=_hex(self.bus0_slot() or 9),
                          function="0x0")
            self.other_ctrls = [x for x in self.other_ctrls if x.get("type") != "sata"] + [c]
        elif what == "ide-on-q35":
            self.disk("ide", "cdrom")
        elif what == "bridge-hotplug-off":
            c = ET.Element("controller", type="pci", index="7", model="pci-bridge")
            ET.SubElement(c, "target", hotplug="off")
            self.pci_ctrls.append(c)
        elif what == "bridge-full":
            # fill bus 0 of a pc by hand so that bridges must go elsewhere
            for el, _ in devs:
                s = self.bus0_slot()
                if s is None:
                    break
                self.set_address(el, bus="0x00", slot=_hex(s), function="0x0")
            for _ in range(r.randrange(20, 30)):
                self.interface(r.choice(("virtio", "e1000")))
                el = self.nics[-1]
                s = self.bus0_slot()
                if s is None:
                    break
                self.set_address(el, bus="0x00", slot=_hex(s), function="0x0")
        elif what == "bridge-no-legacy":
            if not any(c.get("model") == "pcie-root" and c.get("index") == "0" for c in self.pci_ctrls):
                self.root("pcie-root")
            self.pci_ctrls.append(ET.Element("controller", type="pci", index=str(r.choice((1, 6))),
                                             model="pci-bridge"))
        elif what == "bare-root-port":
            # a bare root port before (or without) the pcie-root
            self.pci_ctrls.insert(0, ET.Element("controller", type="pci", model="pcie-root-port"))
        elif what == "chassis-256":
            c = ET.Element("controller", type="pci", index="12", model="pcie-root-port")
            ET.SubElement(c, "target", chassis=r.choice(("256", "255", "0")), port="0x8")
            self.pci_ctrls.append(c)
        elif what == "port-on-port":
            # a root port plugged (by hand) into another root port
            self.pci_ctrls.append(ET.Element("controller", type="pci", index="13", model="pcie-root-port"))
            c = ET.Element("controller", type="pci", index="14", model="pcie-root-port")
            ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x0d", slot="0x00", function="0x0")
            self.pci_ctrls.append(c)
        elif what == "phb-target0":
            c = ET.Element("controller", type="pci", index="5", model="pci-root")
            ET.SubElement(c, "model", name="spapr-pci-host-bridge")
            ET.SubElement(c, "target", index=r.choice(("0", "31", "5")))
            self.pci_ctrls.append(c)
        elif what == "phb-dup-target":
            for i in (6, 7):
                c = ET.Element("controller", type="pci", index=str(i), model="pci-root")
                if i == 6 or r.random() < 0.5:
                    ET.SubElement(c, "model", name="spapr-pci-host-bridge")
                ET.SubElement(c, "target", index="3")
                self.pci_ctrls.append(c)
        elif what == "phb-no-name":
            c = ET.Element("controller", type="pci", index=str(r.choice((1, 2, 4))), model="pci-root")
            self.pci_ctrls.append(c)
        elif what == "virtio-mmio":
            # one virtio device on virtio-mmio switches every address-less virtio device to mmio
            cands = [el for el in self.disks + self.nics + self.rest
                     if el.tag in ("disk", "interface", "rng", "memballoon", "input")
                     and (el.find("target") is None or el.find("target").get("bus") in (None, "virtio"))
                     and (el.tag != "interface" or (el.find("model") is not None
                                                   and el.find("model").get("type") == "virtio"))
                     and (el.tag != "memballoon" or el.get("model") == "virtio")
                     and (el.tag != "input" or el.get("bus") == "virtio")
                     and (el.tag != "disk" or el.get("device") == "disk")]
            if cands:
                el = r.choice(cands)
                old = el.find("address")
                if old is not None:
                    el.remove(old)
                ET.SubElement(el, "address", type="virtio-mmio")
        elif what == "primary-second":
            v1 = ET.Element("video")
            ET.SubElement(v1, "model", type=r.choice(("virtio", "qxl")))
            v2 = ET.Element("video")
            ET.SubElement(v2, "model", type="qxl", primary="yes")
            self.rest = [e for e in self.rest if e.tag != "video"] + [v1, v2]
        elif what == "zpci-dup-uid":
            for _ in range(2):
                self.hostdev()
                el = self.hostdevs[-1]
                old = el.find("address")
                if old is not None:
                    el.remove(old)
                a = ET.SubElement(el, "address", type="pci")
                ET.SubElement(a, "zpci", uid="0x0042")

    # -- the whole domain ---------------------------------------------------------------
    def misplaced_address(self, ctrls: list) -> None:
        """A PCI address on a device that cannot have one (odd style), or on a hub or
        channel added for the purpose."""
        r = self.rng
        if self.chance(0.3) and self.usb_ok():
            self.rest.append(ET.Element("hub", type="usb"))
        if self.chance(0.3):
            ch = ET.Element("channel", type="pty")
            ET.SubElement(ch, "target", type="virtio", name="org.qemu.guest_agent.0")
            self.rest.append(ch)
        pool = [e for e in self.disks + ctrls + self.rest
                if e.find("address") is None and _NOT_PCI.get(e.tag, lambda e: False)(e)]
        if not pool:
            return
        el = r.choice(pool)
        if self.chance(0.3):
            ET.SubElement(el, "address", type="pci")
        else:
            ET.SubElement(el, "address", type="pci", domain="0x0000", bus="0x00",
                          slot=_hex(r.choice((2, 3, 4, 5, 9, 0x1e))), function="0x0")
        self.notes.append(f"PCI address on {el.tag}")

    def build(self) -> str:
        r, k, st = self.rng, self.fam.kind, self.style
        self.pci_controllers()
        self.usb_controllers()
        self.scsi_controller()
        self.virtio_serial_controller()
        if self.fam.x86 and self.chance(0.1):
            c = ET.Element("controller", type="sata", index="0")
            if k == "q35" and self.chance(0.3):
                ET.SubElement(c, "address", type="pci", domain="0x0000", bus="0x00", slot="0x1f", function="0x2")
            elif k == "pc":
                self.maybe_address(c, "pci")
            self.other_ctrls.append(c)
        if k == "pc" and self.chance(0.1):
            self.other_ctrls.append(ET.Element("controller", type="ide", index="0"))

        # disks
        n_disks = {"minimal": r.choice((0, 1, 1)), "nova": r.choice((1, 1, 2, 3, 5)), "crowded": r.randrange(4, 12),
                   "kubevirt": r.choice((1, 2, 3))}.get(st, r.choice((1, 1, 1, 2, 3)))
        for _ in range(n_disks):
            bus = _pick(r, self.disk_buses())
            if st in ("nova", "kubevirt") and self.chance(0.8):
                bus = "virtio"
            if st == "legacy" and k == "pc" and self.chance(0.5):
                bus = "ide"
            if bus == "usb" and not self.usb_ok():
                bus = "virtio"
            if bus == "scsi" and k == "s390":
                bus = "virtio"
            self.disk(bus)
        if k != "s390" and self.chance({"virt-install": 0.6, "legacy": 0.7, "minimal": 0.1}.get(st, 0.25)):
            bus = self.cdrom_bus()
            if bus == "usb" and not self.usb_ok():
                bus = "scsi"
            if bus:
                self.disk(bus, "cdrom")
        if self.chance(0.01) and k != "s390":
            self.disk("virtio", "cdrom")          # rejected by libvirt 9.0: ejectable media on virtio-blk

        # NICs
        n_nics = {"minimal": r.choice((0, 1, 1)), "nova": r.choice((1, 2, 3, 4, 6, 8)),
                  "crowded": r.randrange(6, 34), "kubevirt": r.choice((1, 1, 2, 3))}.get(st, r.choice((1, 1, 1, 2)))
        if st == "crowded" and k == "pseries":
            n_nics = r.randrange(25, 40)
        for _ in range(n_nics):
            if st in ("nova", "kubevirt", "virt-install") and self.chance(0.85):
                self.interface("virtio-non-transitional" if st == "kubevirt" and self.chance(0.5) else "virtio")
            else:
                self.interface()
        if k not in ("s390",) and self.chance({"nova": 0.2, "odd": 0.1, "crowded": 0.15}.get(st, 0.03)):
            for _ in range(r.choice((1, 1, 2, 4))):
                self.hostdev_interface()

        # hostdevs
        p_hd = {"nova": 0.2, "odd": 0.15, "crowded": 0.2, "kubevirt": 0.15}.get(st, 0.04)
        if k == "s390":
            p_hd = 0.6
        if self.chance(p_hd):
            for _ in range(r.choice((1, 1, 2, 3, 4))):
                self.hostdev()

        self.video_and_graphics()
        self.sound()
        self.watchdog()
        self.inputs()
        self.channels_consoles()
        self.filesystems()
        self.misc()
        self.rngdev()
        self.balloon()
        self.oddities()
        if k == "pc" and self.chance(0.02):
            f = ET.Element("disk", type="file", device="floppy")
            ET.SubElement(f, "target", dev="fda", bus="fdc")
            self.disks.append(f)
        return self.emit()

    def emit(self) -> str:
        r, fam, k = self.rng, self.fam, self.fam.kind
        # (KVM for an arch this host cannot run natively, now and then: libvirt refuses it)
        kvm = self.kvm or (not fam.x86 and self.chance(0.03))
        dom = ET.Element("domain", type="kvm" if kvm else "qemu")
        ET.SubElement(dom, "name").text = self.name
        if self.chance(0.7):
            ET.SubElement(dom, "uuid").text = str(uuidlib.UUID(int=r.getrandbits(128), version=4))
        mem = r.choice((1048576, 2097152, 4194304))
        ET.SubElement(dom, "memory", unit="KiB").text = str(mem)
        if self.chance(0.5):
            ET.SubElement(dom, "currentMemory", unit="KiB").text = str(mem)
        ET.SubElement(dom, "vcpu", placement="static").text = str(r.choice((1, 2, 4)))
        os_el = ET.SubElement(dom, "os")
        # users leave machine= out, mostly where it names the arch's default machine
        omit = self.chance(0.2 if self.machine == DEFAULT_MACHINES.get(self.arch) else 0.01)
        t = ET.SubElement(os_el, "type", arch=self.arch, **({} if omit else {"machine": self.machine}))
        t.text = "hvm"
        if omit:
            self.notes.append("machine= left out")
        efi = False
        if k == "virt" and self.arch == "aarch64" and self.chance(0.35):
            os_el.set("firmware", "efi")
            efi = True
        elif k == "q35" and self.chance(0.1):
            os_el.set("firmware", "efi")
        ET.SubElement(os_el, "boot", dev="hd")
        if fam.x86:
            if self.chance(0.95):
                feats = ET.SubElement(dom, "features")
                ET.SubElement(feats, "acpi")
                ET.SubElement(feats, "apic")
                self.acpi = True
                if self.chance(0.1):
                    ET.SubElement(feats, "vmport", state="off")
        elif k == "virt" and (efi or (self.style == "odd" and self.chance(0.05))):
            # (odd: ACPI without UEFI, which libvirt refuses on aarch64 and takes on armv7l)
            feats = ET.SubElement(dom, "features")
            ET.SubElement(feats, "acpi")
            if self.chance(0.5):
                ET.SubElement(feats, "gic", version="3")
            self.acpi = True
        # virtio-iommu needs ACPI: drop it when there is none
        if not self.acpi:
            self.rest = [e for e in self.rest if not (e.tag == "iommu" and e.get("model") == "virtio")]
        if self.max_memory:
            mm = ET.Element("maxMemory", slots="16", unit="KiB")
            mm.text = str(4 * mem + 8388608)
            dom.insert(list(dom).index(dom.find("memory")), mm)
        if self.numa or (any(c.get("model") == "pcie-expander-bus" for c in self.pci_ctrls) and self.chance(0.3)):
            # a NUMA node (for memory devices or the expander bus)
            cpu = ET.SubElement(dom, "cpu")
            numa = ET.SubElement(cpu, "numa")
            ET.SubElement(numa, "cell", id="0", cpus="0", memory=str(mem), unit="KiB")
            for c in self.pci_ctrls:
                if c.get("model") == "pcie-expander-bus":
                    t = c.find("target")
                    if t is None:
                        t = ET.SubElement(c, "target")
                    ET.SubElement(t, "node").text = "0"
        ET.SubElement(dom, "clock", offset="utc")
        ET.SubElement(dom, "on_poweroff").text = "destroy"
        ET.SubElement(dom, "on_reboot").text = "restart"
        ET.SubElement(dom, "on_crash").text = "destroy"
        devs = ET.SubElement(dom, "devices")
        ET.SubElement(devs, "emulator").text = EMULATORS[self.arch]
        # controllers: PCI ones first (virt-install), last, or mixed with the others
        order = _pick(r, (("pci-first", 45), ("pci-last", 35), ("mixed", 20)))
        if order == "pci-first":
            ctrls = self.pci_ctrls + self.other_ctrls
        elif order == "pci-last":
            ctrls = self.other_ctrls + self.pci_ctrls
        else:
            ctrls = []
            a, b = list(self.pci_ctrls), list(self.other_ctrls)
            while a or b:
                src = a if (a and (not b or r.random() < 0.5)) else b
                ctrls.append(src.pop(0))
        if len(self.disks) > 1 and self.chance({"odd": 0.4, "nova": 0.2, "kubevirt": 0.2}.get(self.style, 0.1)):
            # a replaced root disk, volumes attached later: targets out of order
            r.shuffle(self.disks)
            self.notes.append("disks out of target order")
        if self.style == "odd" and self.chance(0.12):
            self.misplaced_address(ctrls)
        groups = [self.disks, ctrls, self.nics, self.hostdevs, self.rest]
        if self.chance(0.3):                     # e.g. controllers written after disks and NICs
            groups = [self.disks, self.nics, ctrls, self.rest, self.hostdevs]
        for g in groups:
            for el in g:
                devs.append(el)
        self.host_dependent(devs)
        ET.indent(dom, "  ")
        return ET.tostring(dom, encoding="unicode") + "\n"

    def host_dependent(self, devs: ET.Element) -> None:
        """What libvirt refuses or takes by what its host has (swtpm, qemu.conf's SPICE TLS),
        as users write it: an emulated TPM (Windows 11), a SPICE TLS port.  Drawn last, so
        that the rest of every domain of a stream stays what it was."""
        for t in devs.iter("tpm"):
            if self.chance(0.4):
                backend = t.find("backend")
                t.remove(backend)
                ET.SubElement(t, "backend", type="emulator", **({"version": "2.0"} if self.chance(0.5) else {}))
                self.notes.append("emulated TPM")
        for g in devs.iter("graphics"):
            if g.get("type") == "spice" and self.chance(0.15):
                g.set("autoport", "no")
                g.set("port", "5900")
                g.set("tlsPort", "5901")
                self.notes.append("SPICE TLS port")


#: devices with an address kind of their own (or none): a PCI address written on them
#: (copied, or left over from another model) is dropped, replaced or refused by libvirt
_NOT_PCI = {
    "disk": lambda e: (e.find("target") is not None and e.find("target").get("bus") != "virtio"),
    "input": lambda e: e.get("bus") == "usb" or e.get("type") == "tablet",
    "channel": lambda e: e.find("target") is not None and e.find("target").get("type") == "virtio",
    "memballoon": lambda e: e.get("model") == "none",
    "controller": lambda e: e.get("type") == "usb" and e.get("model") == "none",
    "video": lambda e: e.find("model") is not None and e.find("model").get("type") in ("none", "ramfb"),
    "redirdev": lambda e: True, "hub": lambda e: True, "smartcard": lambda e: True,
    "serial": lambda e: True, "watchdog": lambda e: e.get("model") == "ib700",
}


def _family_for(rng: random.Random, spread: dict) -> str:
    names = [n for n, w in spread.items() if w > 0]
    return rng.choices(names, weights=[spread[n] for n in names], k=1)[0]


def generate(seed, index: int = 0, spread=None, kvm: bool | None = None, family: str | None = None,
             style: str | None = None) -> GeneratedDomain:
    """Draw domain number `index` of the stream `seed`.

    kvm: allow `type='kvm'` on x86 (default: when /dev/kvm exists).
    family/style: force one instead of drawing it.
    """
    spread = parse_spread(spread)
    if kvm is None:
        kvm = os.path.exists("/dev/kvm")
    rng = random.Random(f"pciplan-randomdomain:{seed}:{index}")
    fam_name = family or _family_for(rng, spread)
    fam = FAMILIES[fam_name]
    arch = _pick(rng, fam.arches)
    machine = _pick(rng, fam.machines)
    st = style or _pick(rng, STYLES[fam.kind])
    use_kvm = bool(kvm and fam.x86 and rng.random() < 0.5)
    name = f"gen-{seed}-{index}"
    b = _Builder(rng, fam, arch, machine, st, use_kvm, name)
    xml = b.build()
    return GeneratedDomain(xml=xml, family=fam_name, style=st, arch=arch, machine=machine, seed=seed,
                           index=index, notes=b.notes)


#: the machine QEMU 7.2 takes for an arch when ``machine=`` is left out, where it has PCI
#: (users leave the attribute out for these; aarch64's default board has no PCI)
DEFAULT_MACHINES = {"x86_64": "pc", "i686": "pc", "ppc64": "pseries", "ppc64le": "pseries",
                    "s390x": "s390-ccw-virtio"}


#: machines other than each family's own, as users name them: the arch's other boards and
#: machines, old versions, names QEMU 7.2 lacks (libvirt lays those out before it refuses
#: the name): family kind -> ((machine, weight), ...)
OTHER_MACHINES = {
    "q35": (("isapc", 2), ("microvm", 2), ("x-remote", 2), ("pc-q35-2.4", 2), ("pc-q35-1.5", 1),
            ("Q35", 1), ("pc-q35-9.9", 1)),
    "pc": (("isapc", 2), ("microvm", 2), ("x-remote", 1), ("pc-i440fx-1.4", 2), ("pc-1.0", 1),
           ("pc-i440fx-9.9", 1)),
    "virt": (("versatilepb", 3), ("vexpress-a9", 2), ("vexpress-a15", 2), ("integratorcp", 1),
             ("realview-pbx-a9", 1), ("sbsa-ref", 1), ("raspi3b", 1), ("virt-2.6", 1), ("virt-9.9", 1)),
    "riscv": (("spike", 2), ("sifive_u", 2), ("sifive_e", 1), ("virt-9.9", 1)),
    "pseries": (("powernv9", 2), ("powernv10", 1), ("mac99", 1), ("g3beige", 1), ("ppce500", 1),
                ("40p", 1), ("pseries-2.1", 1), ("pseries-1.0", 1), ("virt", 1)),
    "s390": (("s390-virtio", 2), ("s390-ccw", 2), ("s390-ccw-virtio-2.4", 1), ("s390-ccw-virtio-9.9", 1)),
}


def generate_other_machine(seed, index: int = 0, spread=None, kvm: bool | None = None) -> GeneratedDomain:
    """Domain `index` of stream `seed`, written for its family's machine, with the machine
    swapped for another one of its arch (``OTHER_MACHINES``)."""
    dom = generate(seed, index, spread, kvm)
    rng = random.Random(f"pciplan-othermachine:{seed}:{index}")
    machine = _pick(rng, OTHER_MACHINES[FAMILIES[dom.family].kind])
    xml = re.sub(r"(<type\b[^>]*\bmachine=\")[^\"]*", lambda m: m.group(1) + machine, dom.xml, count=1)
    if xml == dom.xml:  # (it was written without machine=)
        xml = re.sub(r"(<type\b)", lambda m: f'{m.group(1)} machine="{machine}"', dom.xml, count=1)
    return replace(dom, xml=xml, machine=machine)


def generate_many(seed, n: int, spread=None, kvm: bool | None = None, start: int = 0):
    spread = parse_spread(spread)
    return [generate(seed, i, spread, kvm) for i in range(start, start + n)]


def main(argv=None) -> int:
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description="Print or write random libvirt domain XMLs.")
    ap.add_argument("--seed", default="0")
    ap.add_argument("--index", type=int, default=None, help="print only this domain")
    ap.add_argument("-n", type=int, default=1)
    ap.add_argument("--spread", default=None, help="e.g. 'q35=30,pc=20' (default: %s)" % DEFAULT_SPREAD)
    ap.add_argument("--family", default=None, choices=sorted(FAMILIES))
    ap.add_argument("--style", default=None)
    ap.add_argument("--no-kvm", action="store_true")
    ap.add_argument("--out", default=None, help="write DIR/<family>-<index>.xml instead of printing")
    a = ap.parse_args(argv)
    kvm = False if a.no_kvm else None
    indexes = [a.index] if a.index is not None else range(a.n)
    for i in indexes:
        d = generate(a.seed, i, a.spread, kvm, family=a.family, style=a.style)
        if a.out:
            Path(a.out).mkdir(parents=True, exist_ok=True)
            (Path(a.out) / f"{d.family}-{i}.xml").write_text(d.xml)
        else:
            print(f"<!-- seed={a.seed} index={i} family={d.family} style={d.style} -->")
            print(d.xml)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
