"""Lint a domain's PCI layout: what libvirt refuses (errors) and what it accepts but
a user probably does not want (warnings).  Changes nothing.

``check(data)`` plans the document in memory and returns a ``Report``.  Every
finding has a stable ``code``, a ``severity``, the ``element`` it is about, a
one-line ``message``, ``why`` it matters and how to ``fix`` it.

Errors (exit status 1): everything ``pciplan plan`` would refuse:

* ``INVALID-XML``   a value libvirt 9.0 rejects,
* ``UNSUPPORTED``   valid, but not on this machine type / QEMU,
* ``NO-ROOM``       no free slot, port or bus number is left for a device,
* ``LAYOUT``        the addresses written cannot be laid out (clash, wrong bus kind...).

Warnings (exit status 0, 1 with ``--strict``):

* ``PCIE-ON-LEGACY``          a PCI Express endpoint on a conventional PCI bus of a PCIe machine,
* ``VIRTIO-ON-LEGACY``        a virtio device on a conventional PCI bus of a PCIe machine (stays transitional),
* ``X86-ONLY-CONTROLLER``     i82801b11-bridge, ioh3420, x3130-upstream, xio3130-downstream on a non-x86 guest,
* ``NIC-MODEL``               a NIC model QEMU has no PCI device for (the guest does not start),
* ``ENDPOINT-ON-ROOT``        a device directly on pcie-root (integrated: never hot-pluggable),
* ``NO-HOTPLUG-SLOT``         no empty hot-pluggable slot or port is left (pc: root-bus slots count with ACPI only),
* ``IO-SPACE``                more bridges/ports need a 4 KiB IO window than the 64 KiB IO space holds,
* ``BUS-NUMBERS``             close to the 256 PCI bus numbers,
* ``MULTIFUNCTION-NO-FUNCTION0``  functions in a slot without function 0,
* ``MULTIFUNCTION-OFF``       function 0 of a shared slot says multifunction='off',
* ``MULTIFUNCTION-IMPLICIT``  a slot written with several functions, function 0 without multifunction='on'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import api, budget, devices, topology, xmlio
from .address import PciAddress
from .connect import Connect
from .domain import Controller, Device
from .errors import CapacityError, HostError, PlanError
from .machines import X86
from .planner import Options, Plan
from .tree import label

FORMAT = "pciplan-check"
VERSION = 1

ERROR = "error"
WARNING = "warning"

#: controller QEMU devices modelled on x86 chipset parts
X86_ONLY_MODEL_NAMES: dict[str, tuple[str, str]] = {
    "i82801b11-bridge": (
        "it emulates the DMI-to-PCI bridge of Intel's ICH9 (the x86 Q35 chipset); only x86 "
        "guests are built and tested against it, and it provides a conventional PCI bus without "
        "hot-plug",
        "for conventional PCI devices use a pcie-to-pci-bridge behind a pcie-root-port (libvirt "
        "adds both by itself when a device needs conventional PCI): remove the dmi-to-pci-bridge "
        "and the addresses that point at it"),
    "ioh3420": (
        "it emulates the root port of Intel's X58 I/O hub, an x86 chipset part; QEMU's generic "
        "pcie-root-port does the same job on every architecture",
        "remove <model name='ioh3420'/> so libvirt uses the generic pcie-root-port"),
    "x3130-upstream": (
        "it emulates the upstream port of a TI XIO3130 PCIe switch, modelled and tested for x86 "
        "Q35 guests; there is no generic switch model",
        "use more pcie-root-ports instead of a switch: pcie-root has 31 slots and libvirt packs "
        "8 root ports into each"),
    "xio3130-downstream": (
        "it emulates a downstream port of a TI XIO3130 PCIe switch, modelled and tested for x86 "
        "Q35 guests; there is no generic switch model",
        "use pcie-root-ports instead of switch ports: pcie-root has 31 slots and libvirt packs "
        "8 root ports into each"),
}

_PLAN_ERRORS: dict[str, tuple[str, str]] = {
    "INVALID-XML": ("libvirt 9.0 refuses to define the domain as written",
                    "correct the value the message names"),
    "UNSUPPORTED": ("libvirt 9.0 refuses it as an unsupported configuration (for this machine "
                    "type, QEMU 7.2, or this combination of controllers)",
                    "change what the message names: remove the element or option, or pick a "
                    "machine type or model that supports it"),
    "NO-ROOM": ("libvirt 9.0 cannot find a free slot, port or bus number for a device",
                "add a pcie-root-port (PCIe machines) or pci-bridge (pc) per device, fix fewer "
                "addresses by hand, or let `pciplan plan --capacity max` add switches/bridges"),
    "LAYOUT": ("libvirt 9.0 cannot lay out the PCI addresses as written",
               "fix the address the message names, or remove it and let libvirt choose"),
}

#: an UNSUPPORTED error for what the host lacks (errors.HostError)
_HOST_ERROR = ("libvirt 9.0 refuses it on this host, which lacks what it needs (KVM for the guest's "
               "architecture, its emulator, swtpm, SEV, SGX, SPICE TLS turned on in qemu.conf)",
               "define it on a host that has it (or install swtpm, or set spice_tls = 1 in "
               "/etc/libvirt/qemu.conf); `--no-host-probe` checks the domain as for such a host")


@dataclass
class Finding:
    code: str
    severity: str
    #: the element it is about (libvirt-style description), None for the whole domain
    element: str | None
    message: str
    why: str
    fix: str
    line: int | None = None
    address: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "element": self.element,
                "line": self.line, "address": self.address, "message": self.message,
                "why": self.why, "fix": self.fix}


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    #: the domain's <name>
    name: str | None = None
    #: None when the document could not be planned
    plan: Plan | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def exit_status(self, strict: bool = False) -> int:
        if self.errors or (strict and self.warnings):
            return 1
        return 0


# ---- entry point ------------------------------------------------------------------------------
def check(data: str | bytes, options: Options | None = None) -> Report:
    """Check a domain document (planned with ``options``).  Raises ``InputError`` when it
    is not one."""
    try:
        doc = xmlio.load(data)  # InputError propagates
    except PlanError as err:  # a value refused while reading (negative index, arch...)
        return Report([_plan_error(err)])
    name = doc.tree.getroot().findtext("name")
    report = Report(name=name.strip() if name else None)
    try:
        written = xmlio.load(data).domain  # what the user wrote, before planning
        plan = api.plan_document(doc, options)
    except PlanError as err:
        report.findings.append(_plan_error(err))
        return report
    report.plan = plan
    topo = topology.build(plan)
    report.findings += legacy_buses(topo)
    report.findings += x86_only(plan)
    report.findings += nic_models(topo)
    report.findings += integrated(topo)
    report.findings += hotplug(topo)
    report.findings += budgets(topo)
    report.findings += multifunction(topo, written)
    return report


def _plan_error(err: PlanError) -> Finding:
    if isinstance(err, CapacityError):
        code = "NO-ROOM"
    else:
        code = {"xml": "INVALID-XML", "unsupported": "UNSUPPORTED"}.get(err.kind, "LAYOUT")
    why, fix = _HOST_ERROR if isinstance(err, HostError) else _PLAN_ERRORS[code]
    return Finding(code, ERROR, err.element, err.reason, why, fix, line=err.line)


def _at(fn: topology.Function, code: str, severity: str, message: str, why: str, fix: str) -> Finding:
    d = fn.device
    return Finding(code, severity, d.describe(), message, why, fix,
                   line=None if fn.added else d.line, address=str(fn.address))


# ---- PCIe devices on conventional PCI ----------------------------------------------------------------
_MOVE_TO_PORT = ("put it on a PCI Express port: remove its <address> and let libvirt place it "
                 "(it adds a pcie-root-port), or set bus= to the index of a free pcie-root-port "
                 "with slot='0x00'")


def legacy_buses(topo: topology.Topology) -> list[Finding]:
    if not topo.express:
        return []
    out: list[Finding] = []
    for fn in topo.functions:
        bus = fn.bus
        d = fn.device
        if fn.is_bridge or bus is None or bus.express or not (d.connect & Connect.PCIE_DEVICE):
            continue
        where = f"conventional PCI bus {bus.index:02x} ({bus.model.name})"
        if devices.classify(d) == devices.VIRTIO:
            out.append(_at(
                fn, "VIRTIO-ON-LEGACY", WARNING,
                f"virtio device {label(d)} is on {where}",
                "on a conventional bus QEMU keeps virtio transitional: no PCI Express capability "
                "and an extra legacy IO BAR, so the bridge above it must forward IO ports (a "
                "4 KiB window of the 64 KiB IO space), and legacy-only drivers may bind to it; a "
                "modern driver still uses it as virtio 1.x with MSI-X, as fast as on PCIe",
                _MOVE_TO_PORT + "; if you want a transitional device for an old guest, say "
                "model='virtio-transitional' to make that explicit"))
        else:
            extra = (" an assigned host device keeps working but its driver cannot see the "
                     "device's PCIe capabilities;" if d.tag in ("hostdev",) or d.type == "hostdev" else "")
            out.append(_at(
                fn, "PCIE-ON-LEGACY", WARNING,
                f"PCI Express device {label(d)} is on {where}",
                "QEMU drops the PCI Express capability on a conventional bus: the guest sees a "
                "plain PCI function with 256 bytes of config space, so PCIe extended capabilities "
                "(AER error reporting, ATS, ACS, SR-IOV, link speed/width) are gone;" + extra +
                " hot-plug goes through the bridge (none behind a dmi-to-pci-bridge) instead of "
                "native PCIe hot-plug; MSI and MSI-X still work",
                _MOVE_TO_PORT))
    return out


# ---- x86 chipset controllers elsewhere --------------------------------------------------------------
def x86_only(plan: Plan) -> list[Finding]:
    arch = plan.domain.arch
    if arch in X86:
        return []
    out: list[Finding] = []
    for c in plan.domain.controllers:
        if c.type != "pci":
            continue
        name = c.model_name or ("i82801b11-bridge" if c.model == "dmi-to-pci-bridge" else None)
        if name not in X86_ONLY_MODEL_NAMES:
            continue
        why, fix = X86_ONLY_MODEL_NAMES[name]
        out.append(Finding("X86-ONLY-CONTROLLER", WARNING, c.describe(),
                           f"{c.model} ({name}) is an x86 chipset device on this {arch} guest",
                           why, fix, line=c.line if c.ref is not None else None,
                           address=str(c.pci_address) if c.pci_address else None))
    return out


# ---- NIC models QEMU has no device for -----------------------------------------------------------------
def nic_models(topo: topology.Topology) -> list[Finding]:
    """NICs libvirt defines but QEMU cannot start: libvirt 9.0 passes a model it does not
    name itself on to QEMU as the device's name."""
    arch = topo.arch
    out: list[Finding] = []
    for fn in topo.functions:
        d = fn.device
        if d.tag != "interface":
            continue
        problem = devices.qemu_nic_problem(d, arch)
        if problem is None:
            continue
        message = (f"QEMU 7.2 has no NIC device named '{d.model}'" if problem == "unknown"
                   else f"QEMU 7.2's NIC device '{d.model}' is no PCI device")
        out.append(_at(
            fn, "NIC-MODEL", WARNING, message,
            "libvirt defines the guest, but passes the model on to QEMU as the name of the "
            "device, and QEMU refuses to start the guest (or to hot-plug the NIC)",
            "use a model QEMU has: virtio (fastest), e1000e or e1000 for guests without "
            "virtio drivers, rtl8139 for very old ones"))
    return out


