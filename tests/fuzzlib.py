"""Mutation fuzzing of pciplan: seeds, mutations, targets and a driver.

The property: whatever the input, the library raises nothing but
``PciplanError`` subclasses, answers within ``TIME_LIMIT`` seconds, and what
``plan`` writes is a document ``pciplan`` reads again.  The CLI exits 0, 1 or 2
and says what went wrong in ``error: `` lines, never with a traceback.

Seeds are the libvirt 9.0 conformance corpus (when it is there), the golden
inputs of tests/golden and the small documents below.  A mutation works on the
parsed tree (attributes set to interesting values or removed, elements
deleted, duplicated, moved, renamed, new devices, controllers and addresses) or
on the bytes (truncation, byte flips, DTDs, entities, encodings, BOMs).

Used by tests/test_fuzz.py (hypothesis chooses the mutations) and as a
script for long runs (a seeded ``random.Random`` chooses them)::

    .venv/bin/python tests/fuzzlib.py --count 100000 --seed 1 --save /tmp/findings
    .venv/bin/python tests/fuzzlib.py --cli --count 2000
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lxml import etree

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REGRESSIONS = HERE / "fuzz_regressions"
#: seconds one input may take in one target: a hang (a loop that does not end, a blow-up), not
#: slowness.  A few regression inputs make thousands of controllers, planned twice over
#: (scsi-hostdev-controller-7000 with capacity='max': 1.7 s on an idle machine), and a busy
#: CI machine takes twice as long; speed is measured by bench/, not here.
TIME_LIMIT = 10.0

# ---- seeds ------------------------------------------------------------------------------
_SMALL = {
    "pc": ("x86_64", "pc", "kvm"),
    "q35": ("x86_64", "q35", "kvm"),
    "virt": ("aarch64", "virt", "qemu"),
    "pseries": ("ppc64", "pseries", "qemu"),
    "s390": ("s390x", "s390-ccw-virtio", "qemu"),
    "riscv": ("riscv64", "virt", "qemu"),
    "armv7": ("armv7l", "virt", "qemu"),
    "i686": ("i686", "pc", "kvm"),
}
_DEVICES = """
    <disk type='file' device='disk'><source file='/var/lib/a.img'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/var/lib/b.iso'/><target dev='sda' bus='scsi'/><readonly/></disk>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <controller type='usb' index='0' model='qemu-xhci'/>
    <interface type='network'><mac address='52:54:00:12:34:56'/><source network='default'/><model type='virtio'/></interface>
    <interface type='network'><mac address='52:54:00:12:34:57'/><source network='default'/><model type='e1000'/></interface>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <input type='tablet' bus='usb'/>
    <video><model type='virtio' heads='1' primary='yes'/></video>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source></hostdev>
    <memballoon model='virtio'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
