"""Compare the PCI layout of two libvirt domain XML documents.

The "PCI layout" is what a guest sees of its PCI topology:

* every PCI controller (``<controller type='pci'>``): index, model,
  ``<model name>``, the ``<target>`` attributes (and ``<node>``), its address;
* every other device: its PCI address (domain, bus, slot, function,
  multifunction, zPCI uid/fid), or "none" when it has no PCI address.

Everything else is ignored: MAC addresses, UUIDs, names, element order,
formatting, hex vs decimal spelling, and non-PCI addresses (drive, usb, ccw,
virtio-serial, virtio-mmio, spapr-vio all count as "no PCI address").

Devices are matched by identity, not by position:

* ``<controller>``: (type, index);
* ``<disk>``: its target dev;
* ``<hostdev>`` with a ``<source><address>``: that source address;
* ``<interface>``: the n-th interface;
* ``<video>``: the n-th video;
* anything else: (element, its type attribute, its ``<model type|name>``), n-th.

This is the same notion of "same layout" as the conformance corpus' comparison
script, written independently; it is a little stricter in two places: a PCI
controller present on one side only is always a difference, and a PCI
controller's ``<target><node>`` is compared.

API::

    diffs = compare_xml(expected_text, actual_text)   # [] when identical
    for d in diffs: print(d)                           # one readable line each
    d.signature                                        # for grouping failures
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Diff", "Entry", "layout", "compare", "compare_xml", "compare_files", "format_address"]


def _int(v):
    """Parse a libvirt number: decimal or 0x-hex; leading zeros are decimal."""
    if v is None:
        return None
    s = v.strip()
    try:
        return int(s, 0)
    except ValueError:
        try:
            return int(s, 10)
        except ValueError:
            return s


@dataclass(frozen=True)
class PciAddress:
    domain: int
    bus: int
    slot: int
    function: int
    multifunction: bool = False
    zpci: tuple = ()           # (uid, fid) when a <zpci> child is present

    def __str__(self) -> str:
        return format_address(self)


def format_address(a: PciAddress | None) -> str:
    if a is None:
        return "none"

    def h(v, width):
        return f"{v:0{width}x}" if isinstance(v, int) else str(v)

    s = f"{h(a.domain, 4)}:{h(a.bus, 2)}:{h(a.slot, 2)}.{h(a.function, 1)}"
    if a.multifunction:
        s += " mf=on"
    if a.zpci:
        uid, fid = a.zpci
        s += f" zpci(uid={uid if uid is None else hex(uid) if isinstance(uid, int) else uid},"
        s += f"fid={fid if fid is None else hex(fid) if isinstance(fid, int) else fid})"
    return s


def _pci_address(el: ET.Element) -> PciAddress | None:
    addr = el.find("address")
    if addr is None or addr.get("type") != "pci":
        return None
    nums = [_int(addr.get(k)) if addr.get(k) is not None else 0
            for k in ("domain", "bus", "slot", "function")]
    mf = (addr.get("multifunction") or "off").strip().lower() == "on"
    z = addr.find("zpci")
    zpci = (_int(z.get("uid")), _int(z.get("fid"))) if z is not None else ()
    return PciAddress(*nums, multifunction=mf, zpci=zpci)


@dataclass
class Entry:
    """One device's PCI-relevant facts."""
    key: tuple
    label: str                 # human-readable identity, e.g. "interface #2"
    desc: str                  # what it is, e.g. "e1000" (not compared)
    address: PciAddress | None
    pci_controller: bool = False
    model: str | None = None
    model_name: str | None = None
    target: tuple = ()

    def facts(self) -> dict:
        d = {"address": self.address}
        if self.pci_controller:
            d.update(model=self.model, model_name=self.model_name, target=self.target)
        return d


def _model_key(el: ET.Element) -> str:
    m = el.find("model")
    if m is None:
        return ""
    return m.get("type") or m.get("name") or ""