# ---- integrated endpoints ------------------------------------------------------------------------------
def _chipset_like(fn: topology.Function, primary: Device | None) -> bool:
    """Devices that belong on the root bus, as on real hardware (libvirt puts them there)."""
    d = fn.device
    if d is primary or d.connect & Connect.INTEGRATED:
        return True
    if fn.bus is not None and fn.address.slot in fn.bus.reserved_slots:
        return True
    if isinstance(d, Controller):
        if d.type in ("sata", "ide"):
            return True
        if d.type == "usb" and (d.model or "").startswith("ich9-"):
            return True
    return False


def integrated(topo: topology.Topology) -> list[Finding]:
    out: list[Finding] = []
    vids = [f.device for f in topo.functions if f.device.tag == "video"]
    prim = [v for v in vids if v.attrs.get("primary") == "yes"]
    primary = (prim or vids or [None])[0]
    for root in topo.roots:
        if not root.express:
            continue
        for fn in root.functions:
            if fn.is_bridge or _chipset_like(fn, primary):
                continue
            out.append(_at(
                fn, "ENDPOINT-ON-ROOT", WARNING,
                f"{label(fn.device)} sits directly on pcie-root at {fn.address}",
                "a device on the PCI Express root bus is a root-complex integrated endpoint: it "
                "can never be hot-plugged or unplugged, and has no PCIe link or slot above it "
                "(on real machines only chipset parts live there)",
                "remove its <address> so libvirt puts it behind a pcie-root-port, or set bus= to "
                "the index of a free pcie-root-port with slot='0x00'"))
    return out


