"""Compare what the guest enumerated with the plan.

The plan addresses functions by *bus index* (the PCI controller's index);
the guest by *bus number*, which firmware or Linux assign depth-first.  The
map between the two is read from the guest itself: plan bus 0 is guest bus
0; a planned bridge found at its planned place gives its plan bus the
secondary bus number the guest programmed into it; an expander (pxb,
pxb-pcie) roots its bus at the ``busNr`` the plan gave it.  Walking from the
root, every planned function then has one guest address where it must be.

Checks per planned function: something is there, its vendor:device is one of
the IDs of the QEMU device the plan's ``-device`` names (``drivers.KINDS``),
and — for every virtio function and every PCI Express endpoint — the driver
bound to it uses MSI-X.  Functions the guest shows that the plan does not
have (besides the chipset's own) are reported too.

What the guest cannot show is not held against the plan, and said so in its row:
functions in a slot without function 0 and what is behind them (guests skip such a
slot: ``pciplan check`` warns of it), the interrupt mode of devices behind a
virtio-iommu (the guest kernels have no driver for it), and INTx where the guest
ran out of MSI vectors (GICv2m has 64) while others got MSI-X.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..address import PciAddress
from ..qemuargs import QemuConfig
from ..topology import Topology
from . import drivers
from .report import GuestAddr, GuestDev, GuestReport, fmt

OK = "ok"


@dataclass
class Expect:
    """One planned function, as QEMU realises it."""

    address: PciAddress            # the plan's (bus = plan bus index)
    driver: str                    # QEMU device model
    element: str                   # what it is in the XML
    kind: drivers.Kind | None
    #: the plan bus index this function provides (bridges, expanders)
    provides: int | None = None
    #: a stand-in for a device that needs host hardware (what it stands in for)
    stand_in_for: str | None = None
    express: bool = False
    bridge: bool = False
    #: QEMU creates it by itself (chipset function)
    fixed: bool = False
    props: dict[str, str] = field(default_factory=dict)

    @property
    def virtio(self) -> bool:
        return bool(self.kind and self.kind.virtio) or self.driver.startswith(("virtio-", "vhost-"))

    @property
    def needs_msix(self) -> bool:
        """Must end up on MSI-X: every virtio function and every PCI Express endpoint."""
        if self.bridge or (self.kind is not None and (self.kind.bridge or self.kind.expander)):
            return False
        return self.virtio or self.express


def expectations(cfg: QemuConfig) -> list[Expect]:
    out: list[Expect] = []
    for d in cfg.devices:
        if d.address is None:
            continue   # a pseries PHB: no PCI address
        fn = d.function
        kind = drivers.kind(d.driver)
        out.append(Expect(d.address, d.driver, d.element, kind, d.provides, d.stand_in_for,
                          express=bool(fn is not None and fn.express),
                          bridge=bool(fn is not None and fn.is_bridge) or bool(kind and kind.bridge),
                          props=dict(d.props)))
    for f in cfg.fixed:
        fn = f.function
        out.append(Expect(f.address, f.driver, f.element, drivers.kind(f.driver), None, None,
                          express=bool(fn is not None and fn.express), fixed=True))
    out.sort(key=lambda e: e.address)
    return out


def driver_modules(exps: list[Expect]) -> list[str]:
    """The Linux driver modules the planned devices need, in a stable order."""
    mods: list[str] = []
    for e in exps:
        if e.kind is not None:
            for m in e.kind.modules:
                if m not in mods:
                    mods.append(m)
    return mods


@dataclass
class Row:
    """One planned function in the report."""

    expect: Expect
    #: where the guest must show it (None: its bus was not found in the guest)
    guest_addr: GuestAddr | None
    seen: GuestDev | None
    status: str                     # "ok" or what is wrong
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Result:
    rows: list[Row] = field(default_factory=list)
    #: guest functions the plan does not have (not the chipset's)
    unexpected: list[GuestDev] = field(default_factory=list)
    #: chipset functions the plan does not list (host bridge, ISA bridge, SMBus...)
    chipset: list[tuple[GuestDev, str]] = field(default_factory=list)
    #: plan bus index -> guest bus number
    bus_map: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unexpected and all(r.ok for r in self.rows)

    def vectors_exhausted(self) -> bool:
        """Some functions got MSI-X and others, which have the capability, fell back to INTx:
        the guest most likely ran out of MSI vectors (one vCPU; GICv2m has 64)."""
        on = any(r.seen is not None and r.seen.mode == "MSI-X" and r.expect.needs_msix for r in self.rows)
        off = any(r.seen is not None and r.seen.mode == "INTx" and r.seen.caps.msix and r.expect.needs_msix
                  for r in self.rows)
        return on and off

    def msi_vectors(self) -> int:
        return sum(d.msi + d.msix for d in (r.seen for r in self.rows) if d is not None)

    def failures(self) -> list[str]:
        out = list(self.problems)
        for r in self.rows:
            for p in r.problems:
                out.append(f"{r.expect.element} ({r.expect.driver}) planned at {r.expect.address}: {p}")
        for d in self.unexpected:
            out.append(f"guest has {d.ids} at {fmt(d.addr)}, which the plan does not have")
        return out


def compare(topo: Topology, cfg: QemuConfig, guest: GuestReport) -> Result:
    res = Result()
    if not guest.complete:
        res.problems.append("the guest did not finish its report")
    exps = expectations(cfg)
    by_bus: dict[int, list[Expect]] = {}
    for e in exps:
        by_bus.setdefault(e.address.bus, []).append(e)

    # plan bus index -> guest bus number, walking from the roots
    bus_map: dict[int, int] = {}
    internal: dict[GuestAddr, Expect] = {}
    for b in topo.roots:
        if b.index == 0:
            bus_map[0] = 0
    todo = sorted(bus_map)
    done: set[int] = set()
    while todo:
        idx = todo.pop(0)
        if idx in done:
            continue
        done.add(idx)
        for e in by_bus.get(idx, []):
            if e.provides is None:
                continue
            if e.kind is not None and e.kind.expander:
                nr = e.props.get("bus_nr")
                if nr is None:
                    continue
                root = int(nr, 0)
                if e.driver == "pxb":
                    # QEMU's conventional expander puts a pci-bridge of its own at <busNr>:00.0;
                    # the devices the plan puts on the expander's bus are behind it
                    inner = guest.at((e.address.domain, root, 0, 0))
                    if inner is not None and inner.secondary:
                        internal[inner.addr] = e
                        root = inner.secondary
                bus_map[e.provides] = root
                todo.append(e.provides)
                continue
            a = e.address
            d = guest.at((a.domain, bus_map[idx], a.slot, a.function))
            if d is not None and d.secondary is not None and d.secondary > 0:
                bus_map[e.provides] = d.secondary
                todo.append(e.provides)
    res.bus_map = bus_map

    no_fn0, hidden = unseen_by_guests(exps)
    iommu = any(e.driver == VIRTIO_IOMMU for e in exps)
    claimed: set[GuestAddr] = set()
    for e in exps:
        a = e.address
        gbus = bus_map.get(a.bus)
        if gbus is None:
            if a.bus in hidden:
                res.rows.append(Row(e, None, None, UNSEEN_BEHIND))
                continue
            res.rows.append(Row(e, None, None, "bus not found",
                                [f"plan bus {a.bus} was not found in the guest (its bridge is missing "
                                 f"or not where planned)"]))
            continue
        ga: GuestAddr = (a.domain, gbus, a.slot, a.function)
        seen = guest.at(ga)
        row = Row(e, ga, seen, OK)
        if seen is None and (a.bus, a.slot) in no_fn0:
            row.status = UNSEEN_NO_FN0
        elif seen is None:
            row.problems.append(f"nothing at guest address {fmt(ga)}")
            row.status = "missing"
            where = _find_elsewhere(e, guest, claimed)
            if where:
                row.problems[-1] += f" (a {where.ids} is at {fmt(where.addr)})"
        else:
            claimed.add(ga)
            _check_seen(e, seen, row, iommu)
        res.rows.append(row)
    if res.vectors_exhausted():
        for row in res.rows:
            if row.status == INTX_NOT_MSIX:  # (the guest's limit, not the placement's)
                row.status, row.problems = "INTx (MSI vectors exhausted)", []

    for ga, d in sorted(guest.devices.items()):
        if ga in claimed:
            continue
        name = drivers.chipset_name(ga[2], ga[3], d.vendor, d.device) if ga[:2] == (0, 0) else None
        if ga in internal:
            name = f"pci-bridge inside the {internal[ga].driver} at {internal[ga].address}"
        if name is not None:
            res.chipset.append((d, name))
            continue
        res.unexpected.append(d)
    return res


def _find_elsewhere(e: Expect, guest: GuestReport, claimed: set[GuestAddr]) -> GuestDev | None:
    if e.kind is None or not e.kind.ids:
        return None
    for ga, d in sorted(guest.devices.items()):
        if ga not in claimed and (d.vendor, d.device) in e.kind.ids:
            return d
    return None


#: QEMU's virtio-iommu; Debian 12's kernels are built without its driver
#: (``# CONFIG_VIRTIO_IOMMU is not set``), so the devices it translates are never bound
VIRTIO_IOMMU = "virtio-iommu-pci"
UNSEEN_NO_FN0 = "unseen: no function 0"
UNSEEN_BEHIND = "unseen: behind a slot without function 0"
INTX_NOT_MSIX = "INTx not MSI-X"


def unseen_by_guests(exps: list[Expect]) -> tuple[set[tuple[int, int]], set[int]]:
    """The planned (bus, slot)s without a function 0, and the plan buses behind them: a guest
    probes function 0 of a slot first and skips the slot when it is absent (what ``pciplan
    check`` warns of as MULTIFUNCTION-NO-FUNCTION0), so what is there is not expected in it."""
    slots = {(e.address.bus, e.address.slot) for e in exps}
    no_fn0 = slots - {(e.address.bus, e.address.slot) for e in exps if e.address.function == 0}
    hidden: set[int] = set()
    grew = True
    while grew:
        grew = False
        for e in exps:
            a = e.address
            if e.provides is not None and e.provides not in hidden and \
                    ((a.bus, a.slot) in no_fn0 or a.bus in hidden):
                hidden.add(e.provides)
                grew = True
    return no_fn0, hidden


def _check_seen(e: Expect, seen: GuestDev, row: Row, iommu: bool = False) -> None:
    k = e.kind
    if k is not None and k.ids and (seen.vendor, seen.device) not in k.ids:
        want = " or ".join(f"{v:04x}:{d:04x}" for v, d in k.ids)
        row.problems.append(f"guest has {seen.ids} there, a {e.driver} is {want}")
        row.status = "wrong device"
        return
    if k is None:
        row.status = "ok (IDs unchecked)"
    if not e.needs_msix:
        return
    if seen.mode == "MSI-X":
        return
    if seen.mode == "unbound" and iommu:
        row.status = "unbound (behind virtio-iommu, no driver in this kernel)"
    elif seen.mode == "unbound":
        row.problems.append("no guest driver bound, its interrupt mode is unknown")
        row.status = "no driver"
    elif seen.mode == "none" and not seen.has_interrupt:
        row.status = "ok (no interrupt)"
    elif seen.config and not seen.caps.msix:
        # QEMU's model of this device has no MSI-X capability at all (virtio-balloon-pci,
        # bochs-display...): no placement can give it MSI-X, so it is not held against the plan
        row.status = f"ok ({seen.mode}: no MSI-X cap)"
    else:
        row.problems.append(f"uses {seen.mode}, not MSI-X, although it has an MSI-X capability")
        row.status = INTX_NOT_MSIX if seen.mode == "INTx" else f"{seen.mode} not MSI-X"
