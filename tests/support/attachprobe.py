#!/usr/bin/env python3
"""Devices added to a defined, shut-off guest with ``virsh attach-device --config``, against
``pciplan plan`` of the guest with the device written at the end of ``<devices>``.

    python tests/support/attachprobe.py -n 300                  # random and suite guests
    python tests/support/attachprobe.py -n 500 -j 3 --seed 7 --bases random,suite,golden --save DIR
    python tests/support/attachprobe.py --devices sata-disk,pcie-root-port --steps 3

Management applications (virt-manager's "Add Hardware" on a shut-off guest, Nova, virsh users)
add hardware to a persistent definition: libvirt appends the device, runs its post-parse again
(which adds the controllers the device needs) and assigns the device an address, keeping every
existing one (qemuDomainAttachDeviceConfig).  pciplan's promise for this workflow: add the
device element to the stored definition and plan it; the layout is the one libvirt makes.

Each case takes a guest libvirt accepted (a random one, tests/support/randomdomain.py; one of
libvirt 9.0's test inputs as editprobe takes them; or an accepted golden case), defines it as
it was written on the daemon under a temporary name and dumps it, attaches a random device
(``DEVICES``: NICs, disks, inputs, an RNG, host devices, PCI, SCSI, USB and virtio-serial
controllers, channels, serial ports and consoles, a watchdog, a sound card, a video, memory
devices, some devices attach cannot add; or with virsh's own ``attach-interface`` and
``attach-disk``) without an address, with ``<address type='pci'/>``, at a free or a used PCI
address, at another function of a used slot or on a bus no controller has yet
(``ADDRESS_STYLES``), dumps the result and undefines the guest (tests/support/libvirt_oracle.py,
``Oracle.attach``).  pciplan plans the first dump with the device appended; the same document
is also defined on the daemon, which tells a difference of attach from define apart from a
difference of pciplan.  With ``--steps N`` a case attaches up to N devices one after the other,
and pciplan (and define) take them one at a time, each on its own output of the last.

Statuses (difftest's, and three of attach's own):

* identical / mismatch: attach and pciplan accept; same or other PCI layout (mismatch fails);
* both-reject: both refuse (the messages are compared with the attach's and the define's);
* planner-rejects: pciplan refuses what attach accepts (fails), unless define refuses it too
  with pciplan's message: then attach-accepts (attach runs no domain validation; not counted);
* attach-only: attach refuses, define and pciplan accept (attach's own checks, e.g. a disk
  target or a controller index used twice, a video; listed, not counted);
* planner-accepts: attach and define refuse, pciplan accepts (a refusal pciplan misses; listed,
  not counted, as in the other probes);
* attach-differs: layouts differ but define gives pciplan's (listed, not counted).

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
import traceback
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from lxml import etree  # noqa: E402

from support import difftest, editprobe, libvirt_oracle, randomdomain, suiteprobe  # noqa: E402
from support import layout as layoutmod  # noqa: E402
from support.editprobe import Guest, _free_host_address, _free_target  # noqa: E402

# statuses of attach's own (not failures)
ATTACH_ONLY = "attach-only"           # attach refuses what define and pciplan accept
ATTACH_ACCEPTS = "attach-accepts"     # attach accepts what define and pciplan refuse
ATTACH_DIFFERS = "attach-differs"     # attach's layout is not define's; define's is pciplan's
BASE_REFUSED = "base-refused"         # libvirt refused the guest itself (not a case)


@dataclass
class Case:
    """One guest and the devices attached to it, one after the other (mostly one)."""
    name: str
    base_xml: str          # the guest as it is defined
    attach: list           # each device's XML (attach-device), or a virsh command's words
    base: str = ""         # where the guest comes from
    edits: list = field(default_factory=list)   # "label(address style)" of each device
    family: str = ""
    index: int = 0
    seed: object = 0
    devices: list = field(default_factory=list)  # each device's XML, once run
    xml: str = ""          # what pciplan planned last: the definition with the device appended

    @property
    def device(self) -> str:
        return "\n".join(self.devices or [d if isinstance(d, str) else " ".join(d) for d in self.attach])


@dataclass
class AttachResult(difftest.CaseResult):
    before: str = ""                  # libvirt's definition of the guest before the attach
    define_ok: bool | None = None     # define of before + device
    define_text: str = ""
    define_match: bool | None = None  # (both refuse) pciplan's message is define's


# -- the devices ---------------------------------------------------------------------------
def _disk(g: Guest, rng: random.Random, bus: str | None, prefix: str) -> str:
    n = rng.randrange(10**6)
    targets = [t.get("dev") for t in g.root.iter("target") if t.getparent().tag == "disk"
               and t.get("dev", "").startswith(prefix)]
    # now and then a target the guest has (attach's own check)
    dev = rng.choice(targets) if targets and rng.random() < 0.06 else _free_target(g, prefix)
    fmt = rng.choice(("qcow2", "raw"))
    return (f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
            f"<source file='/var/lib/libvirt/images/ap-{n}.{fmt}'/>"
            f"<target dev='{dev}'{f' bus={chr(39)}{bus}{chr(39)}' if bus else ''}/></disk>")


def _attach_disk(g: Guest, rng: random.Random) -> str:
    """A disk as ``virsh attach-disk`` writes it: no bus, which the target's prefix gives
    (and, for a CD-ROM, a device of its own)."""
    text = _disk(g, rng, None, rng.choice(("vd", "vd", "sd", "hd")))
    if rng.random() < 0.2:
        text = text.replace("device='disk'", "device='cdrom'").replace("type='qcow2'", "type='raw'")
    return text


def _nic(model: str):
    def make(g, rng):
        src = rng.choice(("<interface type='network'><source network='default'/>",
                          "<interface type='user'>"))
        return f"{src}<model type='{model}'/></interface>"
    return make


def _hostdev(g: Guest, rng: random.Random) -> str:
    have = [a for a in g.root.iterfind("devices/hostdev/source/address")]
    if have and rng.random() < 0.15:          # one the guest has (attach's own check)
        a = rng.choice(have)
        addr = "<address " + " ".join(f"{k}='{v}'" for k, v in a.attrib.items()) + "/>"
    else:
        addr = _free_host_address(g, rng)
    return f"<hostdev mode='subsystem' type='pci' managed='yes'><source>{addr}</source></hostdev>"


#: what a PCI controller needs written for attach to take it (attach validates the new
#: controller before libvirt's post-parse fills in its <model name> and <target>)
_PCI_CONTROLLER_OPTIONS = {
    "pcie-root-port": lambda idx, rng: (f"<model name='pcie-root-port'/><target chassis='{idx}' "
                                        f"port='0x{rng.randrange(0x8, 0x30):x}'/>"),
    "pci-bridge": lambda idx, rng: f"<model name='pci-bridge'/><target chassisNr='{idx}'/>",
    "pcie-to-pci-bridge": lambda idx, rng: "<model name='pcie-pci-bridge'/>",
    "pcie-switch-upstream-port": lambda idx, rng: "<model name='x3130-upstream'/>",
    "pcie-switch-downstream-port": lambda idx, rng: (f"<model name='xio3130-downstream'/><target "
                                                     f"chassis='{idx}' port='0x{rng.randrange(0, 32):x}'/>"),
    "dmi-to-pci-bridge": lambda idx, rng: "<model name='i82801b11-bridge'/>",
    "pci-expander-bus": lambda idx, rng: (f"<model name='pxb'/><target busNr='{rng.choice((100, 200, 254))}'/>"),
    "pcie-expander-bus": lambda idx, rng: (f"<model name='pxb-pcie'/><target busNr='{rng.choice((100, 200, 254))}'/>"),
}


def _controller(ctype: str, model: str | None = None):
    def make(g, rng):
        m = f" model='{model}'" if model else ""
        top = g.max_index(ctype)
        idx = None
        if rng.random() < 0.3:
            # the next free index, one further, or one the guest has (attach's own check)
            idx = rng.choice((top + 1, top + 2, max(top, 0)))
        inner = ""
        if model in _PCI_CONTROLLER_OPTIONS:
            # mostly as complete as attach wants it; now and then bare
            how = rng.choices(("complete", "name-only", "bare"), (6, 1, 3))[0]
            if how != "bare":
                inner = _PCI_CONTROLLER_OPTIONS[model](idx if idx is not None else top + 1, rng)
                if how == "name-only":
                    inner = inner.split("<target")[0]
        index = f" index='{idx}'" if idx is not None else ""
        return f"<controller type='{ctype}'{index}{m}>{inner}</controller>" if inner else \
            f"<controller type='{ctype}'{index}{m}/>"
    return make


def _channel(g: Guest, rng: random.Random) -> str:
    return rng.choice((
        "<channel type='unix'><source mode='bind'/>"
        "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
        f"<channel type='pty'><target type='virtio' name='org.example.ap{rng.randrange(1000)}'/></channel>",
        "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>",
    ))


def _scsi_disk(g: Guest, rng: random.Random) -> str:
    text = _disk(g, rng, "scsi", "sd")
    if rng.random() < 0.2:                    # a drive address, maybe one a disk has
        unit = rng.choice((0, 0, 1, 5))
        text = text.replace("</disk>", f"<address type='drive' controller='0' bus='0' "
                                       f"target='0' unit='{unit}'/></disk>")
    return text


def _attach_interface_cmd(g: Guest, rng: random.Random) -> tuple[str, ...]:
    """``virsh attach-interface`` (as scripts and Nova's tools add a NIC)."""
    words = ["attach-interface", "--type"] + rng.choice((["network", "--source", "default"],
                                                         ["bridge", "--source", "virbr0"]))
    model = rng.choice(("virtio", "virtio", "e1000", "rtl8139", None))
    return tuple(words + (["--model", model] if model else []))


def _attach_disk_cmd(g: Guest, rng: random.Random) -> tuple[str, ...]:
    """``virsh attach-disk``: a target whose prefix gives the bus, or a bus, maybe a PCI
    address (``--address pci:D.B.S.F``)."""
    prefix = rng.choice(("vd", "vd", "sd", "hd"))
    words = ["attach-disk", f"/var/lib/libvirt/images/ap-{rng.randrange(10**6)}.qcow2",
             _free_target(g, prefix), "--subdriver", "qcow2"]
    bus = rng.choice(("virtio", "scsi", "sata", "usb")) if rng.random() < 0.3 else None
    if bus:
        words += ["--targetbus", bus]
    cdrom = rng.random() < 0.1
    if cdrom:
        words += ["--type", "cdrom"]
    # (virsh takes a PCI --address for a vdX target only)
    if not cdrom and prefix == "vd" and rng.random() < 0.3:
        addr = _address(g, rng, rng.choice(("free", "used")))
        m = addr and re.search(r"bus='0x(\w+)' slot='0x(\w+)' function='0x(\w+)'", addr)
        if m:
            words += ["--address", f"pci:0000.{m.group(1)}.{m.group(2)}.{m.group(3)}"]
    return tuple(words)


#: label -> (weight, maker(guest, rng) -> XML text, whether it takes a PCI address); a
#: maker may give a virsh command's words instead of XML
DEVICES = {
    "virtio-nic": (6, _nic("virtio"), True),
    "e1000-nic": (3, _nic("e1000"), True),
    "rtl8139-nic": (2, _nic("rtl8139"), True),
    "virtio-disk": (6, lambda g, r: _disk(g, r, "virtio", "vd"), True),
    "scsi-disk": (3, _scsi_disk, False),
    "sata-disk": (3, lambda g, r: _disk(g, r, "sata", "sd"), False),
    "usb-disk": (2, lambda g, r: _disk(g, r, "usb", "sd"), False),
    "usb-input": (2, lambda g, r: f"<input type='{r.choice(('tablet', 'keyboard', 'mouse'))}' bus='usb'/>",
                  False),
    "virtio-input": (3, lambda g, r: f"<input type='{r.choice(('tablet', 'keyboard', 'mouse'))}' "
                                     f"bus='virtio'/>", True),
    "virtio-rng": (3, lambda g, r: "<rng model='virtio'><backend model='random'>/dev/urandom"
                                   "</backend></rng>", True),
    "hostdev-pci": (3, _hostdev, True),
    "pcie-root-port": (3, _controller("pci", "pcie-root-port"), True),
    "pci-bridge": (3, _controller("pci", "pci-bridge"), True),
    "virtio-serial": (3, _controller("virtio-serial"), True),
    "channel": (3, _channel, False),
    "watchdog": (2, lambda g, r: f"<watchdog model='{r.choice(('i6300esb', 'i6300esb', 'ib700', 'diag288'))}' "
                                 f"action='reset'/>", True),
    "sound": (3, lambda g, r: f"<sound model='{r.choice(('ich6', 'ich9', 'ac97', 'es1370', 'ich7', 'usb'))}'/>",
              True),
    "video": (1, lambda g, r: f"<video><model type='{r.choice(('virtio', 'qxl', 'vga', 'bochs'))}'/></video>",
              True),
    # beyond the usual: what else attach --config takes (or refuses)
    "disk-by-target": (3, _attach_disk, True),
    "nic-default": (2, lambda g, r: "<interface type='network'><source network='default'/></interface>", True),
    "nic-hostdev": (1, lambda g, r: "<interface type='hostdev' managed='yes'><source>"
                                    + _free_host_address(g, r).replace("<address ", "<address type='pci' ")
                                    + "</source></interface>", True),
    "scsi-controller": (2, lambda g, r: _controller("scsi", r.choice(
        ("virtio-scsi", "virtio-scsi", "lsilogic", None)))(g, r), True),
    "usb-controller": (2, lambda g, r: _controller("usb", r.choice(
        ("qemu-xhci", "nec-xhci", "ich9-ehci1", "piix3-uhci", None)))(g, r), True),
    "pcie-to-pci-bridge": (1, _controller("pci", "pcie-to-pci-bridge"), True),
    "console": (1, lambda g, r: "<console type='pty'><target type='virtio'/></console>", False),
    "pci-serial": (1, lambda g, r: "<serial type='pty'><target type='pci-serial'/></serial>", True),
    "virtiofs": (1, lambda g, r: f"<filesystem type='mount' accessmode='passthrough'>"
                                 f"<driver type='virtiofs'/><source dir='/srv/ap{r.randrange(1000)}'/>"
                                 f"<target dir='ap{r.randrange(1000)}'/></filesystem>", True),
    "9p-fs": (1, lambda g, r: f"<filesystem type='mount' accessmode='mapped'><source dir='/srv/ap'/>"
                              f"<target dir='ap{r.randrange(1000)}'/></filesystem>", True),
    "vsock": (1, lambda g, r: "<vsock model='virtio'><cid auto='yes'/></vsock>", True),
    "ivshmem": (1, lambda g, r: f"<shmem name='ap{r.randrange(1000)}'><model type='ivshmem-plain'/>"
                                f"<size unit='M'>4</size></shmem>", True),
    "usb-redirdev": (1, lambda g, r: "<redirdev bus='usb' type='spicevmc'/>", False),
    "memballoon": (1, lambda g, r: "<memballoon model='virtio'/>", True),
    "virsh-attach-interface": (3, _attach_interface_cmd, False),
    "virsh-attach-disk": (3, _attach_disk_cmd, False),
    "pci-controller": (2, lambda g, r: _controller("pci", r.choice(
        ("pcie-switch-upstream-port", "pcie-switch-downstream-port", "dmi-to-pci-bridge",
         "pci-expander-bus", "pcie-expander-bus")))(g, r), True),
    "usb-companions": (1, lambda g, r: r.choice((
        "<controller type='usb' model='ich9-uhci1'><master startport='0'/></controller>",
        f"<controller type='usb' index='{g.max_index('usb') + 1}' model='ich9-ehci1'/>")), True),
    "channel-on-controller": (1, lambda g, r: (
        f"<channel type='pty'><target type='virtio' name='org.example.c{r.randrange(1000)}'/>"
        f"<address type='virtio-serial' controller='{g.max_index('virtio-serial') + r.choice((0, 1, 2))}' "
        f"bus='0' port='{r.choice((1, 2, 7))}'/></channel>"), False),
    "scsi-on-controller": (1, lambda g, r: _disk(g, r, "scsi", "sd").replace(
        "</disk>", f"<address type='drive' controller='{g.max_index('scsi') + r.choice((0, 1, 2))}' "
                   f"bus='0' target='0' unit='{r.choice((0, 1))}'/></disk>"), False),
    "hostdev-scsi": (1, lambda g, r: "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/>"
                                     f"<address bus='0' target='0' unit='{r.randrange(8)}'/></source></hostdev>",
                     False),
    "hostdev-usb": (1, lambda g, r: "<hostdev mode='subsystem' type='usb'><source>"
                                    f"<vendor id='0x1234'/><product id='0x{r.randrange(1, 0xffff):04x}'/>"
                                    "</source></hostdev>", False),
    "virtio-pmem": (1, lambda g, r: f"<memory model='virtio-pmem' access='shared'><source>"
                                    f"<path>/tmp/ap-pmem{r.randrange(1000)}</path></source>"
                                    f"<target><size unit='MiB'>128</size></target></memory>", True),
    "dimm": (1, lambda g, r: "<memory model='dimm'><target><size unit='MiB'>128</size><node>0</node>"
                             "</target></memory>", False),
    "unsupported": (1, lambda g, r: r.choice((
        "<graphics type='vnc' port='-1'/>", "<panic model='isa'/>", "<iommu model='intel'/>",
        "<smartcard mode='passthrough' type='spicevmc'/>")), False),
    "spapr-nic": (1, lambda g, r: "<interface type='user'><model type='spapr-vlan'/></interface>", False),
    "ccw-nic": (1, lambda g, r: "<interface type='user'><model type='virtio'/><address type='ccw' "
                                f"cssid='0xfe' ssid='0x0' devno='0x{r.randrange(0x10, 0xff00):04x}'/>"
                                "</interface>", False),
}

#: how a PCI-capable device is addressed: style -> weight
ADDRESS_STYLES = {"none": 10, "empty": 3, "free": 4, "used": 2, "bus-only": 1, "function": 1,
                  "new-bus": 1}

#: PCI controller models a device can sit on, and the slots they offer to one
_SLOTS = {
    "pci-root": range(1, 32), "pcie-root": range(1, 32), "pci-bridge": range(1, 32),
    "pcie-to-pci-bridge": range(1, 32), "pci-expander-bus": range(0, 32),
    "pcie-root-port": range(0, 1), "pcie-switch-downstream-port": range(0, 1),
    "pcie-expander-bus": range(0, 1),
}


def _pci_used(g: Guest) -> dict[tuple[int, int], list]:
    used = collections.defaultdict(list)
    for a in g.root.iterfind("devices/*/address[@type='pci']"):
        try:
            used[(int(a.get("bus", "0"), 0), int(a.get("slot", "0"), 0))].append(a)
        except ValueError:
            continue
    return used


def _address(g: Guest, rng: random.Random, style: str) -> str | None:
    """The <address> element of STYLE for this guest (None: the style has no candidate)."""
    if style == "empty":
        return "<address type='pci'/>"
    used = _pci_used(g)
    buses = [(int(c.get("index")), c.get("model")) for c in g.controllers("pci")
             if (c.get("index") or "").isdigit() and c.get("model") in _SLOTS]
    if style == "function":                   # another function of a slot a device has
        slots = [k for k, v in used.items() if not any(a.get("type") != "pci" for a in v)]
        if not slots:
            return None
        bus, slot = rng.choice(slots)
        taken = {int(a.get("function", "0"), 0) for a in used[(bus, slot)]}
        funcs = [f for f in range(1, 8) if f not in taken]
        if not funcs:
            return None
        return (f"<address type='pci' domain='0x0000' bus='0x{bus:02x}' slot='0x{slot:02x}' "
                f"function='0x{rng.choice(funcs)}'/>")
    if style == "used":
        if not used:
            return None
        a = rng.choice(rng.choice(list(used.values())))
        return ("<address type='pci' " + " ".join(f"{k}='{a.get(k)}'" for k in
                ("domain", "bus", "slot", "function") if a.get(k)) + "/>")
    if not buses:
        return None
    if style == "new-bus":                    # a bus no controller has yet
        top = max(int(c.get("index")) for c in g.controllers("pci") if (c.get("index") or "").isdigit())
        return (f"<address type='pci' domain='0x0000' bus='0x{top + rng.choice((1, 1, 2)):02x}' "
                f"slot='0x{rng.choice((0, 1, 3)):02x}' function='0x0'/>")
    if style == "bus-only":
        return f"<address type='pci' bus='0x{rng.choice(buses)[0]:02x}'/>"
    free = [(b, s) for b, m in buses for s in _SLOTS[m] if (b, s) not in used]
    if not free:
        return None
    bus, slot = rng.choice(free)
    return (f"<address type='pci' domain='0x0000' bus='0x{bus:02x}' slot='0x{slot:02x}' "
            f"function='0x0'/>")


def make_device(g: Guest, rng: random.Random, kinds=tuple(DEVICES)) -> tuple[str, str, str | tuple]:
    """(label, address style, XML text or virsh command words) of one device to attach to
    guest G."""
    names = [k for k in kinds if k in DEVICES]
    label = rng.choices(names, [DEVICES[k][0] for k in names])[0]
    _, maker, pci = DEVICES[label]
    text = maker(g, rng)
    style = "none" if isinstance(text, str) else "virsh"
    if pci:
        style = rng.choices(list(ADDRESS_STYLES), list(ADDRESS_STYLES.values()))[0]
        addr = _address(g, rng, style) if style != "none" else None
        if addr is None:
            style = "none"
        else:
            close = re.search(r"(/>|</[a-z]+>)$", text)
            if close.group(1) == "/>":        # <controller .../> -> <controller ...>ADDR</controller>
                tag = re.match(r"<([a-z]+)", text).group(1)
                text = text[:-2] + f">{addr}</{tag}>"
            else:
                text = text[:close.start()] + addr + text[close.start():]
    return label, style, text


# -- the guests ----------------------------------------------------------------------------
def random_bases(seed, n: int, oracle, jobs: int = 2, tries: int = 6) -> list[editprobe.Base]:
    """N random guests libvirt accepts, as libvirt stored them (a refused draw is replaced by
    the next one of its own stream)."""
    def one(k):
        for t in range(tries):
            dom = randomdomain.generate(f"attach:{seed}", k * tries + t)
            try:
                ok, out = oracle.run(dom.xml)
            except libvirt_oracle.OracleError:
                return None
            if ok:
                return editprobe.Base(f"{dom.family}-{dom.index}", out, f"random/{dom.family}", dom.xml)
        return None

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        return [b for b in ex.map(one, range(n)) if b is not None]


def make_case(base: editprobe.Base, k: int, seed, kinds=tuple(DEVICES), steps: int = 1) -> Case | None:
    """The guest as it was written (``base.source``: what is defined) and one to STEPS devices
    drawn for it as libvirt planned it (``base.xml``: which addresses and targets are free)."""
    rng = random.Random(f"{seed}:{base.name}:{k}")
    planned, g = editprobe.parse(base.xml), editprobe.parse(base.source or base.xml)
    if planned is None or g is None:
        return None
    editprobe.fresh_uuid(g, rng)
    attach, labels = [], []
    for _ in range(rng.randint(1, max(1, steps))):
        label, style, device = make_device(planned, rng, kinds)
        attach.append(device)
        labels.append(f"{label}({style})")
        if isinstance(device, str):           # the next one is drawn with this one there
            planned.devices.append(etree.fromstring(device))
    name = f"{base.name}+" + "+".join(x.split("(")[0] for x in labels)
    name_el = g.root.find("name")
    if name_el is not None:
        name_el.text = f"ap-{name}"[:200]
    return Case(name, etree.tostring(g.root, encoding="unicode"), attach, base.name, labels, base.origin)


def make_cases(bases: list[editprobe.Base], seed, kinds=tuple(DEVICES), steps: int = 1) -> list[Case]:
    out = []
    for b in bases:
        c = make_case(b, 0, seed, kinds, steps)
        if c is not None:
            c.index, c.seed = len(out), seed
            out.append(c)
    return out


def with_device(domain: str, device: str) -> str:
    """DOMAIN with DEVICE written as the last child of <devices>."""
    at = domain.rindex("</devices>")
    return domain[:at] + "  " + device + "\n  " + domain[at:]


# -- one case ------------------------------------------------------------------------------
def run_case(case: Case, oracle, plan, plan_error) -> AttachResult:
    res = AttachResult(dom=case)
    t0 = time.monotonic()
    try:
        a = oracle.attach(case.base_xml, case.attach if len(case.attach) > 1 else case.attach[0])
        if a.defined:
            case.devices = a.devices
            # define, one device after the other, each on what libvirt made of the last
            res.define_ok, res.define_text = True, a.before
            for dev in case.devices:
                res.define_ok, res.define_text = oracle.run(with_device(res.define_text, dev))
                if not res.define_ok:
                    break
    except libvirt_oracle.OracleError as err:
        res.status, res.first_line = difftest.ORACLE_ERROR, str(err)
        res.signature = "oracle error: " + difftest.normalize_message(str(err))
        return res
    if not a.defined:
        res.status, res.first_line = BASE_REFUSED, a.before
        return res
    res.before, res.libvirt_ok, res.libvirt_text = a.before, a.attached, a.after
    try:
        # pciplan, one device after the other, each on its own plan of the last
        res.plan_text = a.before
        for dev in case.devices:
            case.xml = with_device(res.plan_text, dev)
            res.plan_text = plan(case.xml)
        res.plan_ok = True
    except plan_error as err:
        res.plan_ok, res.plan_text = False, str(err)
        res.plan_reason = str(getattr(err, "reason", "") or err)
    except Exception as err:  # noqa: BLE001 - a crash is a finding
        tb = traceback.extract_tb(err.__traceback__)
        res.status, res.plan_text = difftest.CRASH, "".join(traceback.format_exception(err))
        res.first_line = f"{type(err).__name__}: {err} (at {Path(tb[-1].filename).name}:{tb[-1].lineno})"
        res.signature = f"planner crash: {type(err).__name__}"
        return res
    _classify(res)
    res.seconds = time.monotonic() - t0
    return res


def _same(msg_a: str, msg_b: str) -> bool:
    return difftest.message_core(msg_a) == difftest.message_core(msg_b)


def _classify(res: AttachResult) -> None:
    if res.libvirt_ok and res.plan_ok:
        res.diffs = layoutmod.compare_xml(res.libvirt_text, res.plan_text)
        if not res.diffs:
            res.status = difftest.OK_SAME
            return
        first = layoutmod.first_diff_signature(res.diffs)
        if res.define_ok and not layoutmod.compare_xml(res.define_text, res.plan_text):
            res.status, res.signature = ATTACH_DIFFERS, "attach differs from define: " + first
        else:
            res.status, res.signature = difftest.MISMATCH, "layout: " + first
        res.first_line = str(res.diffs[0])
    elif res.libvirt_ok:
        if res.define_ok is False and _same(res.define_text, res.plan_reason):
            res.status = ATTACH_ACCEPTS
            res.signature = "define refuses: " + difftest.message_core(res.define_text)
        else:
            res.status = difftest.FALSE_REJECT
            res.signature = "planner rejects: " + difftest.normalize_message(res.plan_text)
        res.first_line = f"attach accepts, pciplan refuses: {res.plan_reason}"
    elif res.plan_ok:
        res.status = ATTACH_ONLY if res.define_ok else difftest.FALSE_ACCEPT
        res.signature = "attach refuses: " + difftest.message_core(res.libvirt_text)
        res.first_line = f"pciplan accepts, attach refuses: {difftest._strip_error(res.libvirt_text)}"
    else:
        res.status = difftest.OK_REJECT
        res.message_match = _same(res.libvirt_text, res.plan_reason)
        res.define_match = res.define_ok is False and _same(res.define_text, res.plan_reason)


def run(cases: list[Case], oracle, jobs: int = 2, progress=None) -> list[AttachResult]:
    plan, plan_error = difftest.load_planner("pciplan")
    done = [0]

    def one(c):
        r = run_case(c, oracle, plan, plan_error)
        done[0] += 1
        if progress:
            progress(done[0], len(cases))
        return r

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        results = list(ex.map(one, cases))
    for _ in range(2):
        for i in [i for i, r in enumerate(results) if r.status == difftest.ORACLE_ERROR]:
            if not suiteprobe._wait_for_daemon(oracle):
                return results
            results[i] = run_case(cases[i], oracle, plan, plan_error)
    return results


failures = suiteprobe.failures


def report(results: list[AttachResult], out=sys.stdout, examples: int = 2) -> None:
    cases = [r for r in results if r.status != BASE_REFUSED]
    editprobe.report(cases, out, examples, what="attach cases", label="devices")
    styles = collections.Counter(e.split("(")[1].rstrip(")") for r in cases for e in r.dom.edits)
    print("addresses: " + ", ".join(f"{k} {n}" for k, n in styles.most_common()), file=out)
    both = [r for r in cases if r.status == difftest.OK_REJECT and not r.message_match]
    if both:
        own = collections.Counter(difftest.message_core(r.libvirt_text) for r in both if r.define_match)
        print(f"  of the other messages, {sum(own.values())} are define's (attach refuses first, "
              f"with a check of its own or before its post-parse):", file=out)
        for msg, n in own.most_common():
            print(f"    {n}x attach: {msg[:150]}", file=out)
        neither = [r for r in both if not r.define_match]
        print(f"  pciplan's message is neither attach's nor define's: {len(neither)}", file=out)
        for r in neither[:examples * 5]:
            define = difftest._strip_error(r.define_text) if r.define_ok is False else "accepted"
            print(f"    {r.dom.name} [{'; '.join(r.dom.edits)}]\n"
                  f"      attach: {difftest._strip_error(r.libvirt_text)[:200]}\n"
                  f"      define: {define[:200]}\n      pciplan: {r.plan_reason[:200]}", file=out)
    for status, what in ((ATTACH_ONLY, "refused by attach only (define and pciplan accept; not counted)"),
                         (ATTACH_ACCEPTS, "accepted by attach, refused by define and pciplan (not counted)"),
                         (ATTACH_DIFFERS, "attach's layout is not define's, define's is pciplan's (not counted)")):
        groups = collections.defaultdict(list)
        for r in cases:
            if r.status == status:
                groups[r.signature].append(r)
        if groups:
            print(f"{what}: {sum(map(len, groups.values()))}", file=out)
            for sig, rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
                print(f"  {len(rs)}x {sig[:150]}  e.g. {rs[0].dom.name} [{'; '.join(rs[0].dom.edits)}]",
                      file=out)
    errors = [r for r in results if r.status == difftest.ORACLE_ERROR]
    if errors:
        print(f"libvirt could not be asked: {len(errors)}, e.g. {errors[0].dom.name}: {errors[0].first_line[:200]}",
              file=out)
    refused = [r for r in results if r.status == BASE_REFUSED]
    if refused:
        print(f"({len(refused)} guests refused by libvirt before any attach: no case; e.g. "
              f"{refused[0].dom.base}: {difftest._strip_error(refused[0].first_line)[:150]})", file=out)


def save(results: list[AttachResult], folder: Path) -> int:
    """editprobe.save, with the device and attach's dump next to each case."""
    n = editprobe.save(results, folder, header=lambda r: (
        f"base: {r.dom.base}\ndevices: {'; '.join(r.dom.edits)}\n"
        + "".join(f"virsh {' '.join(d)}\n" for d in r.dom.attach if not isinstance(d, str))
        + f"{r.dom.device}\n"
        f"define: {'accepted' if r.define_ok else difftest._strip_error(r.define_text)}\n"),
        other_messages=True, also=lambda r: r.status in (ATTACH_ACCEPTS, ATTACH_DIFFERS, ATTACH_ONLY))
    for r in results:
        stem = re.sub(r"[^A-Za-z0-9_.~-]", "_", r.dom.name)
        if (folder / f"{stem}.txt").exists():
            (folder / f"{stem}.device.xml").write_text(r.dom.device + "\n")
            if r.libvirt_ok:
                (folder / f"{stem}.attached.xml").write_text(r.libvirt_text)
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="cases (default 300)")
    ap.add_argument("--bases", default="random,suite",
                    help="comma list of random, suite, golden (the cases are shared among them)")
    ap.add_argument("--devices", default=",".join(DEVICES), help="comma list of " + ", ".join(DEVICES))
    ap.add_argument("--steps", type=int, default=1,
                    help="attach up to this many devices one after the other (pciplan plans after each)")
    ap.add_argument("--seed", default=None, help="default: random, printed")
    ap.add_argument("-k", dest="match", default="", help="only suite/golden bases whose name contains this")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--version", default="9.0.0", help="libvirt release whose test inputs to take")
    ap.add_argument("--cache", type=Path, default=suiteprobe.DEFAULT_CACHE)
    ap.add_argument("--save", type=Path, help="write each failing case into this folder")
    ap.add_argument("--uri", default=None)
    args = ap.parse_args(argv)

    ok, why = libvirt_oracle.probe(args.uri)
    if not ok:
        print(f"attachprobe: libvirt cannot be asked: {why}", file=sys.stderr)
        return 2
    oracle = libvirt_oracle.Oracle(args.uri)
    seed = args.seed if args.seed is not None else str(random.randrange(10**9))
    kinds = [k for k in args.bases.split(",") if k]
    share = {k: args.n // len(kinds) + (1 if i < args.n % len(kinds) else 0) for i, k in enumerate(kinds)}
    rng = random.Random(seed)
    t0 = time.monotonic()
    bases: list[editprobe.Base] = []
    if "random" in share:
        bases += random_bases(seed, share["random"], oracle, args.jobs)
    if "suite" in share:
        try:
            root = suiteprobe.fetch(args.version, args.cache)
        except OSError as err:
            print(f"attachprobe: cannot get libvirt {args.version}'s sources: {err}", file=sys.stderr)
            return 2
        # draw more inputs than needed: some are refused by libvirt
        def sample(cs):
            cs = [c for c in cs if args.match in c.name]
            return rng.sample(cs, min(len(cs), share["suite"] * 6 // 5))
        bases += editprobe.suite_bases(root, oracle, args.jobs, sample)[:share["suite"]]
    if "golden" in share:
        golden = [b for b in editprobe.golden_bases() if args.match in b.name]
        bases += rng.sample(golden, min(len(golden), share["golden"]))
    cases = make_cases(bases, seed, tuple(args.devices.split(",")), args.steps)
    print(f"attachprobe: seed {seed}, {len(cases)} cases ({', '.join(f'{k} {n}' for k, n in share.items())}), "
          f"pciplan from {difftest.import_pciplan().__file__}", flush=True)
    progress = difftest.Progress(t0, every=10)
    results = run(cases, oracle, args.jobs, progress)
    progress.end()
    report(results)
    print(f"oracle: {oracle.misses} asked, {oracle.hits} from cache; {time.monotonic() - t0:.0f}s")
    if args.save:
        print(f"saved {save(results, args.save)} cases under {args.save}")
    bad = failures(results)
    print(f"seed {seed}: {len(bad)} failing of {len([r for r in results if r.status != BASE_REFUSED])}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