"""


def small_seed(kind: str) -> bytes:
    arch, machine, virt = _SMALL[kind]
    return (f"<domain type='{virt}'>\n  <name>fuzz-{kind}</name>\n  <memory unit='KiB'>1048576</memory>\n"
            f"  <os><type arch='{arch}' machine='{machine}'>hvm</type></os>\n  <devices>{_DEVICES}  </devices>\n"
            "</domain>\n").encode()


def corpus_dir() -> Path | None:
    env = os.environ.get("PCIPLAN_CORPUS")
    path = Path(env) if env else REPO.parent / "shared" / "conformance" / "libvirt-9.0"
    return path if (path / "accept").is_dir() else None


def seeds() -> list[bytes]:
    """Every seed document: the small ones, tests/golden, the corpus when present."""
    out = [small_seed(k) for k in _SMALL]
    for f in sorted((HERE / "golden").glob("*.in.xml")):
        out.append(f.read_bytes())
    corpus = corpus_dir()
    if corpus is not None:
        for kind in ("accept", "reject"):
            for f in sorted((corpus / kind).glob("*.in.xml")):
                out.append(f.read_bytes())
    return out


# ---- values and templates ---------------------------------------------------------------
NUMBERS = ["0", "1", "2", "3", "7", "8", "0x0", "0x1", "0x1f", "0x20", "31", "32", "0xff", "0x100", "255",
           "256", "0xffff", "0x10000", "65535", "65536", "4294967295", "4294967296",
           "18446744073709551616", "-1", "-0", "+1", " 1", "1 ", "01", "010", "08", "0x", "0xzz", "1_0",
           "1e3", "3.0", "", " ", "\u0663", "0X1F", "99999999999999999999999", "2147483648", "-2147483649"]
KEYWORDS = ["pci", "pcie-root", "pci-root", "pci-bridge", "pcie-root-port", "dmi-to-pci-bridge",
            "pcie-to-pci-bridge", "pcie-switch-upstream-port", "pcie-switch-downstream-port",
            "pci-expander-bus", "pcie-expander-bus", "spapr-pci-host-bridge", "usb", "scsi", "sata",
            "ide", "fdc", "virtio-serial", "ccid", "xenbus", "isa", "virtio", "virtio-scsi",
            "virtio-transitional", "virtio-non-transitional", "lsilogic", "qemu-xhci", "nec-xhci",
            "ich9-ehci1", "ich9-uhci1", "piix3-uhci", "none", "e1000", "e1000e", "rtl8139", "qxl",
            "cirrus", "vga", "bochs", "ramfb", "drive", "ccw", "virtio-mmio", "spapr-vio", "dimm",
            "unassigned", "hostdev", "network", "on", "off", "yes", "no", "q35", "pc", "virt",
            "pseries", "s390-ccw-virtio", "pc-q35-7.2", "pc-i440fx-7.2", "x86_64", "i686", "aarch64",
            "armv7l", "ppc64", "ppc64le", "s390x", "riscv64", "hvm", "xen", "kvm", "qemu", "tablet",
            "mouse", "keyboard", "passthrough", "disk", "cdrom", "floppy", "lun", "vda", "sda", "hda",
            "sdaa", "fda", "x", "bogus", "\u00e9t\u00e9", "a'b\"c", "<&>", "\t\n"]
ATTRS = ["index", "model", "type", "bus", "slot", "function", "domain", "multifunction", "controller",
         "unit", "target", "port", "machine", "arch", "dev", "device", "chassis", "busNr", "hotplug",
         "ports", "vectors", "uid", "fid", "cssid", "ssid", "devno", "reg", "mode", "primary", "name"]
TEMPLATES = [
    "<controller type='pci' index='{n}' model='{k}'/>",
    "<controller type='pci' model='{k}'><model name='{k}'/><target chassis='{n}' port='{n}' busNr='{n}'><node>{n}</node></target></controller>",
    "<controller type='{k}' index='{n}' model='{k}'/>",
    "<controller type='usb' index='{n}' model='{k}'><master startport='{n}'/></controller>",
    "<controller type='{k}' index='{n}'><address type='pci' domain='{n}' bus='{n}' slot='{n}' function='{n}'/></controller>",
    "<interface type='{k}'><mac address='52:54:00:00:00:{h}'/><model type='{k}'/><address type='pci' bus='{n}' slot='{n}' function='{n}' multifunction='{k}'/></interface>",
    "<interface type='hostdev'><source><address type='pci' domain='0' bus='{n}' slot='{n}' function='{n}'/></source></interface>",
    "<disk type='file' device='{k}'><source file='/x'/><target dev='{k}' bus='{k}'/><address type='drive' controller='{n}' bus='{n}' target='{n}' unit='{n}'/></disk>",
    "<disk type='file' device='disk'><source file='/x'/><target dev='vd{l}' bus='virtio'/><address type='{k}' bus='{n}' slot='{n}'/></disk>",
    "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='{n}' bus='{n}' slot='{n}' function='{n}'/></source><address type='pci' bus='{n}' slot='{n}'><zpci uid='{n}' fid='{n}'/></address></hostdev>",
    "<channel type='pty'><target type='virtio' name='c{n}'/><address type='virtio-serial' controller='{n}' bus='{n}' port='{n}'/></channel>",
    "<input type='{k}' bus='{k}'><address type='usb' bus='{n}' port='{n}.{n}'/></input>",
    "<video><model type='{k}' primary='{k}'/></video>",
    "<memballoon model='{k}'/>",
    "<watchdog model='{k}'/>",
    "<sound model='{k}'/>",
    "<rng model='{k}'><backend model='random'>/dev/urandom</backend></rng>",
    "<iommu model='{k}'/>",
    "<vsock model='{k}'><cid auto='yes'/></vsock>",
    "<shmem name='s{n}'><model type='{k}'/></shmem>",
    "<filesystem type='mount'><driver type='{k}'/><source dir='/a'/><target dir='t{n}'/></filesystem>",
    "<serial type='pty'><target type='{k}' port='{n}'><model name='{k}'/></target></serial>",
    "<console type='pty'><target type='{k}' port='{n}'/></console>",
    "<memory model='{k}'><target><size unit='KiB'>{n}</size></target><address type='dimm' slot='{n}'/></memory>",
    "<panic model='{k}'/>",
    "<tpm model='{k}'><backend type='emulator'/></tpm>",
    "<crypto model='virtio' type='qemu'><backend model='builtin'/></crypto>",
    "<graphics type='{k}'/>",
    "<smartcard mode='passthrough' type='spicevmc'><address type='ccid' controller='{n}' slot='{n}'/></smartcard>",
    "<redirdev bus='usb' type='spicevmc'/>",
    "<hub type='usb'/>",
    "<{k}/>",
    # realistic devices with one value left to chance: drive/virtio-serial controllers,
    # disk names, controller indexes (implicit controllers are added up to them)
    "<disk type='file' device='disk'><source file='/x'/><target dev='sda' bus='scsi'/><address type='drive' controller='{n}' bus='0' target='0' unit='0'/></disk>",
    "<disk type='file' device='disk'><source file='/x'/><target dev='hda' bus='ide'/><address type='drive' controller='{n}' bus='0' target='0' unit='0'/></disk>",
    "<disk type='file' device='disk'><source file='/x'/><target dev='sda' bus='sata'/><address type='drive' controller='{n}' bus='0' target='0' unit='{n}'/></disk>",
    "<disk type='file' device='disk'><source file='/x'/><target dev='sd{w}' bus='scsi'/></disk>",
    "<disk type='file' device='floppy'><source file='/x'/><target dev='fd{w}' bus='fdc'/></disk>",
    "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/><address bus='0' target='0' unit='0'/></source><address type='drive' controller='{n}' bus='0' target='0' unit='0'/></hostdev>",
    "<channel type='pty'><target type='virtio' name='n{n}'/><address type='virtio-serial' controller='{n}' bus='0' port='1'/></channel>",
    "<controller type='scsi' index='{n}' model='virtio-scsi'/>",
    "<controller type='pci' index='{n}' model='pcie-root-port'/>",
    "<controller type='pci' index='{n}' model='pci-bridge'/>",
    "<controller type='usb' index='{n}' model='qemu-xhci'/>",
    "<controller type='virtio-serial' index='{n}' ports='{n}'/>",
]
BYTE_TRICKS = [
    b"<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>",
    b"<!DOCTYPE domain SYSTEM 'http://127.0.0.1:1/x.dtd'>",
    b"<!DOCTYPE domain [<!ATTLIST domain x CDATA ']>'><!-- <!ENTITY y 'z'> -->]>", b"<!DOCTYPE domain>",
    b"&x;", b"&amp;", b"&#0;", b"&#x1F600;", b"<![CDATA[<a>]]>", b"<!-- -- -->", b"<?pi ?>",
    b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\xc3", b"\xff", b"]]>", b"</domain>", b"<domain>", b"'", b'"',
    b"<xi:include xmlns:xi='http://www.w3.org/2001/XInclude' href='/etc/passwd' parse='text'/>",
    b"<a xmlns='urn:x'/>", b"<x:devices xmlns:x='urn:x'/>",
]


# ---- mutations --------------------------------------------------------------------------
class Chooser:
    """Where a mutation takes its decisions from: ``random.Random`` or hypothesis' ``data``."""

    def __init__(self, rnd: random.Random | None = None, draw: Callable | None = None) -> None:
        self.rnd = rnd
        self.draw_fn = draw

    def int(self, lo: int, hi: int) -> int:
        if self.rnd is not None:
            return self.rnd.randint(lo, hi)
        from hypothesis import strategies as st
        return self.draw_fn(st.integers(lo, hi))

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _value(ch: Chooser) -> str:
    return ch.pick(NUMBERS) if ch.int(0, 1) else ch.pick(KEYWORDS)


