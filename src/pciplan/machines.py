"""TABLE: machine families, their PCI roots and the defaults libvirt 9.0 gives them.

A ``Machine`` row answers "what does libvirt add and pick by default on this
machine?".  ``find(arch, machine)`` maps a domain's ``<type arch machine>`` to
its row; the planner never tests machine names itself.
"""

from __future__ import annotations


from .address import PciAddress
from .records import Row

X86 = frozenset({"x86_64", "i686"})
ARM = frozenset({"aarch64", "armv7l", "armv6l"})
RISCV = frozenset({"riscv64", "riscv32"})
PPC64 = frozenset({"ppc64", "ppc64le"})
S390 = frozenset({"s390x", "s390"})
#: the other arches QEMU 7.2 has an emulator for that libvirt 9.0 names (``virsh capabilities``)
PPC32 = frozenset({"ppc"})
ALPHA = frozenset({"alpha"})
SH4 = frozenset({"sh4", "sh4eb"})
XTENSA = frozenset({"xtensa", "xtensaeb"})
M68K = frozenset({"m68k"})
CRIS = frozenset({"cris"})
MICROBLAZE = frozenset({"microblaze", "microblazeel"})


class ChipsetFunction(Row):
    """A function of the chipset on the root bus that the XML never lists."""

    address: PciAddress
    #: its name in the ``tree``/``check`` views
    name: str
    #: how the planner names it when it reserves the address (in address conflicts)
    element: str


class FixedController(Row):
    """A controller of the XML that the chipset puts at a fixed address."""

    address: PciAddress
    #: libvirt's error when the XML gives it another address
    error: str


class ChipsetSlots(Row):
    """The root-bus slots an x86 chipset fixes, given or reserved by the planner
    (``Planner.chipset_*``), counted by ``--capacity max`` and shown by ``tree``."""

    #: name of the host bridge at 00:00.0 (not reserved by the planner: bus 0 slot 0 is never free)
    host_bridge: str
    #: functions always present and reserved on bus 0 (ISA/LPC bridge, ACPI/SMBus), in order
    functions: tuple[ChipsetFunction, ...]
    #: slot the first ``<video>`` is given when that slot is free
    video_slot: int
    #: i440fx: the primary IDE controller and the index-0 PIIX3 USB controller (PIIX3 functions)
    ide: FixedController | None = None
    piix3_usb: FixedController | None = None
    #: q35: the primary SATA controller (ICH9 AHCI)
    sata: FixedController | None = None
    #: q35: slots tried in turn for ``ich9-uhci1`` USB controllers written without an address
    uhci1_slots: tuple[int, ...] = ()
    #: q35: slot a ``dmi-to-pci-bridge`` written without an address is given when free
    dmi_to_pci_bridge_slot: int | None = None
    #: q35: slot an ``ich9`` ``<sound>`` (HD audio) is given when free
    hda_slot: int | None = None

    @property
    def function_slots(self) -> frozenset[int]:
        """Root-bus slots the always-present functions occupy."""
        return frozenset(f.address.slot for f in self.functions)


#: the root-bus slot of i440fx's PIIX3 (ISA bridge, IDE, USB, ACPI functions)
PIIX3_SLOT = 0x01
#: PIIX3 functions libvirt gives the i440fx IDE and USB controllers (00:01.1, 00:01.2);
#: libvirt never reserves them for these controllers, whatever the machine
PIIX3_IDE = FixedController(PciAddress(0, 0, PIIX3_SLOT, 1),
                            "Primary IDE controller must have PCI address 0:0:1.1")
PIIX3_USB = FixedController(PciAddress(0, 0, PIIX3_SLOT, 2),
                            "PIIX3 USB controller at index 0 must have PCI address 0:0:1.2")

#: i440fx: PIIX3 at slot 1 (ISA bridge, IDE, USB, ACPI), the primary video at slot 2
I440FX_SLOTS = ChipsetSlots(
    host_bridge="i440FX host bridge",
    functions=(ChipsetFunction(PciAddress(0, 0, PIIX3_SLOT, 0), "PIIX3 ISA bridge", "ISA bridge 00:01.0"),
               ChipsetFunction(PciAddress(0, 0, PIIX3_SLOT, 3), "PIIX4 ACPI/SMBus", "ACPI 00:01.3")),
    video_slot=0x02,
    ide=PIIX3_IDE,
    piix3_usb=PIIX3_USB,
)

#: q35: ICH9 at slot 0x1f (LPC, SATA, SMBus), the primary video at slot 1, USB
#: companions at 0x1d/0x1a, the dmi-to-pci-bridge at 0x1e, HD audio at 0x1b
Q35_SLOTS = ChipsetSlots(
    host_bridge="Q35 host bridge",
    functions=(ChipsetFunction(PciAddress(0, 0, 0x1F, 0), "ICH9 LPC/ISA bridge", "LPC bridge 00:1f.0"),
               ChipsetFunction(PciAddress(0, 0, 0x1F, 3), "ICH9 SMBus", "SMBus 00:1f.3")),
    video_slot=0x01,
    sata=FixedController(PciAddress(0, 0, 0x1F, 2),
                         "Primary SATA controller must have PCI address 0:0:1f.2"),
    uhci1_slots=(0x1D, 0x1A),
    dmi_to_pci_bridge_slot=0x1E,
    hda_slot=0x1B,
)


