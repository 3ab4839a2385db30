"""The PCI tree of a planned guest as the guest will see it: text, JSON data, Graphviz.

Pure functions, no I/O::

    data = tree.to_data(topology.build(plan), name="guest")   # JSON schema tree-v1
    print(tree.to_text(data))                                 # or to_lines() for styled text
    dot_source = tree.to_dot(data)

Every renderer works from the same ``to_data`` document (``schemas/tree-v1.json``,
described in docs/json.md), so the text, the JSON and the drawing never disagree.
"""

from __future__ import annotations

from typing import Any

from .address import PciAddress, parse_number
from .controllers import MODELS
from .budget import IO_LEGACY, IO_SPACE, IO_WINDOW, IO_WINDOWS
from .domain import Controller, Device
from .interfaces import parse_mac
from .sources import uuid_text
from .topology import BUS_NUMBERS, Bus, Function, Topology

FORMAT = "pciplan-tree"
VERSION = 1

#: (text, style) pieces of one output line; style is a name from ``STYLES`` or ""
Segment = tuple[str, str]
Line = list[Segment]

#: rich styles of the semantic names used in ``to_lines``
STYLES: dict[str, str] = {
    "title": "bold",
    "address": "cyan",
    "label": "",
    "bridge": "bold",
    "pcie": "green",
    "pci": "yellow",
    "hotplug": "green",
    "integrated": "magenta",
    "fixed": "dim",
    "added": "bold blue",
    "assigned": "blue",
    "bus": "dim",
    "chipset": "dim",
    "guide": "dim",
    "summary": "bold",
    "warn": "bold red",
}


# ---- what identifies a device ------------------------------------------------------
def source_name(src: dict[str, str]) -> str | None:
    """A host device's source in one normal form, whatever its spelling: a PCI address
    as ``dddd:bb:ss.f``, an mdev UUID as libvirt writes it back."""
    if not src:
        return None
    if "uuid" in src:
        return uuid_text(src["uuid"])
    try:
        return "%04x:%02x:%02x.%x" % tuple(parse_number(src.get(k, "0"))
                                           for k in ("domain", "bus", "slot", "function"))
    except ValueError:
        return ",".join(f"{k}={v}" for k, v in sorted(src.items()))


def mac_name(dev: Device) -> str | None:
    """An interface's MAC address as libvirt writes it back (``52:54:00:0a:0b:0c``, whatever
    the case and number of digits it was written with)."""
    mac = dev.attrs.get("mac")
    octets = parse_mac(mac) if mac else None
    return ":".join(f"{o:02x}" for o in octets) if octets else mac


def identity(dev: Device) -> dict[str, Any]:
    """The attributes that tell a device apart from its siblings (for views and diffs)."""
    if isinstance(dev, Controller):
        out: dict[str, Any] = {"type": dev.type, "index": dev.index, "model": dev.model,
                               "model_name": dev.model_name}
        return {k: v for k, v in out.items() if v is not None}
    out = {}
    if dev.tag == "disk":
        out = {"dev": dev.target.get("dev"), "bus": dev.bus}
        if dev.model:
            out["model"] = dev.model
    elif dev.tag == "interface":
        out = {"type": dev.type, "model": dev.model, "mac": mac_name(dev)}
        if dev.type == "hostdev":
            out["source"] = source_name(dev.source)
    elif dev.tag == "hostdev":
        out = {"type": dev.type, "source": source_name(dev.source)}
        if dev.model:
            out["model"] = dev.model
    else:
        out = {"type": dev.type, "model": dev.model}
        if dev.bus:
            out["bus"] = dev.bus
        if dev.tag == "video" and dev.attrs.get("primary"):
            out["primary"] = dev.attrs["primary"]
    return {k: v for k, v in out.items() if v is not None}