def _desc(el: ET.Element) -> str:
    tag = el.tag
    if tag == "interface":
        m = el.find("model")
        model = m.get("type") if m is not None else "no model"
        return "hostdev interface" if el.get("type") == "hostdev" else model
    if tag == "video":
        m = el.find("model")
        return m.get("type", "?") if m is not None else "?"
    if tag == "disk":
        t = el.find("target")
        return f"{el.get('device', 'disk')} bus={t.get('bus') if t is not None else '?'}"
    if tag == "controller":
        return f"{el.get('type')} {el.get('model') or '(no model)'}"
    bits = [el.get("model") or "", el.get("type") or "", _model_key(el), el.get("bus") or ""]
    return " ".join(b for b in bits if b)


def _target(el: ET.Element) -> tuple:
    t = el.find("target")
    if t is None:
        return ()
    items = [(k, _int(v)) for k, v in t.attrib.items()]
    node = t.find("node")
    if node is not None and node.text is not None:
        items.append(("node", _int(node.text)))
    return tuple(sorted(items, key=lambda kv: kv[0]))


def layout(root: ET.Element) -> dict[tuple, Entry]:
    """Map device identity -> Entry for one parsed <domain>."""
    devices = root.find("devices")
    result: dict[tuple, Entry] = {}
    if devices is None:
        return result
    seen: dict[tuple, int] = {}
    for el in devices:
        if not isinstance(el.tag, str):
            continue            # comments / processing instructions
        tag = el.tag
        if tag == "controller":
            ctype, index = el.get("type"), _int(el.get("index", "0"))
            key = ("controller", ctype, index)
            label = f"controller {ctype} index={index}"
        elif tag == "disk":
            t = el.find("target")
            dev = t.get("dev") if t is not None else None
            key, label = ("disk", dev), f"disk {dev}"
        elif tag == "hostdev" and el.find("source/address") is not None:
            src = el.find("source/address")
            key = ("hostdev",) + tuple(sorted((k, _int(v)) for k, v in src.attrib.items()))
            nums = {k: _int(v) for k, v in src.attrib.items()}
            if {"bus", "slot", "function"} <= set(nums) and all(isinstance(v, int) for v in nums.values()):
                pretty = format_address(PciAddress(nums.get("domain", 0), nums["bus"], nums["slot"],
                                                   nums["function"]))
            else:
                pretty = ",".join(f"{k}={v}" for k, v in sorted(src.attrib.items()))
            label = f"hostdev {pretty}"
        else:
            if tag == "interface":
                base = ("interface",)
            elif tag == "video":
                base = ("video", "", "")
            else:
                base = (tag, el.get("type") or "", _model_key(el))
            n = seen.get(base, 0)
            seen[base] = n + 1
            key = base + (n,)
            label = f"{tag} #{n}" if len(base) == 1 or base[1:] == ("", "") else \
                f"{tag}[{'/'.join(b for b in base[1:] if b)}] #{n}"
        entry = Entry(key=key, label=label, desc=_desc(el), address=_pci_address(el))
        if tag == "controller" and el.get("type") == "pci":
            m = el.find("model")
            entry.pci_controller = True
            entry.model = el.get("model")
            entry.model_name = m.get("name") if m is not None else None
            entry.target = _target(el)
        result[key] = entry
    return result


@dataclass
class Diff:
    label: str                 # which device
    what: str                  # "missing", "extra", or the differing field(s)
    expected: object = None
    actual: object = None
    desc: str = ""
    signature: str = field(default="", compare=False)

    def __str__(self) -> str:
        d = f" ({self.desc})" if self.desc else ""
        if self.what == "missing":
            return f"{self.label}{d}: missing in actual; expected {self.expected}"
        if self.what == "extra":
            return f"{self.label}{d}: not in expected; actual has {self.actual}"
        return f"{self.label}{d}: {self.what} expected {self.expected}, actual {self.actual}"


def _summary(e: Entry) -> str:
    if e.pci_controller:
        s = f"{e.model} name={e.model_name} target={_fmt_target(e.target)} at {format_address(e.address)}"
        return s
    return format_address(e.address)


def _fmt_target(t: tuple) -> str:
    if not t:
        return "{}"
    return "{" + ",".join(f"{k}={hex(v) if k == 'port' and isinstance(v, int) else v}" for k, v in t) + "}"