# ---- hot-plug headroom -------------------------------------------------------------------------------------
def hotplug(topo: topology.Topology) -> list[Finding]:
    m = topo.machine
    if m is None or not m.pci or not topo.roots or topo.hotplug_ports():
        return []
    if topo.express:
        fix = ("add an empty <controller type='pci' model='pcie-root-port'/> for each device you "
               "may hot-plug (or run `pciplan plan --hotplug-ports N`)")
    elif m.multiple_roots:
        fix = ("add a <controller type='pci' model='pci-root'/> (another PHB with 31 hot-pluggable "
               "slots), or run `pciplan plan --hotplug-ports N`")
    elif topo.roots[0].index == 0 and not topo.roots[0].hotplug and m.chipset == "i440fx":
        fix = ("add <features><acpi/></features> (QEMU hot-plugs into a pc guest's root bus through "
               "ACPI only), or a <controller type='pci' model='pci-bridge'/> (31 hot-pluggable slots)")
    else:
        fix = ("add a <controller type='pci' model='pci-bridge'/> (31 hot-pluggable slots), or run "
               "`pciplan plan --hotplug-ports N`")
    return [Finding("NO-HOTPLUG-SLOT", WARNING, None,
                    "no empty hot-pluggable PCI slot or port is left",
                    "PCI controllers cannot be hot-plugged, so a running guest has nowhere to take "
                    "another NIC, disk or host device: attaching one needs a shutdown", fix)]