def _template(ch: Chooser) -> etree._Element | None:
    t = ch.pick(TEMPLATES)
    word = "".join(chr(ord("a") + ch.int(0, 25)) for _ in range(ch.int(0, 14)))
    text = t.format(n=ch.pick(NUMBERS), k=ch.pick(KEYWORDS), h=f"{ch.int(0, 255):02x}",
                    l=chr(ord("a") + ch.int(0, 25)), w=word)
    try:
        return etree.fromstring(text)
    except etree.XMLSyntaxError:
        # a value that is not an XML name or not attribute-safe: set it afterwards
        try:
            el = etree.fromstring(t.replace("<{k}/>", "<x/>").format(n="0", k="x", h="00", l="a", w="a"))
        except etree.XMLSyntaxError:
            return None
        return el


#: elements where PCI planning happens: mutations go there more often
HOT = ("address", "controller", "target", "model", "source", "type", "disk", "interface", "hostdev")


def mutate_tree(root: etree._Element, ch: Chooser) -> None:
    els = _elements(root)
    op = ch.int(0, 11)
    hot = [e for e in els if e.tag in HOT]
    el = ch.pick(hot) if hot and ch.int(0, 2) else ch.pick(els)
    parent = el.getparent()
    if op == 0 and el.attrib:
        el.set(ch.pick(sorted(el.attrib)), _value(ch))
    elif op == 1:
        try:
            el.set(ch.pick(ATTRS), _value(ch))
        except ValueError:
            pass
    elif op == 2 and el.attrib:
        del el.attrib[ch.pick(sorted(el.attrib))]
    elif op == 3 and parent is not None:
        parent.remove(el)
    elif op == 4 and parent is not None:
        parent.insert(parent.index(el) + ch.int(0, 1), copy.deepcopy(el))
    elif op == 5:
        devices = root.find("devices")
        target = devices if devices is not None and ch.int(0, 3) else ch.pick(els)
        new = _template(ch)
        if new is not None:
            target.insert(ch.int(0, len(target)), new)
    elif op == 6 and parent is not None:
        other = ch.pick(els)
        if other is not el and el not in other.iterancestors() and other is not root:
            parent.remove(el)
            other.append(el)
    elif op == 7:
        name = ch.pick(KEYWORDS + ["address", "controller", "target", "model", "source", "devices", "os"])
        try:
            el.tag = name
        except ValueError:
            pass
    elif op == 8:
        try:
            el.text = _value(ch)
        except ValueError:
            pass
    elif op == 9 and parent is not None and len(parent) > 1:
        i, j = ch.int(0, len(parent) - 1), ch.int(0, len(parent) - 1)
        a, b = parent[i], parent[j]
        if a is not b:
            parent.replace(a, copy.deepcopy(b))
            parent.replace(b, a)
    elif op == 10:
        # give a device an address of its own, or change the one it has
        devices = root.find("devices")
        if devices is not None and len(devices):
            dev = ch.pick(list(devices))
            if isinstance(dev.tag, str):
                addr = dev.find("address")
                if addr is None:
                    addr = etree.SubElement(dev, "address")
                addr.set("type", ch.pick(["pci", "pci", "drive", "usb", "ccw", "virtio-mmio",
                                          "virtio-serial", "spapr-vio", "bogus"]))
                for k in ("domain", "bus", "slot", "function"):
                    if ch.int(0, 1):
                        addr.set(k, ch.pick(NUMBERS))
    else:
        # machine/arch swap: the same devices on another machine
        t = root.find("os/type")
        if t is not None:
            kind = ch.pick(sorted(_SMALL))
            arch, machine, _ = _SMALL[kind]
            t.set("arch", arch)
            t.set("machine", machine)