class Machine(Row):
    #: family name: i440fx, q35, arm-virt, riscv-virt, pseries, s390-ccw, arm-board
    family: str
    #: model of the PCI controller index 0 libvirt adds (None: the machine has none)
    root: str | None
    #: machine whose fixed chipset slots the planner reserves: 'i440fx', 'q35' or None
    chipset: str | None
    #: USB controller libvirt adds at index 0 when the XML has none (None: none added)
    default_usb: str | None
    #: model given to a ``<controller type='usb'>`` written without one
    usb_model: str | None
    #: model of an ``<interface>`` written without one
    nic_model: str
    #: model of a ``<video>`` written without one (or implied by ``<graphics>``)
    video_model: str
    #: model of a ``<controller type='scsi'>`` written without one (None: the emulator has
    #: none libvirt picks, "Unable to determine model for SCSI controller")
    scsi_model: str | None
    #: libvirt adds a virtio memballoon when the XML has none
    memballoon: bool
    #: the root-bus slots of ``chipset`` (None when it is None)
    chipset_slots: ChipsetSlots | None = None
    #: q35 always has a SATA controller at 00:1f.2
    sata: bool = False
    #: IDE controllers are possible
    ide: bool = False
    #: several root buses (pSeries PHBs): new buses are more pci-roots
    multiple_roots: bool = False
    #: virtio devices may fall back to virtio-mmio transport (ARM/RISC-V boards)
    virtio_mmio: bool = False
    #: PCI addresses carry zPCI uid/fid (s390x)
    zpci: bool = False
    #: USB keyboard and mouse are added when the domain has graphics (every ppc64 machine)
    usb_input_with_graphics: bool = False
    #: <video> models QEMU 7.2 offers on the machine (libvirt's domain capabilities)
    video_models: frozenset[str] = frozenset({"vga", "cirrus", "vmvga", "qxl", "virtio", "none",
                                              "bochs", "ramfb"})
    #: the emulator has an AHCI (SATA) controller
    sata_capable: bool = True
    #: devices libvirt 9.0 checks the emulator for and this one lacks (QEMU names)
    lacks: frozenset[str] = frozenset()
    #: QEMU's device names for the machine's bridges (for qemu-args)
    root_bus_name: str = "pci.0"
    #: qemu-system binary suffix per arch is in ``EMULATORS``
    pci: bool = True
    #: virtio devices without an address go on the channel subsystem (libvirt's
    #: ``s390-ccw*`` machines); CCW addresses are checked and taken
    ccw: bool = False
    #: the machine has its ESP (ncr53c90) SCSI controller built in: the first SCSI
    #: controller may be of that model (m68k 'q800')
    builtin_esp: bool = False


#: the USB devices libvirt 9.0 checks the emulator for (QEMU names): s390x's lacks them
#: all (its USB tablet and mouse, which libvirt does not check, are taken)
USB_DEVICES = ("usb-kbd", "usb-storage", "usb-hub", "usb-redir", "ccid-card-emulated",
               "ccid-card-passthru", "usb-audio")


#: video models of the non-x86 emulators (libvirt's domain capabilities for QEMU 7.2)
_VIDEO_NO_QXL = frozenset({"vga", "cirrus", "vmvga", "virtio", "none", "bochs", "ramfb"})
_VIDEO_PSERIES = _VIDEO_NO_QXL - {"ramfb"}
_VIDEO_S390 = frozenset({"virtio", "none"})

I440FX = Machine("i440fx", root="pci-root", chipset="i440fx", default_usb="piix3-uhci",
                 usb_model="piix3-uhci", nic_model="rtl8139", video_model="cirrus",
                 scsi_model="lsilogic", memballoon=True, chipset_slots=I440FX_SLOTS, ide=True)
Q35 = Machine("q35", root="pcie-root", chipset="q35", default_usb="qemu-xhci",
              usb_model="piix3-uhci", nic_model="rtl8139", video_model="cirrus",
              scsi_model="lsilogic", memballoon=True, chipset_slots=Q35_SLOTS, sata=True,
              root_bus_name="pcie.0")
AARCH64_VIRT = Machine("arm-virt", root="pcie-root", chipset=None, default_usb=None,
                       usb_model="qemu-xhci", nic_model="virtio", video_model="virtio",
                       scsi_model="lsilogic", memballoon=False, virtio_mmio=True,
                       root_bus_name="pcie.0",
                       video_models=_VIDEO_NO_QXL)
ARM_VIRT = Machine("arm-virt", root="pcie-root", chipset=None, default_usb=None,
                   usb_model="piix3-uhci", nic_model="virtio", video_model="virtio",
                   scsi_model="lsilogic", memballoon=False, virtio_mmio=True,
                   root_bus_name="pcie.0",
                   video_models=_VIDEO_NO_QXL)
#: ARM boards without PCI; libvirt gives virtio devices virtio-mmio addresses only on
#: vexpress-* (and virt), the others (integratorcp, realview-*, versatile*...) get none
ARM_VEXPRESS = Machine("arm-board", root=None, chipset=None, default_usb=None, usb_model="piix3-uhci",
                       nic_model="lan9118", video_model="cirrus", scsi_model="lsilogic",
                       memballoon=False, virtio_mmio=True, pci=False,
                       video_models=_VIDEO_NO_QXL)
ARM_BOARD = ARM_VEXPRESS._replace(virtio_mmio=False)
#: the one ARM board with PCI to libvirt: on armv6l it adds a pci-root (the qemu-rpi-kernel
#: guests), on armv7l/aarch64 none ("No PCI buses available" unless the XML has one)
VERSATILEPB_ARMV6L = Machine("arm-versatilepb", root="pci-root", chipset=None, default_usb=None,
                             usb_model="piix3-uhci", nic_model="scm91c111", video_model="cirrus",
                             scsi_model="lsilogic", memballoon=False, video_models=_VIDEO_NO_QXL)
VERSATILEPB = VERSATILEPB_ARMV6L._replace(root=None)
#: the same boards on aarch64, where a USB controller written without a model is qemu-xhci
#: (libvirt's default USB model is by arch: qemu-xhci on every aarch64 machine)
AARCH64_VERSATILEPB, AARCH64_VEXPRESS, AARCH64_BOARD = (
    row._replace(usb_model="qemu-xhci") for row in (VERSATILEPB, ARM_VEXPRESS, ARM_BOARD))