# ---- budgets -----------------------------------------------------------------------------------------------
def budgets(topo: topology.Topology) -> list[Finding]:
    out: list[Finding] = []
    n = topo.io_windows()
    if n > budget.IO_WINDOWS:
        out.append(Finding(
            "IO-SPACE", WARNING, None,
            f"{n} bridges/ports need a 4 KiB IO window; only {budget.IO_WINDOWS} fit in the 64 KiB IO space",
            "firmware gives every bridge or port that forwards IO ports a 4 KiB window and the "
            "first 4 KiB belong to legacy ISA devices; the ports beyond the 15th get none, so a "
            "device behind them that needs IO ports (transitional virtio, e1000, rtl8139, VGA...) "
            "does not work and firmware logs resource errors; PCIe and modern virtio devices need "
            "no IO ports",
            "use fewer bridges/ports that need IO: group conventional PCI devices behind one "
            "pcie-to-pci-bridge, prefer virtio and PCIe devices, and set <target hotplug='off'/> "
            "on empty pcie-root-ports you will not hot-plug into"))
    used = topo.bus_numbers_used()
    if used > budget.BUS_WARN_AT:
        out.append(Finding(
            "BUS-NUMBERS", WARNING, None,
            f"{used} of {budget.BUS_NUMBERS} PCI bus numbers are used",
            "every bridge, port, switch port and expander bus takes one of the 256 bus numbers "
            "of the PCI domain, so few are left for more ports later",
            "remove bridges and ports you do not use (each empty port and each switch level "
            "costs a bus number)"))
    return out