def mutate_bytes(data: bytes, ch: Chooser) -> bytes:
    op = ch.int(0, 6)
    n = len(data)
    if op == 0 and n:
        return data[:ch.int(0, n)]
    if op == 1 and n:
        i = ch.int(0, n - 1)
        return data[:i] + bytes([ch.int(0, 255)]) + data[i + 1:]
    if op == 2:
        i = ch.int(0, n)
        return data[:i] + ch.pick(BYTE_TRICKS) + data[i:]
    if op == 3:
        # a trick right before the root element, where a DOCTYPE goes
        i = data.find(b"<domain")
        i = 0 if i < 0 else i
        return data[:i] + ch.pick(BYTE_TRICKS) + data[i:]
    if op == 4:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        enc = ch.pick(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "utf-8-sig"])
        decl = ch.int(0, 1)
        if decl and not text.startswith("<?xml"):
            name = {"utf-8-sig": "UTF-8"}.get(enc, enc.upper())
            text = f"<?xml version='1.0' encoding='{name}'?>\n" + text
        try:
            return text.encode(enc)
        except UnicodeEncodeError:
            return data
    if op == 5 and n:
        i, j = sorted((ch.int(0, n), ch.int(0, n)))
        return data[:i] + data[j:]
    if op == 6 and n:
        i, j = sorted((ch.int(0, n), ch.int(0, n)))
        return data[:j] + data[i:j] + data[j:]
    return data