#: armv6l 'virt' has PCI to libvirt, which adds no pcie-root for it: virtio-mmio then
ARMV6L_VIRT = ARM_VIRT._replace(root=None)
RISCV_VIRT = Machine("riscv-virt", root="pcie-root", chipset=None, default_usb=None,
                     usb_model="piix3-uhci", nic_model="virtio", video_model="virtio",
                     scsi_model="lsilogic", memballoon=True, virtio_mmio=True,
                     root_bus_name="pcie.0",
                     video_models=_VIDEO_NO_QXL)
#: RISC-V boards other than virt (spike, sifive_u...): no PCI, no virtio-mmio from libvirt
#: x86 machines without PCI: every PCI device (the default balloon and, on microvm, the
#: default USB controller included) is "No PCI buses available"; no IDE either
ISAPC = Machine("isapc", root=None, chipset=None, default_usb=None, usb_model="piix3-uhci",
                nic_model="rtl8139", video_model="cirrus", scsi_model="lsilogic", memballoon=True)
#: every other x86 machine (microvm, x-remote, and a name QEMU does not have, until libvirt
#: refuses it): libvirt adds a USB controller and no PCI root (a user-written one is used)
X86_OTHER = ISAPC._replace(family="x86-other", default_usb="piix3-uhci")
RISCV_BOARD = Machine("riscv-board", root=None, chipset=None, default_usb=None, usb_model="piix3-uhci",
                      nic_model="rtl8139", video_model="virtio", scsi_model="lsilogic",
                      memballoon=True, pci=False,
                      video_models=_VIDEO_NO_QXL)
PSERIES = Machine("pseries", root="pci-root", chipset=None, default_usb="qemu-xhci",
                  usb_model="qemu-xhci", nic_model="rtl8139", video_model="vga",
                  scsi_model="ibmvscsi", memballoon=True, multiple_roots=True,
                  usb_input_with_graphics=True,
                  video_models=_VIDEO_PSERIES, lacks=frozenset({"virtio-mmio"}))
#: the other ppc64 machines (powernv*, mac99, ...): libvirt gives them a pci-root and plans
#: them as a plain PCI machine
PPC64_BOARD = Machine("ppc64-board", root="pci-root", chipset=None, default_usb="qemu-xhci",
                      usb_model="qemu-xhci", nic_model="rtl8139", video_model="vga",
                      scsi_model="lsilogic", memballoon=True, usb_input_with_graphics=True,
                      video_models=_VIDEO_PSERIES, lacks=frozenset({"virtio-mmio"}))
#: 32-bit ppc, alpha, sh4 and sh4eb: libvirt adds a pci-root on every machine of theirs, a
#: USB controller (PIIX3 UHCI, the default model of an emulator that has one) and a balloon,
#: and picks QEMU's PCI defaults (rtl8139, cirrus, lsilogic)
PPC_BOARD = PPC64_BOARD._replace(family="ppc-board", default_usb="piix3-uhci", usb_model="piix3-uhci",
                                 video_model="cirrus", usb_input_with_graphics=False)
#: the PCI Express controllers' QEMU devices, and the ivshmem ones, that the alpha, sh4 and
#: xtensa emulators lack (libvirt checks for them: "The '<name>' device is not supported...")
_PCIE_PORT_DEVICES = frozenset({"ioh3420", "pcie-root-port", "x3130-upstream", "xio3130-downstream",
                                "pcie-pci-bridge"})
_IVSHMEM_DEVICES = frozenset({"ivshmem-plain", "ivshmem-doorbell"})
ALPHA_BOARD = PPC_BOARD._replace(family="alpha-board", lacks=PPC_BOARD.lacks | _PCIE_PORT_DEVICES
                                 | _IVSHMEM_DEVICES | {"i82801b11-bridge"})
SH4_BOARD = ALPHA_BOARD._replace(family="sh4-board")
#: xtensa and xtensaeb: PCI devices but no PCI root from libvirt (one the XML gives is used);
#: a USB controller and a balloon are added, so a guest without either written 'none' (or
#: a pci-root) is "No PCI buses available"
XTENSA_BOARD = X86_OTHER._replace(family="xtensa-board", video_models=_VIDEO_PSERIES,
                                  lacks=_PCIE_PORT_DEVICES | _IVSHMEM_DEVICES | {"virtio-mmio"})
#: libvirt's name of a controller or video left at its default model: m68k, cris and
#: microblaze have no piix3-uhci, cirrus or VGA for libvirt to pick
DEFAULT_MODEL = "default"
#: the PCI devices libvirt checks for that the m68k, cris and microblaze emulators all lack
_POOR_LACKS = _PCIE_PORT_DEVICES | _IVSHMEM_DEVICES | frozenset({
    "virtio-mmio", "i82801b11-bridge", "pci-bridge", "lsi53c895a", "mptsas1068", "megasas", "pvscsi",
    "am53c974", "dc390", "ich9-intel-hda", "hda-duplex", "hda-micro", "hda-output",
    "vfio-pci", *USB_DEVICES})
#: the virtio devices the cris and microblaze emulators lack, on top of the m68k one's
#: ('virtio-pci-transitional': the (non-)transitional virtio-pci devices, m68k's lacks too)
_NO_VIRTIO = frozenset({"vhost-user-fs", "vhost-vsock", "virtio-scsi-pci", "virtio-rng-pci",
                        "virtio-input-host", "virtio-mouse", "virtio-tablet", "virtio-keyboard",
                        "virtio-balloon-pci.deflate-on-oom", "virtio-balloon.free-page-reporting"})
