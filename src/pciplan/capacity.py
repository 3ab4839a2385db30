"""``--capacity max``: plan past libvirt's limits, up to the 256 PCI bus numbers.

libvirt gives up when it needs a new pcie-root-port and the root bus has no
function left (237 virtio NICs on q35), or when a new pci-bridge finds
no free slot (pc).  This module does not change libvirt's algorithm: it writes
the controllers a larger guest needs *into the domain* as if the user had, and
lets the planner place everything as libvirt would:

* PCIe machines: one root port per endpoint while root-bus functions last,
  then PCIe switches (a root port, an upstream port and up to 32 downstream
  ports), plus a pcie-to-pci-bridge and nested pci-bridges for legacy devices;
* pc: enough pci-bridges (libvirt nests them once the root bus is full).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .address import SLOT_LAST
from .connect import Connect
from .errors import CapacityError

if TYPE_CHECKING:
    from .defaults import Guest
    from .planner import Options

MAX_BUSES = 256
SWITCH_PORTS = 32
BRIDGE_SLOTS = 31          # slots 1..31 of a pci-bridge / pcie-to-pci-bridge
PORTS_PER_SLOT = 8         # root ports aggregate 8 functions per slot


def _demand(guest: "Guest", options: "Options") -> tuple[int, int, set[int]]:
    """(PCIe-class endpoints, conventional endpoints, root-bus slots already taken)."""
    from .planner import Assigner, wanted

    a = Assigner(guest, options)
    pcie = legacy = 0
    taken: set[int] = set()
    for d in guest.domain.devices:
        if d.tag == "controller" and d.type == "pci":
            continue
        flags = a.flags(d)
        a_ = d.pci_address
        if a_ is not None and not a_.is_empty and a_.bus == 0:
            taken.add(a_.slot)
        if not flags or not wanted(d):
            continue
        if flags & Connect.PCIE_DEVICE:
            pcie += 1
        elif flags & Connect.PCI_DEVICE:
            legacy += 1
    chip = guest.machine.chipset_slots
    if chip is not None:
        # root-bus slots the chipset keeps for itself (q35: LPC/SATA/SMBus at 1f; i440fx:
        # PIIX3 at 01) or usually gives away (machines.ChipsetSlots)
        taken |= chip.function_slots
        if chip.hda_slot is not None and any(d.model == "ich9" for d in guest.devices("sound")):
            taken.add(chip.hda_slot)
        if chip.uhci1_slots:
            uhci1 = sum(1 for c in guest.controllers if c.type == "usb" and c.model == "ich9-uhci1")
            taken.update(chip.uhci1_slots[:uhci1])
        if chip.dmi_to_pci_bridge_slot is not None and any(
                c.type == "pci" and c.model == "dmi-to-pci-bridge" for c in guest.controllers):
            taken.add(chip.dmi_to_pci_bridge_slot)
        vids = guest.videos()
        if vids and vids[0].model not in ("none", "ramfb"):
            taken.add(chip.video_slot)
    return pcie, legacy, taken


def expand(guest: "Guest", options: "Options", margin: int = 0) -> None:
    """Add the controllers a guest needs to hold all its devices (see module doc)."""
    pcie, legacy, taken = _demand(guest, options)
    used_idx = {c.index for c in guest.controllers if c.type == "pci" and c.index is not None}
    next_idx = max(used_idx, default=0) + 1
    added: list[str] = []
    root = guest.find_controller("pci", 0)
    root_model = root.model if root is not None else None
    if root_model == "pcie-root":
        free_slots = SLOT_LAST - len(taken - {0})
        direct = free_slots * PORTS_PER_SLOT
        ports = pcie + (1 if legacy else 0) + margin
        switches = max(0, math.ceil((ports - direct) / (SWITCH_PORTS - 1)))
        direct_used = min(ports, direct - switches)
        downstream = ports - direct_used
        added += ["pcie-root-port"] * direct_used
        for i in range(switches):
            n = min(SWITCH_PORTS, downstream - i * SWITCH_PORTS)
            added += ["pcie-root-port", "pcie-switch-upstream-port"] + ["pcie-switch-downstream-port"] * n
        if legacy:
            added.append("pcie-to-pci-bridge")
            extra = max(0, math.ceil((legacy - BRIDGE_SLOTS) / (BRIDGE_SLOTS - 1)))
            added += ["pci-bridge"] * extra
    elif root_model == "pci-root" and not guest.machine.multiple_roots:
        free = SLOT_LAST - len(taken - {0})
        need = legacy + pcie + 1 + margin  # libvirt keeps one root slot spare
        bridges = max(0, math.ceil((need - free) / (BRIDGE_SLOTS - 1)))
        added += ["pci-bridge"] * bridges
    else:
        raise CapacityError("--capacity max is not available for this machine type", "devices")
    if next_idx + len(added) > MAX_BUSES:
        raise CapacityError(f"the guest needs {next_idx + len(added)} PCI buses, more than the "
                            f"{MAX_BUSES} bus numbers a PCI domain has", "devices")
    for model in added:
        guest.add_controller("pci", next_idx, model, "capacity")
        next_idx += 1