def label(dev: Device, primary_video: bool = False) -> str:
    """One short human name: ``disk vda (virtio)``, ``interface virtio 52:54:00:..``."""
    if isinstance(dev, Controller):
        if dev.type == "pci":
            name = dev.model or "pci"
            row = MODELS.get(dev.model or "")
            default_name = row.default_model_name if row is not None else None
            if dev.model_name and dev.model_name not in (dev.model, default_name):
                name += f" ({dev.model_name})"
            t = dev.target
            bits = [f"{k} {t[k]}" for k in ("chassisNr", "chassis", "port", "busNr", "index", "node")
                    if k in t]
            if t.get("hotplug") == "off":
                bits.append("hotplug off")
            return name + (f" [{', '.join(bits)}]" if bits else "")
        bits = [f"controller {dev.type}", str(dev.index) if dev.index is not None else ""]
        if dev.model:
            bits.append(dev.model)
        return " ".join(b for b in bits if b)
    tag = dev.tag
    if tag == "disk":
        name = f"disk {dev.target.get('dev', '?')} ({dev.bus or '?'}"
        return name + (f", {dev.model})" if dev.model else ")")
    if tag == "interface":
        bits = ["interface", dev.model or ("hostdev" if dev.type == "hostdev" else "default")]
        if dev.type == "hostdev" and dev.source:
            bits.append(f"host {source_name(dev.source)}")
        if dev.attrs.get("mac"):
            bits.append(mac_name(dev))
        return " ".join(bits)
    if tag == "hostdev":
        src = source_name(dev.source)
        bits = ["hostdev", dev.type or "pci"]
        if dev.model:
            bits.append(dev.model)
        if src:
            bits.append(src)
        return " ".join(bits)
    if tag == "video":
        return f"video {dev.model or 'default'}" + (" (primary)" if primary_video else "")
    if tag == "input":
        return f"input {dev.type or '?'} ({dev.bus or '?'}" + (f", {dev.model})" if dev.model else ")")
    if tag == "serial":
        return "serial pci-serial"
    bits = [tag]
    if dev.type and tag != "memballoon":
        bits.append(dev.type)
    if dev.model:
        bits.append(dev.model)
    return " ".join(bits)


# ---- the data document ------------------------------------------------------------------
def _addr(a: PciAddress) -> dict[str, Any]:
    return {"address": str(a), "domain": a.domain, "bus": a.bus, "slot": a.slot, "function": a.function}


def _primary_video(topo: Topology) -> Device | None:
    vids = [f.device for f in topo.functions if f.device.tag == "video"]
    prim = [v for v in vids if v.attrs.get("primary") == "yes"]
    return (prim or vids or [None])[0]


def _bus_data(bus: Bus, topo: Topology, primary: Device | None) -> dict[str, Any]:
    c = bus.controller
    return {
        "index": bus.index,
        "model": bus.model.name,
        "model_name": c.model_name,
        "express": bus.express,
        "hotplug": bus.hotplug,
        "io_window": bus.index in topo.io_window_buses,
        "slots": {"first": bus.model.min_slot, "last": bus.model.max_slot},
        "free_slots": bus.free_slots(),
        "hotplug_free_slots": bus.hotplug_slots(),
        "functions": [_function_data(f, topo, primary) for f in bus.functions],
    }


def _function_data(fn: Function, topo: Topology, primary: Device | None) -> dict[str, Any]:
    d = fn.device
    bus = fn.bus
    out: dict[str, Any] = _addr(fn.address)
    mf = d.address.multifunction if d.address is not None else None
    out.update({
        "multifunction": mf == "on",
        "element": d.tag,
        "label": label(d, d is primary),
        "identity": identity(d),
        "express": fn.express,
        "hotpluggable": fn.hotpluggable,
        "integrated": bool(bus is not None and bus.is_root and bus.express and not fn.is_bridge),
        "added": fn.added,
        "assigned": fn.assigned,
        "line": d.line if not fn.added else None,
        "child": _bus_data(fn.child, topo, primary) if fn.child is not None else None,
    })
    return out


def to_data(topo: Topology, name: str | None = None) -> dict[str, Any]:
    """The tree as a JSON-ready document following ``schemas/tree-v1.json``."""
    primary = _primary_video(topo)
    roots = [_bus_data(b, topo, primary) for b in topo.roots]
    added = sum(1 for f in topo.functions if f.added)
    assigned = sum(1 for f in topo.functions if f.assigned)
    windows = topo.io_windows()
    return {
        "format": FORMAT,
        "version": VERSION,
        "domain": {
            "name": name,
            "arch": topo.arch,
            "machine": topo.machine_type,
            "family": topo.machine.family if topo.machine is not None else None,
            "express": topo.express,
        },
        "planned": added == 0 and assigned == 0,
        "roots": roots,
        "chipset": [{"address": str(a), "name": n} for a, n in topo.chipset],
        "summary": {
            "functions": len(topo.functions),
            "added": added,
            "assigned": assigned,
            "bus_numbers": {"used": topo.bus_numbers_used(), "total": BUS_NUMBERS},
            "io_windows": {"used": windows, "available": IO_WINDOWS, "window_bytes": IO_WINDOW,
                           "used_bytes": windows * IO_WINDOW, "space_bytes": IO_SPACE,
                           "legacy_bytes": IO_LEGACY},
            "hotplug_free_slots": len(topo.hotplug_ports()),
        },
    }