#: m68k: no PCI root from libvirt, a model-less USB controller and a balloon added; virtio NICs
#: and virtio-scsi (its emulator has neither rtl8139 nor e1000, nor an LSI SCSI controller)
M68K_BOARD = Machine("m68k-board", root=None, chipset=None, default_usb=DEFAULT_MODEL, usb_model=None,
                     nic_model="virtio", video_model=DEFAULT_MODEL, scsi_model="virtio-scsi",
                     memballoon=True, video_models=frozenset({"virtio", "none"}), sata_capable=False,
                     lacks=_POOR_LACKS | {"virtio-pci-transitional"})
#: cris and microblaze: as m68k, without virtio-net, virtio-scsi, virtio-gpu or virtio-input
#: (an rtl8139 NIC by default, as libvirt's last resort; no SCSI controller model at all)
CRIS_BOARD = M68K_BOARD._replace(family="cris-board", nic_model="rtl8139", scsi_model=None,
                                 video_models=frozenset({"none"}),
                                 lacks=_POOR_LACKS | _NO_VIRTIO | {"virtio-pci-transitional"})
#: an arch of ``NO_EMULATOR_ARCHES`` with the emulator of another one written: libvirt lays
#: the guest out with its arch's defaults (a PCI root only on ppcemb, sparc64 and mips
#: 'malta'; nothing on sparc) before it refuses the emulator's arch
OTHER_ARCH = X86_OTHER._replace(family="other-arch")
OTHER_ARCH_PCI = PPC_BOARD._replace(family="other-arch")
S390_CCW = Machine("s390-ccw", root="pci-root", chipset=None, default_usb=None, usb_model="none",
                   nic_model="virtio", video_model="virtio", scsi_model="virtio-scsi",
                   memballoon=True, zpci=True, ccw=True,
                   video_models=_VIDEO_S390, sata_capable=False,
                   lacks=frozenset({"ivshmem-plain", "ivshmem-doorbell", "ich9-intel-hda",
                                    "virtio-input-host-ccw", "lsi53c895a", "mptsas1068", "megasas",
                                    "pvscsi", "hda-duplex", "hda-micro", "hda-output",
                                    "virtio-mmio", "i82801b11-bridge", "pxb", "pxb-pcie",
                                    *_PCIE_PORT_DEVICES, *USB_DEVICES}))

#: an s390x machine name other than s390-ccw*: libvirt lays the guest out on PCI (zPCI),
#: without the channel subsystem, until it refuses the name
S390_OTHER = S390_CCW._replace(family="s390-other", ccw=False)


class Names(Row):
    """Machine names: one of ``exact``, or one starting with a prefix (QEMU's versioned
    names such as ``pc-q35-7.2``), as libvirt tests them (a line break is one more
    character: 'pc-i440fx-2.12\n' is an i440fx name QEMU does not have)."""

    exact: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def match(self, name: str) -> bool:
        return name in self.exact or name.startswith(self.prefixes)


_VIRT = Names(("virt",), ("virt-",))

#: (arches, machine names, row); first match wins
_RULES: tuple[tuple[frozenset[str], Names, Machine], ...] = (
    (X86, Names(("pc",), ("pc-i440fx-", "pc-0.", "pc-1.", "rhel")), I440FX),
    (X86, Names(("q35",), ("pc-q35-",)), Q35),
    (X86, Names(("isapc",)), ISAPC),
    (X86, Names(prefixes=("",)), X86_OTHER),  # microvm, x-remote, any other name
    (frozenset({"aarch64"}), _VIRT, AARCH64_VIRT),
    (frozenset({"armv6l"}), _VIRT, ARMV6L_VIRT),
    (frozenset({"armv7l"}), _VIRT, ARM_VIRT),
    (frozenset({"armv6l"}), Names(("versatilepb",)), VERSATILEPB_ARMV6L),
    (frozenset({"aarch64"}), Names(("versatilepb",)), AARCH64_VERSATILEPB),
    (ARM, Names(("versatilepb",)), VERSATILEPB),
    (frozenset({"aarch64"}), Names(prefixes=("vexpress-",)), AARCH64_VEXPRESS),
    (ARM, Names(prefixes=("vexpress-",)), ARM_VEXPRESS),
    (frozenset({"aarch64"}), Names(prefixes=("",)), AARCH64_BOARD),
    (ARM, Names(prefixes=("",)), ARM_BOARD),  # integratorcp, realview-*, versatile*, any other board
    (RISCV, _VIRT, RISCV_VIRT),
    (RISCV, Names(prefixes=("",)), RISCV_BOARD),  # spike, sifive_u, ...
    (PPC64, Names(("pseries",), ("pseries-",)), PSERIES),
    (PPC64, Names(("g3beige",)), PPC64_BOARD._replace(ide=True)),  # (its IDE is built in)
    (PPC64, Names(prefixes=("",)), PPC64_BOARD),  # powernv*, mac99, ...: one pci-root
    (PPC32, Names(("g3beige",)), PPC_BOARD._replace(ide=True)),  # (its IDE is built in)
    (PPC32, Names(prefixes=("",)), PPC_BOARD),
    (ALPHA, Names(prefixes=("",)), ALPHA_BOARD),
    (SH4, Names(prefixes=("",)), SH4_BOARD),
    (XTENSA, Names(prefixes=("",)), XTENSA_BOARD),
    (M68K, Names(("q800",)), M68K_BOARD._replace(builtin_esp=True)),
    (M68K, Names(prefixes=("",)), M68K_BOARD),
    (CRIS | MICROBLAZE, Names(prefixes=("",)), CRIS_BOARD),
    (frozenset({"ppcemb", "sparc64"}), Names(prefixes=("",)), OTHER_ARCH_PCI),
    (frozenset({"sparc"}), Names(prefixes=("",)), OTHER_ARCH._replace(default_usb=None, memballoon=False)),
    (frozenset({"mips", "mipsel", "mips64", "mips64el"}), Names(("malta",)), OTHER_ARCH_PCI),
    (frozenset("armv7b ia64 lm32 mips mipsel mips64 mips64el openrisc parisc parisc64 ppcle "
               "unicore32".split()), Names(prefixes=("",)), OTHER_ARCH),
    (S390, Names(prefixes=("s390-ccw",)), S390_CCW),  # (libvirt's test: the name's prefix)
    (S390, Names(prefixes=("",)), S390_OTHER),  # s390-virtio, ...: refused after its layout
)