def mutate(seed: bytes, ch: Chooser) -> bytes:
    """A few tree mutations, sometimes followed by a byte mutation."""
    try:
        root = etree.fromstring(seed, etree.XMLParser(resolve_entities=False, no_network=True,
                                                      load_dtd=False))
    except etree.XMLSyntaxError:
        root = None
    data = seed
    if root is not None:
        for _ in range(ch.int(1, 5)):
            mutate_tree(root, ch)
        data = etree.tostring(root)
    if ch.int(0, 4) == 0:
        data = mutate_bytes(data, ch)
    return data


# ---- targets ----------------------------------------------------------------------------
class Hang(Exception):
    """An input took longer than TIME_LIMIT."""


def _alarm(_sig, _frame):
    raise Hang(f"took longer than {TIME_LIMIT} s")


class time_limit:
    """Raise Hang inside the block after ``seconds`` (SIGALRM; main thread only)."""

    def __init__(self, seconds: float = TIME_LIMIT) -> None:
        self.seconds = seconds

    def __enter__(self):
        self.usable = hasattr(signal, "setitimer") and \
            __import__("threading").current_thread() is __import__("threading").main_thread()
        if self.usable:
            self.old = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.usable:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def _options(variant: int):
    from pciplan.planner import Options
    return [Options(probe_host=False), Options(probe_host=False, hotplug_ports=3),
            Options(probe_host=False, placement="flat"), Options(probe_host=False, capacity="max")][variant % 4]


def target_plan(data: bytes, variant: int = 0) -> None:
    """plan: the output is a document pciplan reads again, with the same plan."""
    from pciplan import xmlio, api
    doc = xmlio.load(data)
    api.plan_document(doc, _options(variant))
    out = xmlio.dump(doc)
    again = xmlio.load(out)           # what we wrote is readable...
    api.plan_document(again, _options(variant))  # ...and plannable


def target_check(data: bytes, variant: int = 0) -> None:
    from pciplan import check
    report = check.check(data)
    check.to_text(report)
    check.to_data(report, strict=bool(variant % 2))


def target_tree(data: bytes, variant: int = 0) -> None:
    from pciplan import api, topology, tree, xmlio
    doc = xmlio.load(data)
    plan = api.plan_document(doc, _options(variant))
    view = tree.to_data(topology.build(plan), name="x")
    tree.to_lines(view, ascii=bool(variant % 2))
    tree.to_dot(view)


def target_diff(data: bytes, variant: int = 0, other: bytes | None = None) -> None:
    from pciplan import api, diff, xmlio
    from pciplan.errors import PciplanError
    new = api.plan_document(xmlio.load(data), _options(0))
    try:
        old = api.plan_document(xmlio.load(other), _options(0)) if other is not None else new
    except PciplanError:
        old = new
    changes = diff.compare(old, new)
    diff.to_text(changes)
    diff.to_data(changes, "a", "b")


TARGETS: dict[str, Callable[..., None]] = {
    "plan": target_plan, "check": target_check, "tree": target_tree, "diff": target_diff,
}


@dataclass
class Finding:
    target: str
    kind: str          # exception type, or "Hang"
    where: str         # file:line of the raising frame
    message: str
    data: bytes = field(repr=False, default=b"")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.target, self.kind, self.where)


def run_one(name: str, data: bytes, variant: int = 0, other: bytes | None = None,
            confirm: bool = True) -> Finding | None:
    """Run one target on one input: None when it behaved (success or a PciplanError).

    A hang is tried a second time before it counts (a busy machine can make anything slow)."""
    f = _run_one(name, data, variant, other)
    if f is not None and f.kind == "Hang" and confirm:
        return _run_one(name, data, variant, other)
    return f


