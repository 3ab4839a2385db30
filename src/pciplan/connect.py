"""Connect flags: what a PCI function needs from the bus it plugs into, and what a bus offers.

The same flag set describes both sides.  A device carries the kind of thing it
*is* (a conventional PCI endpoint, a PCIe endpoint, a root port, ...) plus
placement hints; a bus carries every kind it *accepts* plus the hints it allows.
A device fits a bus when they share a kind bit (see ``addrset.fits``).
"""

from __future__ import annotations

from enum import IntFlag


class Connect(IntFlag):
    NONE = 0
    #: device: may be placed automatically; bus: allows automatic placement of endpoints
    AUTOASSIGN = 1 << 0
    #: device: needs hot-plug; bus: supports hot-plug
    HOTPLUGGABLE = 1 << 1
    #: device: must sit on bus 0 (an integrated endpoint of the root complex)
    INTEGRATED = 1 << 2
    #: device: several of its kind may share one slot as functions 0..7 (pcie-root-port)
    AGGREGATE_SLOT = 1 << 3
    # ---- kinds -------------------------------------------------------------
    PCI_DEVICE = 1 << 4
    PCIE_DEVICE = 1 << 5
    PCIE_ROOT_PORT = 1 << 6
    PCIE_SWITCH_UPSTREAM_PORT = 1 << 7
    PCIE_SWITCH_DOWNSTREAM_PORT = 1 << 8
    DMI_TO_PCI_BRIDGE = 1 << 9
    PCI_EXPANDER_BUS = 1 << 10
    PCIE_EXPANDER_BUS = 1 << 11
    PCI_BRIDGE = 1 << 12
    PCIE_TO_PCI_BRIDGE = 1 << 13


KINDS = (Connect.PCI_DEVICE | Connect.PCIE_DEVICE | Connect.PCIE_ROOT_PORT
         | Connect.PCIE_SWITCH_UPSTREAM_PORT | Connect.PCIE_SWITCH_DOWNSTREAM_PORT
         | Connect.DMI_TO_PCI_BRIDGE | Connect.PCI_EXPANDER_BUS | Connect.PCIE_EXPANDER_BUS
         | Connect.PCI_BRIDGE | Connect.PCIE_TO_PCI_BRIDGE)
ENDPOINTS = Connect.PCI_DEVICE | Connect.PCIE_DEVICE

#: The base flag sets devices are described with.
PCI = Connect.PCI_DEVICE | Connect.AUTOASSIGN
PCIE = Connect.PCIE_DEVICE | Connect.AUTOASSIGN

#: How libvirt names each kind in "It requires a controller that accepts a ..."
#: messages, in the order it picks the first one a device has.
KIND_NAMES: tuple[tuple[Connect, str], ...] = (
    (Connect.PCI_DEVICE, "standard PCI device"),
    (Connect.PCIE_DEVICE, "PCI Express device"),
    (Connect.PCIE_ROOT_PORT, "pcie-root-port"),
    (Connect.PCIE_SWITCH_UPSTREAM_PORT, "pcie-switch-upstream-port"),
    (Connect.PCIE_SWITCH_DOWNSTREAM_PORT, "pcie-switch-downstream-port"),
    (Connect.DMI_TO_PCI_BRIDGE, "dmi-to-pci-bridge"),
    (Connect.PCIE_TO_PCI_BRIDGE, "pcie-to-pci-bridge"),
    (Connect.PCI_EXPANDER_BUS, "pci-expander-bus"),
    (Connect.PCIE_EXPANDER_BUS, "pcie-expander-bus"),
    (Connect.PCI_BRIDGE, "pci-bridge"),
)


def kind_name(flags: Connect) -> str:
    for bit, name in KIND_NAMES:
        if flags & bit:
            return name
    return "unknown"


def is_pcie(flags: Connect) -> bool:
    """True for functions that are PCI Express (endpoint, port, switch port)."""
    return bool(flags & (Connect.PCIE_DEVICE | Connect.PCIE_ROOT_PORT
                         | Connect.PCIE_SWITCH_UPSTREAM_PORT | Connect.PCIE_SWITCH_DOWNSTREAM_PORT
                         | Connect.PCIE_TO_PCI_BRIDGE))
