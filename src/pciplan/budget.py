"""Budgets of a PCI domain that a plan can run out of: bus numbers and IO space.

* 256 bus numbers per PCI domain: every bridge, root port, switch port and
  expander bus takes one (the root takes bus 0).
* 64 KiB of IO port space, of which the first 4 KiB belong to legacy ISA
  devices; every bridge or port that forwards IO takes a 4 KiB window.  A
  conventional PCI bridge always forwards IO (the legacy devices behind it have
  IO BARs); a PCIe port does when a conventional PCI device sits below it, and
  firmware reserves a window for an empty hot-pluggable port.  A port whose
  window does not fit still works for PCIe and virtio 1.0 devices; a legacy
  device with an IO BAR behind it does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .connect import Connect
from .controllers import MODELS

if TYPE_CHECKING:
    from .planner import Plan

BUS_NUMBERS = 256
BUS_WARN_AT = 240
IO_SPACE = 64 * 1024
IO_WINDOW = 4 * 1024
IO_LEGACY = 4 * 1024
IO_WINDOWS = (IO_SPACE - IO_LEGACY) // IO_WINDOW


_PCI_DEVICE = int(Connect.PCI_DEVICE)


def io_windows(plan: "Plan") -> set[int]:
    """Indexes of the controllers that take an IO window."""
    ctrls = {c.index: c for c in plan.guest.controllers if c.type == "pci" and c.index is not None}
    parent: dict[int, int] = {}
    occupied: dict[int, bool] = {}
    legacy_below: set[int] = set()
    for d in plan.domain.devices:
        a = d.pci_address
        if a is None:
            continue
        occupied[a.bus] = True
        is_bridge = d.tag == "controller" and d.type == "pci"
        if is_bridge and getattr(d, "index", None) is not None:
            parent[d.index] = a.bus  # type: ignore[attr-defined]
        elif int(d.connect) & _PCI_DEVICE:  # (plain ints: an IntFlag & costs ~1 us a device)
            legacy_below.add(a.bus)
    windows: set[int] = set()
    for idx, c in ctrls.items():
        row = MODELS.get(c.model or "")
        if row is None or row.is_root or not row.io_window:
            continue
        needs = (not row.express or idx in legacy_below or
                 (not occupied.get(idx) and row.hotplug and c.target.get("hotplug") != "off"))
        if not needs:
            continue
        while idx in ctrls and idx not in windows:
            r = MODELS.get(ctrls[idx].model or "")
            if r is None or r.is_root:
                break
            windows.add(idx)
            idx = parent.get(idx, 0)
    return windows


def check(plan: "Plan") -> None:
    """Add a warning to the plan for every budget it exceeds or nearly exhausts."""
    buses = sum(1 for c in plan.guest.controllers if c.type == "pci")
    if buses > BUS_WARN_AT:
        plan.warnings.append(f"{buses} of {BUS_NUMBERS} PCI bus numbers are used; "
                             "few are left for more bridges or ports")
    n = len(io_windows(plan))
    if n > IO_WINDOWS:
        plan.warnings.append(f"{n} bridges/ports need a 4 KiB IO window but only {IO_WINDOWS} fit in "
                             "the 64 KiB IO space: legacy devices with IO BARs behind the others "
                             "will not work (PCIe and virtio 1.0 devices are fine)")