#: what QEMU 7.2 expands an alias to (libvirt writes the expansion back)
ALIASES: dict[tuple[frozenset[str], str], str] = {
    (X86, "pc"): "pc-i440fx-7.2",
    (X86, "q35"): "pc-q35-7.2",
    (ARM, "virt"): "virt-7.2",
    (PPC64, "pseries"): "pseries-7.2",
    (S390, "s390-ccw-virtio"): "s390-ccw-virtio-7.2",
    (M68K, "virt"): "virt-7.2",
}

#: QEMU system emulator per guest arch
EMULATORS: dict[str, str] = {
    "x86_64": "qemu-system-x86_64", "i686": "qemu-system-i386",
    "aarch64": "qemu-system-aarch64", "armv7l": "qemu-system-arm", "armv6l": "qemu-system-arm",
    "riscv64": "qemu-system-riscv64", "riscv32": "qemu-system-riscv32",
    "ppc64": "qemu-system-ppc64", "ppc64le": "qemu-system-ppc64",
    "s390x": "qemu-system-s390x",
    "ppc": "qemu-system-ppc", "alpha": "qemu-system-alpha", "sh4": "qemu-system-sh4",
    "sh4eb": "qemu-system-sh4eb", "xtensa": "qemu-system-xtensa", "xtensaeb": "qemu-system-xtensaeb",
    "m68k": "qemu-system-m68k", "cris": "qemu-system-cris", "microblaze": "qemu-system-microblaze",
    "microblazeel": "qemu-system-microblazeel",
}

#: the arches of QEMU's other emulators (none of them has a TPM, nor the PC's devices)
MISC = PPC32 | ALPHA | SH4 | XTENSA | M68K | CRIS | MICROBLAZE
ARCHES = X86 | ARM | RISCV | PPC64 | S390 | MISC
#: every architecture name libvirt 9.0 knows (others are "Unknown architecture")
LIBVIRT_ARCHES = ARCHES | frozenset("""
    alpha armv7b cris ia64 lm32 m68k microblaze microblazeel mips mipsel mips64 mips64el
    openrisc parisc parisc64 ppc ppcle ppcemb riscv32 s390 sh4 sh4eb sparc sparc64 unicore32
    xtensa xtensaeb""".split())


#: the architectures libvirt 9.0 knows that have no QEMU system emulator here (Debian 12 with
#: QEMU 7.2's x86, ARM, POWER, RISC-V, s390x and misc emulators; none is named after parisc or
#: openrisc): without an <emulator> libvirt finds none ("No emulator found for arch ..."); with
#: the one of another arch written it lays the guest out (``OTHER_ARCH``) and refuses the arch
NO_EMULATOR_ARCHES = frozenset("""
    armv7b ia64 lm32 mips mipsel mips64 mips64el openrisc parisc parisc64 ppcemb ppcle s390
    sparc sparc64 unicore32""".split())


#: the QEMU 7.2 system emulators of Debian 12 whose capabilities libvirt 9.0 cannot read (their
#: target is none of libvirt's arches: hppa, or1k, avr, ...): a guest that names one is
#: refused when libvirt looks its capabilities up, right after the XML is read, whatever its
#: arch, and with no message of libvirt's own ("An error occurred, but the cause is unknown")
UNPROBED_EMULATORS = frozenset("/usr/bin/qemu-system-" + target for target in
                               ("avr", "hppa", "loongarch64", "nios2", "or1k", "rx", "tricore"))