# ---- text ------------------------------------------------------------------------------
def _ranges(slots: list[int]) -> str:
    out: list[str] = []
    i = 0
    while i < len(slots):
        j = i
        while j + 1 < len(slots) and slots[j + 1] == slots[j] + 1:
            j += 1
        out.append(f"{slots[i]:02x}" if i == j else f"{slots[i]:02x}-{slots[j]:02x}")
        i = j + 1
    return ",".join(out)


def _free_text(bus: dict[str, Any]) -> str:
    free = bus["free_slots"]
    ports = bus["slots"]["first"] == bus["slots"]["last"]
    if ports:
        return "empty port" if free else "port in use"
    if not free:
        return "no free slot"
    n = len(free)
    return f"{n} free slot{'s' if n != 1 else ''} ({_ranges(free)})"


def _bus_segments(bus: dict[str, Any]) -> Line:
    kind = "PCIe" if bus["express"] else "PCI"
    hp = "hot-plug" if bus["hotplug"] else "no hot-plug"
    if not bus["functions"] and bus["hotplug_free_slots"] and bus["slots"]["first"] == bus["slots"]["last"]:
        hp = "hot-plug"
    text = f"bus {bus['index']:02x}: {kind}, {hp}, {_free_text(bus)}"
    if bus["io_window"]:
        text += ", IO window"
    return [(text, "bus")]


def _fn_columns(fn: dict[str, Any]) -> tuple[Segment, Segment, list[Segment]]:
    kind = ("PCIe", "pcie") if fn["express"] else ("PCI", "pci")
    if fn["integrated"]:
        hp = ("integrated", "integrated")
    elif fn["hotpluggable"]:
        hp = ("hot-plug", "hotplug")
    else:
        hp = ("no hot-plug", "fixed")
    marks: list[Segment] = []
    if fn["added"]:
        marks.append(("+added", "added"))
    elif fn["assigned"]:
        marks.append(("*placed", "assigned"))
    return kind, hp, marks


def to_lines(data: dict[str, Any], ascii: bool = False) -> list[Line]:
    """The tree as lines of styled segments (``to_text`` joins them)."""
    tee, last, pipe, blank = ("|-- ", "`-- ", "|   ", "    ") if ascii else ("├── ", "└── ", "│   ", "    ")
    dot = "-" if ascii else "·"
    rows: list[tuple[str, dict[str, Any] | None, Line]] = []  # (prefix, fn, segments)

    def walk(bus: dict[str, Any], prefix: str, chipset: list[dict[str, Any]]) -> None:
        items: list[tuple[str, Any]] = [("fn", f) for f in bus["functions"]]
        for c in chipset:
            items.append(("chip", c))
        items.sort(key=lambda it: it[1]["address"])
        for i, (kind, item) in enumerate(items):
            end = i == len(items) - 1
            branch = prefix + (last if end else tee)
            below = prefix + (blank if end else pipe)
            if kind == "chip":
                rows.append((branch, None, [(item["address"], "chipset"), ("  " + item["name"] + " (chipset)", "chipset")]))
                continue
            rows.append((branch, item, []))
            child = item["child"]
            if child is not None:
                rows.append((below, None, _bus_segments(child)))
                walk(child, below, [])

    for root in data["roots"]:
        segs = _bus_segments(root)
        rows.append(("", None, [(f"{root['model']} ", "bridge"), segs[0]]))
        chips = [c for c in data["chipset"] if c["address"].startswith(f"0000:{root['index']:02x}:")
                 and not c["address"].endswith(":00.0")] if root["index"] == 0 else []
        walk(root, "", chips)

    width = max((len(p) + len(f["address"]) + 2 + len(f["label"]) for p, f, _ in rows if f), default=0)
    lines: list[Line] = []
    d = data["domain"]
    title = f"{d['name'] or 'domain'}: {d['arch']} {d['machine']}"
    kind = ("PCI Express machine" if d["express"] else "conventional PCI machine" if data["roots"]
            else "no PCI bus on this machine")
    lines.append([(title, "title"), (f" ({kind})", "")])
    for prefix, fn, segs in rows:
        line: Line = [(prefix, "guide")] if prefix else []
        if fn is None:
            line.extend(s for s in segs if s[0])
        else:
            kind, hp, marks = _fn_columns(fn)
            body = len(prefix) + len(fn["address"]) + 2 + len(fn["label"])
            line += [(fn["address"], "address"), ("  ", ""),
                     (fn["label"], "bridge" if fn["child"] is not None else "label"),
                     (" " * (width - body + 2), ""), (f"{kind[0]:<4}", kind[1]), ("  ", ""), hp]
            for m in marks:
                line += [("  ", ""), m]
        lines.append(line)
    s = data["summary"]
    bn, io = s["bus_numbers"], s["io_windows"]
    hp = s["hotplug_free_slots"]
    lines.append([])
    summary: Line = [
        ("Summary: ", "summary"),
        (f"{bn['used']} of {bn['total']} bus numbers", "warn" if bn["used"] > 240 else ""),
        (f" {dot} ", ""),
        (f"{io['used']} IO window{'s' if io['used'] != 1 else ''} ({io['used_bytes'] // 1024} KiB) "
         f"of the {io['space_bytes'] // 1024} KiB IO space ({io['available']} fit)",
         "warn" if io["used"] > io["available"] else ""),
        (f" {dot} ", ""),
        (f"{hp} free hot-pluggable slot{'s' if hp != 1 else ''}", "warn" if hp == 0 else ""),
    ]
    lines.append(summary)
    if s["added"] or s["assigned"]:
        lines.append([("Planned in memory: ", ""),
                      (f"+added = {s['added']} controller(s)/device(s) pciplan added", "added"),
                      (", ", ""),
                      (f"*placed = {s['assigned']} address(es) pciplan chose", "assigned")])
    return lines


