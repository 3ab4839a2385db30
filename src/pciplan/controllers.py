"""TABLE: the PCI controller models, what each plugs into and what its bus offers.

One row per ``<controller type='pci' model=...>``.  Logic lives in ``addrset``
and ``planner``; this module only describes the hardware and libvirt's names.
"""

from __future__ import annotations


from .connect import Connect as C
from .records import Row


class ControllerModel(Row):
    #: libvirt's model name
    name: str
    #: what it is, as seen by the bus it plugs into (None: never plugged: a root)
    plugs_as: C
    #: what its own bus accepts downstream (kinds + AUTOASSIGN), hot-plug excluded
    accepts: C
    #: whether devices on its bus can be hot-plugged (unless ``<target hotplug='off'/>``)
    hotplug: bool
    #: the slot range of its bus
    min_slot: int
    max_slot: int
    #: QEMU device names allowed in ``<model name=...>``; the first is libvirt's default
    model_names: tuple[str, ...]
    #: ``<target>`` options libvirt accepts for the model (besides hotplug)
    options: frozenset[str]
    #: does it create a new bus number (a bridge), consuming one of the 256 bus numbers
    new_bus: bool = True
    #: does it open an IO window (4 KiB of the 64 KiB IO space) when devices behind it need IO
    io_window: bool = True
    #: the bus it provides is PCI Express (else conventional PCI)
    express: bool = False
    #: QEMU really hot-plugs into its bus (libvirt believes a pxb's bus does; QEMU 7.2 refuses)
    qemu_hotplug: bool = True

    @property
    def is_root(self) -> bool:
        return self.plugs_as == C.NONE

    @property
    def default_model_name(self) -> str | None:
        return self.model_names[0] if self.model_names else None


_PCI_BUS = C.PCI_DEVICE | C.PCI_BRIDGE | C.AUTOASSIGN
_PORT_BUS = C.PCIE_DEVICE | C.PCIE_SWITCH_UPSTREAM_PORT | C.PCIE_TO_PCI_BRIDGE | C.AUTOASSIGN

MODELS: dict[str, ControllerModel] = {m.name: m for m in (
    ControllerModel("pci-root", C.NONE, _PCI_BUS | C.PCI_EXPANDER_BUS, True, 1, 31,
                    (), frozenset({"pcihole64", "hotplug"}), new_bus=False, io_window=False),
    ControllerModel("pcie-root", C.NONE,
                    C.PCIE_DEVICE | C.PCIE_ROOT_PORT | C.DMI_TO_PCI_BRIDGE | C.PCIE_EXPANDER_BUS,
                    False, 1, 31, (), frozenset({"pcihole64"}), new_bus=False, io_window=False,
                    express=True),
    ControllerModel("pci-bridge", C.PCI_BRIDGE, _PCI_BUS, True, 1, 31,
                    ("pci-bridge",), frozenset({"chassisNr"})),
    ControllerModel("pci-expander-bus", C.PCI_EXPANDER_BUS, _PCI_BUS, True, 0, 31,
                    ("pxb",), frozenset({"busNr", "node"}), qemu_hotplug=False),
    ControllerModel("pcie-expander-bus", C.PCIE_EXPANDER_BUS,
                    C.PCIE_ROOT_PORT | C.DMI_TO_PCI_BRIDGE, False, 0, 31,
                    ("pxb-pcie",), frozenset({"busNr", "node"}), express=True),
    ControllerModel("dmi-to-pci-bridge", C.DMI_TO_PCI_BRIDGE, C.PCI_DEVICE | C.PCI_BRIDGE, False, 0, 31,
                    ("i82801b11-bridge",), frozenset()),
    ControllerModel("pcie-to-pci-bridge", C.PCIE_TO_PCI_BRIDGE, _PCI_BUS, True, 1, 31,
                    ("pcie-pci-bridge",), frozenset()),
    ControllerModel("pcie-root-port", C.PCIE_ROOT_PORT | C.AGGREGATE_SLOT, _PORT_BUS, True, 0, 0,
                    ("pcie-root-port", "ioh3420"), frozenset({"chassis", "port", "hotplug"}), express=True),
    ControllerModel("pcie-switch-upstream-port", C.PCIE_SWITCH_UPSTREAM_PORT,
                    C.PCIE_SWITCH_DOWNSTREAM_PORT, False, 0, 31,
                    ("x3130-upstream",), frozenset(), express=True),
    ControllerModel("pcie-switch-downstream-port", C.PCIE_SWITCH_DOWNSTREAM_PORT, _PORT_BUS, True, 0, 0,
                    ("xio3130-downstream",), frozenset({"chassis", "port", "hotplug"}), express=True),
)}

#: pseries: a pci-root is a PCI host bridge (PHB) of its own, named like this
PSERIES_PHB_MODEL_NAME = "spapr-pci-host-bridge"

#: The dry run's stand-in for the root port that will carry a new pcie-to-pci-bridge:
#: it accepts nothing but that bridge, so no endpoint is planned onto it.
RESTRICTED_ROOT_PORT_ACCEPTS = C.PCIE_TO_PCI_BRIDGE

#: Which model libvirt names in "a PCI slot is needed to connect a PCI controller
#: model='...'", for a controller that found no slot: first match wins.
CONNECT_TO_MODEL: tuple[tuple[C, str], ...] = (
    (C.PCIE_ROOT_PORT, "pcie-root-port"),
    (C.PCIE_SWITCH_UPSTREAM_PORT, "pcie-switch-upstream-port"),
    (C.PCIE_SWITCH_DOWNSTREAM_PORT, "pcie-switch-downstream-port"),
    (C.DMI_TO_PCI_BRIDGE, "dmi-to-pci-bridge"),
    (C.PCI_EXPANDER_BUS, "pci-expander-bus"),
    (C.PCIE_EXPANDER_BUS, "pcie-expander-bus"),
    (C.PCI_BRIDGE, "pci-bridge"),
)

#: <target> option ranges: name -> (low, high) for libvirt's "out of range" checks
OPTION_RANGES: dict[str, tuple[int, int]] = {
    "chassisNr": (1, 255),
    "chassis": (0, 255),
    "port": (0, 255),
    "busNr": (1, 254),
    "index": (0, 30),
}

#: libvirt's names for the options in its "Option '...' is not valid" messages
OPTION_LABELS: dict[str, str] = {
    "chassisNr": "chassisNr", "chassis": "chassis", "port": "port", "busNr": "busNr",
    "index": "targetIndex", "hotplug": "hotplug", "node": "numaNode", "pcihole64": "pcihole64",
}


#: the <target> attributes libvirt 9.0 knows for PCI controllers (others are dropped)
TARGET_ATTRIBUTES = frozenset({"chassisNr", "chassis", "port", "busNr", "index", "hotplug", "node"})

#: pSeries PHBs (pci-root with index > 0) take these options
PSERIES_PHB_OPTIONS = frozenset({"index", "node", "hotplug"})


def lookup(name: str | None) -> ControllerModel | None:
    return MODELS.get(name) if name else None


def reads_pcihole64(ctype: str | None, model: str | None) -> bool:
    """Does libvirt read a ``<pcihole64>`` of this controller?  Only a PCI root's (the models
    whose options have it); another's is not read at all."""
    m = lookup(model) if ctype == "pci" else None
    return m is not None and "pcihole64" in m.options