#: TABLE: the machine names (aliases included) each QEMU 7.2 system emulator of Debian 12
#: offers, as libvirt 9.0 lists them (``virsh capabilities``: ``qemu-system-* -machine help``
#: less ``none``, which libvirt never lists).  libvirt refuses any other name, with
#: "Emulator '<path>' does not support machine type '<name>'" (``unsupported``), after it has
#: laid the guest out by the ``_RULES`` row the name falls under (each arch's last row takes
#: any name).  Deprecated versions (``pc-i440fx-1.4`` to ``1.7``) are still offered.
_X86_NAMES = frozenset("""
    pc q35 isapc microvm x-remote
    pc-i440fx-1.4 pc-i440fx-1.5 pc-i440fx-1.6 pc-i440fx-1.7
    pc-i440fx-2.0 pc-i440fx-2.1 pc-i440fx-2.2 pc-i440fx-2.3 pc-i440fx-2.4 pc-i440fx-2.5
    pc-i440fx-2.6 pc-i440fx-2.7 pc-i440fx-2.8 pc-i440fx-2.9 pc-i440fx-2.10 pc-i440fx-2.11
    pc-i440fx-2.12 pc-i440fx-3.0 pc-i440fx-3.1 pc-i440fx-4.0 pc-i440fx-4.1 pc-i440fx-4.2
    pc-i440fx-5.0 pc-i440fx-5.1 pc-i440fx-5.2 pc-i440fx-6.0 pc-i440fx-6.1 pc-i440fx-6.2
    pc-i440fx-7.0 pc-i440fx-7.1 pc-i440fx-7.2
    pc-q35-2.4 pc-q35-2.5 pc-q35-2.6 pc-q35-2.7 pc-q35-2.8 pc-q35-2.9 pc-q35-2.10 pc-q35-2.11
    pc-q35-2.12 pc-q35-3.0 pc-q35-3.1 pc-q35-4.0 pc-q35-4.0.1 pc-q35-4.1 pc-q35-4.2
    pc-q35-5.0 pc-q35-5.1 pc-q35-5.2 pc-q35-6.0 pc-q35-6.1 pc-q35-6.2
    pc-q35-7.0 pc-q35-7.1 pc-q35-7.2
""".split())
_ARM_NAMES = frozenset("""
    akita ast1030-evb ast2500-evb ast2600-evb bletchley-bmc borzoi canon-a1100 cheetah collie
    connex cubieboard emcraft-sf2 fby35 fby35-bmc fp5280g2-bmc fuji-bmc g220a-bmc highbank
    imx25-pdk integratorcp kudo-bmc kzm lm3s6965evb lm3s811evb mainstone mcimx6ul-evk
    mcimx7d-sabre microbit midway mori-bmc mps2-an385 mps2-an386 mps2-an500 mps2-an505
    mps2-an511 mps2-an521 mps3-an524 mps3-an547 musca-a musca-b1 musicpal n800 n810 netduino2
    netduinoplus2 npcm750-evb nuri orangepi-pc palmetto-bmc qcom-dc-scm-v1-bmc
    qcom-firework-bmc quanta-gbs-bmc quanta-gsj quanta-q71l-bmc rainier-bmc raspi0 raspi1ap
    raspi2b realview-eb realview-eb-mpcore realview-pb-a8 realview-pbx-a9 romulus-bmc sabrelite
    smdkc210 sonorapass-bmc spitz stm32vldiscovery supermicrox11-bmc sx1 sx1-v1 tacoma-bmc
    terrier tosa verdex versatileab versatilepb vexpress-a15 vexpress-a9 witherspoon-bmc
    xilinx-zynq-a9 z2
    virt virt-2.6 virt-2.7 virt-2.8 virt-2.9 virt-2.10 virt-2.11 virt-2.12 virt-3.0 virt-3.1
    virt-4.0 virt-4.1 virt-4.2 virt-5.0 virt-5.1 virt-5.2 virt-6.0 virt-6.1 virt-6.2
    virt-7.0 virt-7.1 virt-7.2
""".split())
_AARCH64_NAMES = _ARM_NAMES | frozenset("raspi3ap raspi3b sbsa-ref xlnx-versal-virt xlnx-zcu102".split())
_PPC64_NAMES = frozenset("""
    40p bamboo g3beige mac99 mpc8544ds pegasos2 powernv powernv8 powernv9 powernv10 ppce500
    ref405ep sam460ex virtex-ml507
    pseries pseries-2.1 pseries-2.2 pseries-2.3 pseries-2.4 pseries-2.5 pseries-2.6 pseries-2.7
    pseries-2.8 pseries-2.9 pseries-2.10 pseries-2.11 pseries-2.12 pseries-2.12-sxxm
    pseries-3.0 pseries-3.1 pseries-4.0 pseries-4.1 pseries-4.2 pseries-5.0 pseries-5.1
    pseries-5.2 pseries-6.0 pseries-6.1 pseries-6.2 pseries-7.0 pseries-7.1 pseries-7.2
""".split())
_S390X_NAMES = frozenset("""
    s390-ccw-virtio
    s390-ccw-virtio-2.4 s390-ccw-virtio-2.5 s390-ccw-virtio-2.6 s390-ccw-virtio-2.7
    s390-ccw-virtio-2.8 s390-ccw-virtio-2.9 s390-ccw-virtio-2.10 s390-ccw-virtio-2.11
    s390-ccw-virtio-2.12 s390-ccw-virtio-3.0 s390-ccw-virtio-3.1 s390-ccw-virtio-4.0
    s390-ccw-virtio-4.1 s390-ccw-virtio-4.2 s390-ccw-virtio-5.0 s390-ccw-virtio-5.1
    s390-ccw-virtio-5.2 s390-ccw-virtio-6.0 s390-ccw-virtio-6.1 s390-ccw-virtio-6.2
    s390-ccw-virtio-7.0 s390-ccw-virtio-7.1 s390-ccw-virtio-7.2
""".split())

_PPC_NAMES = frozenset("""
    40p bamboo g3beige mac99 mpc8544ds pegasos2 ppce500 ref405ep sam460ex virtex-ml507
""".split())
_SH4_NAMES = frozenset("r2d shix".split())
_XTENSA_NAMES = frozenset("""
    kc705 kc705-nommu lx200 lx200-nommu lx60 lx60-nommu ml605 ml605-nommu sim virt
""".split())
_MICROBLAZE_NAMES = frozenset("petalogix-ml605 petalogix-s3adsp1800 xlnx-zynqmp-pmu".split())


class Emulator(Row):
    """A QEMU 7.2 system emulator as libvirt 9.0 sees it (``virsh capabilities``)."""

    #: guest arches it runs (libvirt's ``virQEMUCapsIsArchSupported``)
    arches: frozenset[str]
    #: machine names and aliases it offers
    machines: frozenset[str]
    #: it has QEMU's zPCI device (libvirt then gives an s390 guest its PCI root)
    zpci: bool = False