def _kind_of(key: tuple) -> str:
    """The device kind without its ordinal, for grouping signatures."""
    if key[0] == "controller":
        return f"controller {key[1]}"
    if key[0] in ("disk", "hostdev", "interface"):
        return key[0]
    return "/".join(str(k) for k in key[:-1] if k != "")


def compare(expected: dict[tuple, Entry], actual: dict[tuple, Entry]) -> list[Diff]:
    diffs: list[Diff] = []
    for key in sorted(set(expected) | set(actual), key=repr):
        e, a = expected.get(key), actual.get(key)
        if e is None:
            if a.address is not None or a.pci_controller:
                diffs.append(Diff(a.label, "extra", actual=_summary(a), desc=a.desc,
                                  signature=f"{_kind_of(key)} extra"
                                            + (f" {a.model}" if a.pci_controller else "")))
            continue
        if a is None:
            if e.address is not None or e.pci_controller:
                diffs.append(Diff(e.label, "missing", expected=_summary(e), desc=e.desc,
                                  signature=f"{_kind_of(key)} missing"
                                            + (f" {e.model}" if e.pci_controller else "")))
            continue
        ef, af = e.facts(), a.facts()
        if ef == af:
            continue
        fields = [k for k in ef if ef[k] != af[k]]
        if fields == ["address"]:
            exp_s, act_s = format_address(e.address), format_address(a.address)
        elif fields == ["target"]:
            exp_s, act_s = _fmt_target(e.target), _fmt_target(a.target)
        elif fields == ["model"]:
            exp_s, act_s = e.model, a.model
        else:
            exp_s, act_s = _summary(e), _summary(a)
        diffs.append(Diff(e.label, "+".join(fields), expected=exp_s, actual=act_s, desc=e.desc,
                          signature=f"{_kind_of(key)} ({e.desc}) {'+'.join(fields)}"))
    return diffs


def _parse(text_or_root) -> ET.Element:
    if isinstance(text_or_root, ET.Element):
        return text_or_root
    return ET.fromstring(text_or_root)


def compare_xml(expected, actual, devices_only: bool = False) -> list[Diff]:
    """Compare two domain XML texts (or parsed roots). [] when the layouts match."""
    e, a = layout(_parse(expected)), layout(_parse(actual))
    if devices_only:
        e = {k: v for k, v in e.items() if not v.pci_controller}
        a = {k: v for k, v in a.items() if not v.pci_controller}
    return compare(e, a)


def compare_files(expected_path, actual_path, devices_only: bool = False) -> list[Diff]:
    return compare_xml(Path(expected_path).read_text(), Path(actual_path).read_text(), devices_only)


def first_diff_signature(diffs: list[Diff]) -> str:
    """A short, number-free grouping key for a failing comparison."""
    if not diffs:
        return ""
    return re.sub(r"\s+", " ", diffs[0].signature)


def describe(text_or_root) -> list[str]:
    """One line per device that has a PCI address or is a PCI controller."""
    lines = []
    for e in layout(_parse(text_or_root)).values():
        if e.pci_controller:
            lines.append(f"{format_address(e.address):26s} {e.label}: {e.model} name={e.model_name} "
                         f"target={_fmt_target(e.target)}")
        elif e.address is not None:
            lines.append(f"{format_address(e.address):26s} {e.label} ({e.desc})")
    return lines


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Compare the PCI layout of two domain XML files "
                                             "(or, with one file, print its PCI layout).")
    ap.add_argument("expected")
    ap.add_argument("actual", nargs="?")
    ap.add_argument("--devices-only", action="store_true")
    a = ap.parse_args(argv)
    if a.actual is None:
        try:
            print("\n".join(describe(Path(a.expected).read_text())))
        except (OSError, ET.ParseError) as err:
            print(f"cannot read: {err}")
            return 2
        return 0
    try:
        diffs = compare_files(a.expected, a.actual, a.devices_only)
    except (OSError, ET.ParseError) as err:
        print(f"cannot read: {err}")
        return 2
    for d in diffs:
        print(d)
    print(f"{len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