def _run_one(name: str, data: bytes, variant: int, other: bytes | None) -> Finding | None:
    from pciplan.errors import PciplanError
    fn = TARGETS[name]
    try:
        with time_limit():
            if name == "diff":
                fn(data, variant, other)
            else:
                fn(data, variant)
    except PciplanError:
        return None
    except Exception as exc:  # noqa: BLE001 - that is what we look for
        tb = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in tb if "pciplan" in f.filename] or tb
        last = frames[-1] if frames else None
        where = f"{Path(last.filename).name}:{last.lineno or '?'} {last.name}" if last else "?"
        return Finding(name, type(exc).__name__, where, str(exc)[:300], data)
    return None


# ---- the CLI ---------------------------------------------------------------------------
def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "pciplan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pciplan"]


#: {old} is a planned seed document in a file (diff compares it with the input on stdin)
CLI_ARGS = {"plan": ["plan", "-"], "check": ["check", "-"], "tree": ["tree", "-"],
            "tree-json": ["tree", "-f", "json", "-"], "check-json": ["check", "--json", "-"],
            "diff": ["diff", "{old}", "-"], "diff-json": ["diff", "--json", "-", "{old}"]}
_OLD: list[str] = []


def _old_file() -> str:
    if not _OLD:
        import atexit
        import tempfile
        fd, path = tempfile.mkstemp(prefix="pciplan-fuzz-", suffix=".xml")
        os.write(fd, small_seed("q35"))
        os.close(fd)
        atexit.register(os.unlink, path)  # (the tests left one in /tmp at every run)
        _OLD.append(path)
    return _OLD[0]


def run_cli(args: list[str], data: bytes, timeout: float = 60) -> tuple[int, bytes, str]:
    args = [a.replace("{old}", _old_file()) if "{old}" in a else a for a in args]
    p = subprocess.run(cli_command() + args, input=data, capture_output=True, timeout=timeout,
                       env={**os.environ, "NO_COLOR": "1"})
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def cli_problem(code: int, err: str) -> str | None:
    """What is wrong with how the CLI ended, or None."""
    if code not in (0, 1, 2):
        return f"exit status {code}"
    if "Traceback" in err:
        return "traceback"
    if "internal error:" in err:
        return "internal error"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code == 2 and not any(ln.startswith("error: ") for ln in lines):
        return "exit 2 without an error line"
    if any(not ln.startswith(("error: ", "warning: ")) for ln in lines):
        return "stderr line that is neither error: nor warning:"
    return None


# ---- the driver ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=10000, help="inputs to generate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, help="folder for one input per distinct finding")
    ap.add_argument("--cli", action="store_true", help="run the CLI (subprocesses) instead of the API")
    ap.add_argument("--targets", default="plan,check,tree,diff")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    rnd = random.Random(args.seed)
    ch = Chooser(rnd)
    pool = seeds()
    targets = args.targets.split(",")
    found: dict[tuple, list[Finding]] = {}
    runs = 0
    start = time.time()
    slowest = (0.0, b"")
    for i in range(args.count):
        seed = ch.pick(pool)
        data = mutate(seed, ch)
        name = targets[i % len(targets)]
        t0 = time.time()
        if args.cli:
            cmd = CLI_ARGS[ch.pick([k for k in CLI_ARGS if k.split("-")[0] in targets])]
            try:
                code, _, err = run_cli(cmd, data)
                problem = cli_problem(code, err)
            except subprocess.TimeoutExpired:
                problem, err = "timeout", ""
            f = Finding(cmd[0], problem, " ".join(cmd), err[-300:], data) if problem else None
        else:
            f = run_one(name, data, rnd.randint(0, 3), ch.pick(pool))
        dt = time.time() - t0
        if dt > slowest[0]:
            slowest = (dt, data)
        runs += 1
        if f is not None:
            first = f.key not in found
            found.setdefault(f.key, []).append(f)
            if first:
                print(f"[{i}] NEW {f.target} {f.kind} at {f.where}: {f.message[:160]}", flush=True)
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    safe = "-".join(f.key).replace("/", "_").replace(":", "_").replace(" ", "_")
                    (args.save / f"{safe}.xml").write_bytes(f.data)
        if (i + 1) % 10000 == 0:
            print(f"... {i + 1} inputs, {time.time() - start:.0f} s, {len(found)} distinct findings",
                  flush=True)
    print(f"{runs} inputs in {time.time() - start:.0f} s; slowest {slowest[0]:.2f} s; "
          f"{len(found)} distinct findings")
    for key, fs in sorted(found.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(fs):6d}  {' '.join(key)}: {fs[0].message[:120]}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