#: TABLE: the emulators, by the path libvirt runs (``<emulator>``, or ``DEFAULT_EMULATORS``)
EMULATOR_MACHINES: dict[str, Emulator] = {
    "/usr/bin/qemu-system-x86_64": Emulator(X86, _X86_NAMES),
    "/usr/bin/qemu-system-i386": Emulator(frozenset({"i686"}), _X86_NAMES),
    "/usr/bin/qemu-system-aarch64": Emulator(frozenset({"aarch64", "armv7l"}), _AARCH64_NAMES),
    "/usr/bin/qemu-system-arm": Emulator(frozenset({"armv7l", "armv6l"}), _ARM_NAMES),
    "/usr/bin/qemu-system-ppc64": Emulator(PPC64, _PPC64_NAMES),
    "/usr/bin/qemu-system-ppc64le": Emulator(PPC64, _PPC64_NAMES),
    "/usr/bin/qemu-system-s390x": Emulator(frozenset({"s390x"}), _S390X_NAMES, zpci=True),
    "/usr/bin/qemu-system-riscv64": Emulator(frozenset({"riscv64"}), frozenset(
        "microchip-icicle-kit shakti_c sifive_e sifive_u spike virt".split())),
    "/usr/bin/qemu-system-riscv32": Emulator(frozenset({"riscv32"}), frozenset(
        "opentitan sifive_e sifive_u spike virt".split())),
    "/usr/bin/qemu-system-ppc": Emulator(PPC32, _PPC_NAMES),
    "/usr/bin/qemu-system-alpha": Emulator(ALPHA, frozenset({"clipper"})),
    "/usr/bin/qemu-system-sh4": Emulator(frozenset({"sh4"}), _SH4_NAMES),
    "/usr/bin/qemu-system-sh4eb": Emulator(frozenset({"sh4eb"}), _SH4_NAMES),
    "/usr/bin/qemu-system-xtensa": Emulator(frozenset({"xtensa"}), _XTENSA_NAMES),
    "/usr/bin/qemu-system-xtensaeb": Emulator(frozenset({"xtensaeb"}), _XTENSA_NAMES),
    "/usr/bin/qemu-system-m68k": Emulator(M68K, frozenset("""
        an5206 mcf5208evb next-cube q800 virt virt-6.0 virt-6.1 virt-6.2 virt-7.0 virt-7.1 virt-7.2
    """.split())),
    "/usr/bin/qemu-system-cris": Emulator(CRIS, frozenset({"axis-dev88"})),
    "/usr/bin/qemu-system-microblaze": Emulator(frozenset({"microblaze"}), _MICROBLAZE_NAMES),
    "/usr/bin/qemu-system-microblazeel": Emulator(frozenset({"microblazeel"}), _MICROBLAZE_NAMES),
}

#: TABLE: the most vCPUs each machine takes (``maxCpus`` of ``virsh capabilities``), per
#: emulator: (the count of most machines, {another count: the machines that have it})
_X86_MAX_CPUS: tuple[int, dict[int, str]] = (255, {
    1: "isapc x-remote",
    288: """
        microvm pc-q35-2.10 pc-q35-2.11 pc-q35-2.12 pc-q35-2.8 pc-q35-2.9 pc-q35-3.0
        pc-q35-3.1 pc-q35-4.0 pc-q35-4.0.1 pc-q35-4.1 pc-q35-4.2 pc-q35-5.0 pc-q35-5.1
        pc-q35-5.2 pc-q35-6.0 pc-q35-6.1 pc-q35-6.2 pc-q35-7.0 pc-q35-7.1 pc-q35-7.2 q35
    """,
})
_PPC64_MAX_CPUS: tuple[int, dict[int, str]] = (4096, {
    1: "40p bamboo g3beige mac99 pegasos2 ref405ep sam460ex virtex-ml507",
    15: "mpc8544ds",
    32: "ppce500",
    2048: "powernv powernv10 powernv8 powernv9",
})
MAX_CPUS: dict[str, tuple[int, dict[int, str]]] = {
    "/usr/bin/qemu-system-aarch64": (1, {
        2: """
            ast2600-evb bletchley-bmc fby35-bmc fuji-bmc kudo-bmc mcimx7d-sabre mori-bmc
            mps2-an521 mps3-an524 musca-a musca-b1 npcm750-evb nuri qcom-dc-scm-v1-bmc
            qcom-firework-bmc quanta-gbs-bmc quanta-gsj rainier-bmc smdkc210 tacoma-bmc
        """,
        3: "fby35",
        4: """
            highbank midway orangepi-pc raspi2b raspi3ap raspi3b realview-eb-mpcore
            realview-pbx-a9 sabrelite vexpress-a15 vexpress-a9 xlnx-versal-virt
        """,
        6: "xlnx-zcu102",
        255: "virt-2.10 virt-2.11 virt-2.12 virt-2.6 virt-2.7 virt-2.8 virt-2.9",
        512: """
            sbsa-ref virt virt-3.0 virt-3.1 virt-4.0 virt-4.1 virt-4.2 virt-5.0 virt-5.1
            virt-5.2 virt-6.0 virt-6.1 virt-6.2 virt-7.0 virt-7.1 virt-7.2
        """,
    }),
    "/usr/bin/qemu-system-arm": (1, {
        2: """
            ast2600-evb bletchley-bmc fby35-bmc fuji-bmc kudo-bmc mcimx7d-sabre mori-bmc
            mps2-an521 mps3-an524 musca-a musca-b1 npcm750-evb nuri qcom-dc-scm-v1-bmc
            qcom-firework-bmc quanta-gbs-bmc quanta-gsj rainier-bmc smdkc210 tacoma-bmc
        """,
        3: "fby35",
        4: """
            highbank midway orangepi-pc raspi2b realview-eb-mpcore realview-pbx-a9 sabrelite
            vexpress-a15 vexpress-a9
        """,
        255: "virt-2.10 virt-2.11 virt-2.12 virt-2.6 virt-2.7 virt-2.8 virt-2.9",
        512: """
            virt virt-3.0 virt-3.1 virt-4.0 virt-4.1 virt-4.2 virt-5.0 virt-5.1 virt-5.2
            virt-6.0 virt-6.1 virt-6.2 virt-7.0 virt-7.1 virt-7.2
        """,
    }),
    "/usr/bin/qemu-system-i386": _X86_MAX_CPUS,
    "/usr/bin/qemu-system-ppc64": _PPC64_MAX_CPUS,
    "/usr/bin/qemu-system-ppc64le": _PPC64_MAX_CPUS,
    "/usr/bin/qemu-system-riscv32": (1, {
        5: "sifive_u",
        8: "spike",
        512: "virt",
    }),
    "/usr/bin/qemu-system-riscv64": (5, {
        1: "shakti_c sifive_e",
        8: "spike",
        512: "virt",
    }),
    "/usr/bin/qemu-system-s390x": (248, {
    }),
    "/usr/bin/qemu-system-x86_64": _X86_MAX_CPUS,
    "/usr/bin/qemu-system-ppc": (1, {15: "mpc8544ds", 32: "ppce500"}),
    "/usr/bin/qemu-system-alpha": (4, {}),
    "/usr/bin/qemu-system-sh4": (1, {}),
    "/usr/bin/qemu-system-sh4eb": (1, {}),
    "/usr/bin/qemu-system-xtensa": (32, {4: "sim"}),
    "/usr/bin/qemu-system-xtensaeb": (32, {4: "sim"}),
    "/usr/bin/qemu-system-m68k": (1, {}),
    "/usr/bin/qemu-system-cris": (1, {}),
    "/usr/bin/qemu-system-microblaze": (1, {}),
    "/usr/bin/qemu-system-microblazeel": (1, {}),
}