def to_text(data: dict[str, Any], ascii: bool = False) -> str:
    return "\n".join("".join(t for t, _ in line) for line in to_lines(data, ascii)) + "\n"


# ---- Graphviz ---------------------------------------------------------------------------------
def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def node_id(address: str) -> str:
    """The Graphviz node name of the function at ``address`` (``fn_0000_00_02_0``)."""
    return "fn_" + address.replace(":", "_").replace(".", "_")


def to_dot(data: dict[str, Any]) -> str:
    """A Graphviz digraph: one node per root bus and per PCI function, edges down the tree."""
    d = data["domain"]
    out = ["digraph pci {",
           f"  graph [rankdir=LR, fontname=\"Helvetica\", label={_q((d['name'] or 'domain') + ': ' + d['arch'] + ' ' + d['machine'])}, labelloc=t];",
           "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];",
           "  edge [arrowsize=0.6];"]

    def bus_text(bus: dict[str, Any]) -> str:
        kind = "PCIe" if bus["express"] else "PCI"
        hp = "hot-plug" if bus["hotplug"] else "no hot-plug"
        return f"bus {bus['index']:02x} ({kind}, {hp})\\n{_free_text(bus)}"

    def walk(bus: dict[str, Any], parent: str) -> None:
        for fn in bus["functions"]:
            nid = node_id(fn["address"])
            kind = "PCIe" if fn["express"] else "PCI"
            hp = "integrated" if fn["integrated"] else "hot-plug" if fn["hotpluggable"] else "no hot-plug"
            text = f"{fn['address']}\n{fn['label']}\n{kind}, {hp}"
            if fn["added"]:
                text += ", added"
            elif fn["assigned"]:
                text += ", placed"
            if fn["child"] is not None:
                text += "\n" + bus_text(fn["child"]).replace("\\n", "\n")
            color = "#d8ecd8" if fn["express"] else "#f5e6c4"
            if fn["child"] is not None:
                color = "#dde6f5"
            style = ', penwidth=2, color="#2850a0"' if fn["added"] else ""
            out.append(f"  {nid} [label={_q(text)}, fillcolor=\"{color}\"{style}];")
            out.append(f"  {parent} -> {nid};")
            if fn["child"] is not None:
                walk(fn["child"], nid)

    for root in data["roots"]:
        rid = f"bus_{root['index']}"
        out.append(f"  {rid} [label={_q(root['model'] + chr(10) + bus_text(root).replace(chr(92) + 'n', chr(10)))}, "
                   "shape=box, style=filled, fillcolor=\"#cccccc\"];")
        walk(root, rid)
        if root["index"] == 0:
            for c in data["chipset"]:
                if c["address"].endswith(":00.0"):
                    continue
                nid = node_id(c["address"])
                out.append(f"  {nid} [label={_q(c['address'] + chr(10) + c['name'] + ' (chipset)')}, "
                           "style=\"rounded,dashed\"];")
                out.append(f"  {rid} -> {nid} [style=dashed];")
    out.append(f"  summary [shape=note, style=filled, fillcolor=\"#ffffff\", label={_q(summary_text(data))}];")
    out.append("}")
    return "\n".join(out) + "\n"


def summary_text(data: dict[str, Any]) -> str:
    s = data["summary"]
    bn, io = s["bus_numbers"], s["io_windows"]
    return (f"{bn['used']} of {bn['total']} bus numbers\n"
            f"{io['used']} IO windows ({io['used_bytes'] // 1024} KiB of {io['space_bytes'] // 1024} KiB, {io['available']} fit)\n"
            f"{s['hotplug_free_slots']} free hot-pluggable slots")

