"""Guest-visible PCI changes between two planned domains.

``compare(old_plan, new_plan)`` matches the devices of the two plans by identity
and lists what a guest would notice:

* a device whose PCI address changed (``moved``), or that appears (``added``) or
  disappears (``removed``) from PCI;
* a controller whose model, ``<model name>``, chassis, port, bus number,
  target index, NUMA node or hotplug setting changed (``changed``), and a
  device whose model changed (a different PCI device to the guest).

Identity (never the position in the file):

* controllers: type + index;
* disks: target dev;
* interfaces: MAC address when present, else model + ordinal among those without one;
  an interface one side writes without a MAC address (libvirt generates one on define)
  is, in order, the unmatched interface of its model on the other side;
* hostdevs: the host source (PCI address, mdev UUID...), else type + ordinal;
* anything else: element + kind (model or type) + ordinal.

Devices with no PCI address on either side (or only libvirt's "empty" one, which a
device off PCI keeps) are not PCI-visible and never listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .address import PciAddress, parse_number
from .domain import Controller, Device
from .planner import Plan
from .tree import label, mac_name, source_name

FORMAT = "pciplan-diff"
VERSION = 1

#: controller <target> attributes compared, and whether they are numbers
_TARGET_FIELDS = ("chassisNr", "chassis", "port", "busNr", "index", "node", "hotplug")
_NUMERIC = frozenset({"chassisNr", "chassis", "port", "busNr", "index", "node"})


@dataclass
class Entry:
    """One device as the diff sees it."""

    key: str
    device: Device
    address: PciAddress | None
    multifunction: bool
    zpci: tuple[int | None, int | None] | None
    fields: dict[str, Any]


@dataclass
class Change:
    #: moved | added | removed | changed
    kind: str
    key: str
    element: str
    label: str
    old: Entry | None
    new: Entry | None
    #: name -> (old, new) of every compared field that differs (besides the address)
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def old_address(self) -> PciAddress | None:
        return self.old.address if self.old is not None else None

    @property
    def new_address(self) -> PciAddress | None:
        return self.new.address if self.new is not None else None

    def describe(self) -> str:
        """``moved disk vda (virtio): 0000:04:00.0 -> 0000:05:00.0``"""
        return format_change(self)


# ---- identity ----------------------------------------------------------------------------
def _norm(name: str, value: str | None) -> Any:
    if value is None:
        return None
    if name in _NUMERIC:
        try:
            return parse_number(value)
        except ValueError:
            return value
    return value


def _kind(dev: Device) -> str:
    """The ``type`` attribute (input tablet, filesystem mount...): stable under planning,
    unlike the model, which libvirt may fill in."""
    return dev.type or ""


def keys(devices: list[Device]) -> list[str]:
    """The identity key of every device, in order."""
    ordinals: dict[tuple[str, ...], int] = {}
    out: dict[int, str] = {}

    def nth(*group: str) -> int:
        n = ordinals.get(group, 0) + 1
        ordinals[group] = n
        return n

    ctrl_keys = [(d.type, d.index) for d in devices if isinstance(d, Controller)]
    # libvirt's order: the primary video first (it moves it there)
    videos = [d for d in devices if d.tag == "video"]
    primary = [v for v in videos if v.attrs.get("primary") == "yes"][:1]
    order = [d for d in devices if d.tag != "video"] + primary + [v for v in videos if v not in primary]
    for d in order:
        if isinstance(d, Controller):
            if d.index is None:
                key = f"controller {d.type} #{nth('controller', d.type or '')}"
            else:
                key = f"controller {d.type} {d.index}"
                if ctrl_keys.count((d.type, d.index)) > 1:  # USB2 companions share an index
                    key += f" {d.model or 'default'}"
        elif d.tag == "disk" and d.target.get("dev"):
            key = f"disk {d.target['dev']}"
        elif d.tag == "interface" and d.attrs.get("mac"):
            key = f"interface mac {mac_name(d)}"
        elif d.tag == "interface" and d.type == "hostdev" and d.source:
            key = f"interface host {source_name(d.source)}"
        elif d.tag == "interface":
            key = f"interface {d.model or 'default'} #{nth('interface', d.model or '')}"
        elif d.tag == "hostdev" and d.source:
            key = f"hostdev {source_name(d.source)}"
        else:
            k = _kind(d)
            key = f"{d.tag} {k} #{nth(d.tag, k)}" if k else f"{d.tag} #{nth(d.tag, '')}"
        out[id(d)] = key
    return [out[id(d)] for d in devices]


#: models libvirt fills in where the XML has none (and pciplan, not writing them, does not)
_DEFAULT_MODELS = {"vsock": "virtio", "memballoon": "virtio"}


def _model(d: Device, plan: Plan) -> str | None:
    if d.tag in ("disk", "hostdev") and d.model == "default":
        return None  # (which libvirt writes as no model)
    if d.model is not None or isinstance(d, Controller):
        return d.model
    if d.tag == "interface" and d.type != "hostdev":
        return plan.machine.nic_model
    if d.tag == "video":
        return plan.machine.video_model
    return _DEFAULT_MODELS.get(d.tag)


def entries(plan: Plan) -> dict[str, Entry]:
    """Every device of a planned domain by identity key (duplicates get a suffix)."""
    devs = [d for d in plan.domain.devices if d.tag not in ("emulator",)]
    out: dict[str, Entry] = {}
    for key, d in zip(keys(devs), devs):
        a = d.address
        pci = d.pci_address
        if pci is not None and pci.is_empty:
            pci = None  # (what a device off PCI keeps: libvirt writes <address type='pci'/>)
        fields: dict[str, Any] = {"model": _model(d, plan)}
        if isinstance(d, Controller):
            fields["model_name"] = d.model_name
            if d.type == "pci":
                for name in _TARGET_FIELDS:
                    fields[name] = _norm(name, d.target.get(name))
        zpci = None
        if a is not None and a.is_pci and a.zpci is not None:
            zpci = (a.zpci.uid, a.zpci.fid)
        e = Entry(key, d, pci, bool(a is not None and a.multifunction == "on"), zpci, fields)
        k, n = key, 1
        while k in out:
            n += 1
            k = f"{key} ({n})"
        e.key = k
        out[k] = e
    return out


# ---- comparison ----------------------------------------------------------------------------
def compare(old: Plan, new: Plan) -> list[Change]:
    """The guest-visible PCI changes from ``old`` to ``new`` (empty: same layout)."""
    a, b = entries(old), entries(new)
    pairs = _pairs(a, b)
    changes: list[Change] = []
    for key, e in a.items():
        f = pairs.get(key)
        if f is None:
            if _visible(e):
                changes.append(Change("removed", key, e.device.tag, _label(e.device), e, None))
            continue
        key = f.key if f.device.attrs.get("mac") else key  # (the key that names a MAC)
        if not (_visible(e) or _visible(f)):
            continue
        fields: dict[str, tuple[Any, Any]] = {}
        for name in sorted(set(e.fields) | set(f.fields)):
            x, y = e.fields.get(name), f.fields.get(name)
            if x != y:
                fields[name] = (x, y)
        if e.address is not None and f.address is not None:
            if e.multifunction != f.multifunction:
                fields["multifunction"] = (e.multifunction, f.multifunction)
            if e.zpci != f.zpci:
                fields["zpci"] = (_zpci(e.zpci), _zpci(f.zpci))
        if e.address != f.address:
            changes.append(Change("moved", key, f.device.tag, _label(f.device), e, f, fields))
        elif fields:
            changes.append(Change("changed", key, f.device.tag, _label(f.device), e, f, fields))
    paired = {id(f) for f in pairs.values()}
    for key, f in b.items():
        if id(f) not in paired and _visible(f):
            changes.append(Change("added", key, f.device.tag, _label(f.device), None, f))
    changes.sort(key=_order)
    return changes


def _pairs(a: dict[str, Entry], b: dict[str, Entry]) -> dict[str, Entry]:
    """Each old entry's new entry: the one of its key; and an interface without a MAC address
    on one side (libvirt generates one) is, in document order, the next interface of its model
    the keys left unmatched on the other side."""
    pairs = {k: b[k] for k in a if k in b}
    left_a = [e for k, e in a.items() if k not in b and e.device.tag == "interface"]
    left_b = [f for k, f in b.items() if k not in a and f.device.tag == "interface"]
    for e in left_a:
        for f in left_b:
            if (not e.device.attrs.get("mac") or not f.device.attrs.get("mac")) \
                    and e.fields["model"] == f.fields["model"]:
                pairs[e.key] = f
                left_b.remove(f)
                break
    return pairs


def _visible(e: Entry) -> bool:
    """On PCI: has a PCI address, or is a PCI controller (roots have no address)."""
    d = e.device
    return e.address is not None or (isinstance(d, Controller) and d.type == "pci")


def _label(d: Device) -> str:
    if isinstance(d, Controller) and d.type == "pci":
        return f"controller pci {d.index} {label(d)}"
    return label(d)


def _zpci(z: tuple[int | None, int | None] | None) -> str | None:
    if z is None:
        return None
    uid, fid = z
    return f"uid {uid if uid is not None else '-'} fid {fid if fid is not None else '-'}"


def _order(c: Change) -> tuple:
    a = c.new_address or c.old_address
    pci = c.key.startswith("controller pci ")
    where = (a.domain, a.bus, a.slot, a.function) if a is not None else (-1,) if pci else (1 << 20,)
    return (0 if pci else 1, where, c.key)


# ---- output ---------------------------------------------------------------------------------
def _addr(e: Entry | None) -> str:
    if e is None or e.address is None:
        d = e.device if e is not None else None
        return "root bus" if isinstance(d, Controller) and d.type == "pci" else "none"
    return str(e.address) + (" (multifunction)" if e.multifunction else "")


def _value(v: Any) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


def format_change(c: Change) -> str:
    where = {"moved": f"{_addr(c.old)} -> {_addr(c.new)}",
             "added": _addr(c.new), "removed": _addr(c.old),
             "changed": _addr(c.new)}[c.kind]
    text = f"{c.kind:<8} {c.label}: {where}"
    if c.fields:
        text += "; " + ", ".join(f"{n} {_value(x)} -> {_value(y)}" for n, (x, y) in c.fields.items())
    return text


def to_text(changes: list[Change]) -> str:
    if not changes:
        return "No guest-visible PCI change.\n"
    lines = [format_change(c) for c in changes]
    n = len(changes)
    lines.append(f"{n} guest-visible PCI change{'s' if n != 1 else ''}.")
    return "\n".join(lines) + "\n"


def _entry_data(e: Entry | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"address": str(e.address) if e.address is not None else None,
            "multifunction": e.multifunction,
            "line": e.device.line if e.device.ref is not None else None}


def _json_value(v: Any) -> Any:
    return v if v is None or isinstance(v, (bool, int, str)) else str(v)


def to_data(changes: list[Change], old_name: str | None = None, new_name: str | None = None) -> dict[str, Any]:
    """The changes as a JSON-ready document following ``schemas/diff-v1.json``."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "old": {"name": old_name},
        "new": {"name": new_name},
        "same": not changes,
        "changes": [{
            "change": c.kind,
            "key": c.key,
            "element": c.element,
            "label": c.label,
            "old": _entry_data(c.old),
            "new": _entry_data(c.new),
            "fields": {n: {"old": _json_value(x), "new": _json_value(y)} for n, (x, y) in c.fields.items()},
        } for c in changes],
    }