# ---- multifunction -------------------------------------------------------------------------------------------
def multifunction(topo: topology.Topology, written: Any) -> list[Finding]:
    out: list[Finding] = []
    slots: dict[tuple[int, int, int], list[topology.Function]] = {}
    for fn in topo.functions:
        a = fn.address
        slots.setdefault((a.domain, a.bus, a.slot), []).append(fn)
    chip = {(a.domain, a.bus, a.slot, a.function) for a, _ in topo.chipset}
    isolated = topo.machine is not None and topo.machine.zpci  # s390 shows functions one by one
    for (dom, bus, slot), fns in sorted(slots.items()):
        fns.sort(key=lambda f: f.address.function)
        has0 = fns[0].address.function == 0 or (dom, bus, slot, 0) in chip
        if not has0 and not isolated:
            first = fns[0]
            out.append(_at(
                first, "MULTIFUNCTION-NO-FUNCTION0", WARNING,
                f"slot {dom:04x}:{bus:02x}:{slot:02x} has function(s) "
                f"{', '.join(str(f.address.function) for f in fns)} but no function 0",
                "guests probe function 0 of a slot first and skip the slot when it is absent, so "
                "these devices stay invisible to the guest although QEMU starts",
                "give one of them function='0x0' (with multifunction='on' when the slot keeps "
                "several functions), or move each to a slot of its own"))
            continue
        if len(fns) > 1 and fns[0].address.function == 0:
            f0 = fns[0]
            a = f0.device.address
            if a is not None and a.multifunction == "off":
                out.append(_at(
                    f0, "MULTIFUNCTION-OFF", WARNING,
                    f"{label(f0.device)} at {f0.address} says multifunction='off' but the slot has "
                    f"{len(fns)} functions",
                    "QEMU refuses to start the guest when function 0 is single-function and other "
                    "functions share its slot",
                    "set multifunction='on' on function 0's <address>, or move the other functions "
                    "to slots of their own"))
    # what the user wrote: several functions in one slot, function 0 without multifunction='on'
    written_slots: dict[tuple[int, int, int], list[Device]] = {}
    for d in written.devices:
        a = d.pci_address
        if a is None or a.is_empty:
            continue
        written_slots.setdefault((a.domain, a.bus, a.slot), []).append(d)
    for (dom, bus, slot), devs in sorted(written_slots.items()):
        funcs = {d.pci_address.function for d in devs if d.pci_address is not None}
        if len(funcs) < 2 or 0 not in funcs:
            continue
        f0 = next(d for d in devs if d.pci_address is not None and d.pci_address.function == 0)
        if f0.address is not None and f0.address.multifunction is None:
            out.append(Finding(
                "MULTIFUNCTION-IMPLICIT", WARNING, f0.describe(),
                f"slot {dom:04x}:{bus:02x}:{slot:02x} is written with {len(funcs)} functions but "
                "function 0 has no multifunction='on'",
                "libvirt 9.0 adds multifunction='on' by itself when it defines the domain, but the "
                "file as written declares a single-function device at function 0: another tool, "
                "an older libvirt or QEMU run by hand refuses it ('indicates single function')",
                "add multifunction='on' to the <address> of function 0",
                line=f0.line, address=str(PciAddress(dom, bus, slot, 0))))
    return out


# ---- output --------------------------------------------------------------------------------------------------
def to_data(report: Report, strict: bool = False, file: str | None = None) -> dict[str, Any]:
    """The report as a JSON-ready document following ``schemas/check-v1.json``
    (with ``file``, the path it was read from, when several files are checked)."""
    data: dict[str, Any] = {"file": file} if file is not None else {}
    return data | {
        "format": FORMAT,
        "version": VERSION,
        "name": report.name,
        "planned": report.plan is not None,
        "strict": strict,
        "exit_status": report.exit_status(strict),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "findings": [f.to_data() for f in report.findings],
    }


def to_text(report: Report, file: str | None = None) -> str:
    """The report as text; with ``file`` (several files checked), the finding and
    summary lines start with ``FILE: ``, as a compiler's or linter's do."""
    at = f"{file}: " if file is not None else ""
    lines: list[str] = []
    for f in report.findings:
        where = f.element or "domain"
        if f.line is not None:
            where += f" (line {f.line})"
        lines.append(f"{at}{f.severity}: {f.code}: {where}: {f.message}")
        lines.append(f"  why: {f.why}")
        lines.append(f"  fix: {f.fix}")
    if not report.findings:
        lines.append(f"{at}No problems found." if not at else f"{at}no problems found.")
    else:
        lines.append(at + counts(len(report.errors), len(report.warnings)) + ".")
    return "\n".join(lines) + "\n"


def counts(errors: int, warnings: int) -> str:
    """``1 error, 2 warnings``."""
    return f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