_MAX_CPUS_BY_NAME: dict[str, dict[str, int]] = {}


def max_cpus(path: str | None, arch: str, machine: str) -> int | None:
    """The most vCPUs the machine takes (None: pciplan does not know the emulator)."""
    path = path if path in MAX_CPUS else DEFAULT_EMULATORS.get(arch)
    if path is None or path not in MAX_CPUS:
        return None
    default, others = MAX_CPUS[path]
    names = _MAX_CPUS_BY_NAME.get(path)
    if names is None:
        names = _MAX_CPUS_BY_NAME[path] = {n: count for count, text in others.items()
                                           for n in text.split()}
    return names.get(machine, default)


#: the emulators whose CPU takes QEMU's 'migratable' property: libvirt looks for it on the
#: max-x86_64-cpu type only (QEMU_CAPS_CPU_MIGRATABLE), so no other binary has it
CPU_MIGRATABLE_EMULATORS = frozenset({"/usr/bin/qemu-system-x86_64"})
#: the emulators that offer QEMU's 'max' CPU model (QEMU_CAPS_CPU_MAX), which <cpu
#: mode='maximum'> needs: not the POWER or RISC-V ones
CPU_MAX_EMULATORS = frozenset({
    "/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-system-i386", "/usr/bin/qemu-system-aarch64",
    "/usr/bin/qemu-system-arm", "/usr/bin/qemu-system-s390x",
})


#: the emulator libvirt 9.0 runs for a guest arch when the domain names none (``virsh
#: capabilities``); libvirt has none for s390 (31-bit)
DEFAULT_EMULATORS: dict[str, str] = {
    "x86_64": "/usr/bin/qemu-system-x86_64", "i686": "/usr/bin/qemu-system-i386",
    "aarch64": "/usr/bin/qemu-system-aarch64",
    "armv7l": "/usr/bin/qemu-system-arm", "armv6l": "/usr/bin/qemu-system-arm",
    "ppc64": "/usr/bin/qemu-system-ppc64", "ppc64le": "/usr/bin/qemu-system-ppc64le",
    "s390x": "/usr/bin/qemu-system-s390x",
    "riscv64": "/usr/bin/qemu-system-riscv64", "riscv32": "/usr/bin/qemu-system-riscv32",
    **{arch: "/usr/bin/" + binary for arch, binary in EMULATORS.items()
       if arch in MISC},
}


def emulator_path(arch: str, emulator: str | None) -> str | None:
    """The emulator libvirt runs: ``<emulator>``'s path, else the arch's default (None: libvirt
    has none for the arch, "No emulator found for arch ...")."""
    return emulator or DEFAULT_EMULATORS.get(arch)


def unsupported(arch: str, machine: str, path: str) -> str | None:
    """libvirt's refusal when the emulator at ``path`` lacks the guest arch or the machine
    name (a dict and a set lookup), None when it has both.  An emulator path pciplan does not
    know is given the machines of the arch's default and not checked further."""
    emu = EMULATOR_MACHINES.get(path)
    if emu is None:
        emu = EMULATOR_MACHINES.get(DEFAULT_EMULATORS.get(arch, ""))
        if emu is None:
            return None
    elif arch not in emu.arches:
        return f"Emulator '{path}' does not support arch '{arch}'"
    if machine in emu.machines:
        return None
    return f"Emulator '{path}' does not support machine type '{machine}'"


def find(arch: str, machine: str) -> Machine | None:
    """The row for ``<type arch=... machine=...>``, or None when pciplan does not know it."""
    for arches, names, row in _RULES:
        if arch in arches and names.match(machine):
            return row
    return None


def default_machine(arch: str) -> str | None:
    """The machine libvirt 9.0 picks when ``machine=`` is omitted: QEMU 7.2's default, or
    where the emulator has none (ARM, RISC-V) the first it lists: boards without PCI."""
    return {"x86_64": "pc", "i686": "pc", "aarch64": "integratorcp", "armv7l": "integratorcp",
            "armv6l": "integratorcp", "riscv64": "spike", "riscv32": "spike",
            "ppc64": "pseries", "ppc64le": "pseries", "s390x": "s390-ccw-virtio",
            "ppc": "g3beige", "alpha": "clipper", "sh4": "shix", "sh4eb": "shix", "xtensa": "sim",
            "xtensaeb": "sim", "m68k": "mcf5208evb", "cris": "axis-dev88",
            "microblaze": "petalogix-s3adsp1800", "microblazeel": "petalogix-s3adsp1800"}.get(arch)


def canonical(arch: str, machine: str) -> str:
    """``pc`` -> ``pc-i440fx-7.2`` etc.; other names are returned unchanged."""
    for (arches, alias), full in ALIASES.items():
        if arch in arches and machine == alias:
            return full
    return machine
