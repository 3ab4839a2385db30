"""TABLE: what each QEMU PCI device looks like from inside a Linux guest.

For every QEMU ``-device`` model that a plan can produce: the PCI vendor and
device IDs the guest reads from config space (any of them is "of the expected
kind"), a short name for the report, and the Linux driver modules that bind to
it (loaded with their dependencies in the guest; ``()`` when the driver is
built in or there is none).

virtio devices come in two ID flavours: *transitional* (0x1000 + n) and
*modern* (0x1040 + virtio device id).  QEMU 7.2's ``disable-legacy=auto``
picks modern-only behind a PCI Express port and transitional elsewhere, so a
plain ``virtio-*-pci`` accepts both; the ``-transitional`` and
``-non-transitional`` variants accept only their own.
"""

from __future__ import annotations

from dataclasses import dataclass

REDHAT = 0x1AF4      # virtio, ivshmem
QUMRANET = 0x1B36    # QEMU's own devices (Red Hat)
INTEL = 0x8086


@dataclass(frozen=True)
class Kind:
    ids: tuple[tuple[int, int], ...]
    modules: tuple[str, ...] = ()
    #: a virtio device (must use MSI-X)
    virtio: bool = False
    #: a PCI bridge / port (its secondary bus maps the plan's bus index)
    bridge: bool = False
    #: a host bridge that roots a new bus (pxb): the bus number is its busNr
    expander: bool = False


def _virtio(transitional: int | None, modern: int, *modules: str) -> dict[str, Kind]:
    """The three spellings of one virtio device kind (the name is filled in below)."""
    mods = ("virtio_pci",) + modules
    both = ((REDHAT, modern),) if transitional is None else ((REDHAT, transitional), (REDHAT, modern))
    out = {"": Kind(both, mods, virtio=True),
           "-non-transitional": Kind(((REDHAT, modern),), mods, virtio=True)}
    if transitional is not None:
        out["-transitional"] = Kind(((REDHAT, transitional),), mods, virtio=True)
    return out


_VIRTIO = {
    # qemu name stem: (transitional id, modern id, driver modules)
    "virtio-net-pci": (0x1000, 0x1041, ("virtio_net",)),
    "virtio-blk-pci": (0x1001, 0x1042, ("virtio_blk",)),
    "virtio-balloon-pci": (0x1002, 0x1045, ("virtio_balloon",)),
    "virtio-serial-pci": (0x1003, 0x1043, ("virtio_console",)),
    "virtio-scsi-pci": (0x1004, 0x1048, ("virtio_scsi",)),
    "virtio-rng-pci": (0x1005, 0x1044, ("virtio_rng",)),
    "virtio-9p-pci": (0x1009, 0x1049, ("9pnet_virtio",)),
    "vhost-scsi-pci": (0x1004, 0x1048, ("virtio_scsi",)),
    "vhost-user-blk-pci": (0x1001, 0x1042, ("virtio_blk",)),
    "vhost-user-scsi-pci": (0x1004, 0x1048, ("virtio_scsi",)),
    "vhost-vsock-pci": (None, 0x1053, ("vmw_vsock_virtio_transport",)),
    "vhost-user-vsock-pci": (None, 0x1053, ("vmw_vsock_virtio_transport",)),
    "vhost-user-fs-pci": (None, 0x105A, ("virtiofs",)),
    "virtio-input-host-pci": (None, 0x1052, ("virtio_input",)),
    "virtio-keyboard-pci": (None, 0x1052, ("virtio_input",)),
    "virtio-mouse-pci": (None, 0x1052, ("virtio_input",)),
    "virtio-tablet-pci": (None, 0x1052, ("virtio_input",)),
    "virtio-gpu-pci": (None, 0x1050, ("virtio_gpu",)),
    "virtio-gpu-gl-pci": (None, 0x1050, ("virtio_gpu",)),
    "virtio-vga": (None, 0x1050, ("virtio_gpu",)),
    "virtio-vga-gl": (None, 0x1050, ("virtio_gpu",)),
    "virtio-iommu-pci": (None, 0x1057, ()),
    "virtio-mem-pci": (None, 0x1058, ("virtio_mem",)),
    "virtio-pmem-pci": (None, 0x105B, ("virtio_pmem",)),
    "virtio-crypto-pci": (None, 0x1054, ("virtio_crypto",)),
}

KINDS: dict[str, Kind] = {}
for _stem, (_t, _m, _mods) in _VIRTIO.items():
    for _suffix, _kind in _virtio(_t, _m, *_mods).items():
        KINDS.setdefault(_stem + _suffix, _kind)

KINDS.update({
    # bridges and ports (pcieport and shpchp are built into Debian's kernels)
    "pcie-root-port": Kind(((QUMRANET, 0x000C),), bridge=True),
    "ioh3420": Kind(((INTEL, 0x3420),), bridge=True),
    "pci-bridge": Kind(((QUMRANET, 0x0001),), bridge=True),
    "pci-bridge-seat": Kind(((QUMRANET, 0x000A),), bridge=True),
    "pcie-pci-bridge": Kind(((QUMRANET, 0x000E),), bridge=True),
    "x3130-upstream": Kind(((0x104C, 0x8232),), bridge=True),
    "xio3130-downstream": Kind(((0x104C, 0x8233),), bridge=True),
    "i82801b11-bridge": Kind(((INTEL, 0x244E),), bridge=True),
    "pxb": Kind(((QUMRANET, 0x0009),), expander=True),
    "pxb-pcie": Kind(((QUMRANET, 0x000B),), expander=True),
    # USB
    "qemu-xhci": Kind(((QUMRANET, 0x000D),), ("xhci_pci",)),
    "nec-usb-xhci": Kind(((0x1033, 0x0194),), ("xhci_pci",)),
    "ich9-usb-ehci1": Kind(((INTEL, 0x293A),), ("ehci_pci",)),
    "ich9-usb-ehci2": Kind(((INTEL, 0x293C),), ("ehci_pci",)),
    "usb-ehci": Kind(((INTEL, 0x24CD),), ("ehci_pci",)),
    "ich9-usb-uhci1": Kind(((INTEL, 0x2934),), ("uhci_hcd",)),
    "ich9-usb-uhci2": Kind(((INTEL, 0x2935),), ("uhci_hcd",)),
    "ich9-usb-uhci3": Kind(((INTEL, 0x2936),), ("uhci_hcd",)),
    "ich9-usb-uhci4": Kind(((INTEL, 0x2937),), ("uhci_hcd",)),
    "ich9-usb-uhci5": Kind(((INTEL, 0x2938),), ("uhci_hcd",)),
    "ich9-usb-uhci6": Kind(((INTEL, 0x2939),), ("uhci_hcd",)),
    "piix3-usb-uhci": Kind(((INTEL, 0x7020),), ("uhci_hcd",)),
    "piix4-usb-uhci": Kind(((INTEL, 0x7112),), ("uhci_hcd",)),
    "vt82c686b-usb-uhci": Kind(((0x1106, 0x3038),), ("uhci_hcd",)),
    "pci-ohci": Kind(((0x106B, 0x003F),), ("ohci_pci",)),
    # network
    "e1000": Kind(((INTEL, 0x100E),), ("e1000",)),
    "e1000-82544gc": Kind(((INTEL, 0x100C),), ("e1000",)),
    "e1000-82545em": Kind(((INTEL, 0x100F),), ("e1000",)),
    "e1000e": Kind(((INTEL, 0x10D3),), ("e1000e",)),
    "rtl8139": Kind(((0x10EC, 0x8139),), ("8139cp",)),
    "vmxnet3": Kind(((0x15AD, 0x07B0),), ("vmxnet3",)),
    "pcnet": Kind(((0x1022, 0x2000),), ("pcnet32",)),
    "ne2k_pci": Kind(((0x10EC, 0x8029),), ("ne2k_pci",)),
    # storage
    "ich9-ahci": Kind(((INTEL, 0x2922),), ("ahci",)),
    "piix3-ide": Kind(((INTEL, 0x7010),), ("ata_piix",)),
    "piix4-ide": Kind(((INTEL, 0x7111),), ("ata_piix",)),
    "lsi53c895a": Kind(((0x1000, 0x0012),), ("sym53c8xx",)),
    "lsi53c810": Kind(((0x1000, 0x0001),), ("sym53c8xx",)),
    "mptsas1068": Kind(((0x1000, 0x0054),), ("mptsas",)),
    "megasas": Kind(((0x1000, 0x0060),), ("megaraid_sas",)),
    "megasas-gen2": Kind(((0x1000, 0x0079),), ("megaraid_sas",)),
    "pvscsi": Kind(((0x15AD, 0x07C0),), ("vmw_pvscsi",)),
    "am53c974": Kind(((0x1022, 0x2020),), ("am53c974",)),
    "dc390": Kind(((0x1022, 0x2020),), ("am53c974",)),
    # sound
    "intel-hda": Kind(((INTEL, 0x2668),), ("snd_hda_intel",)),
    "ich9-intel-hda": Kind(((INTEL, 0x293E),), ("snd_hda_intel",)),
    "AC97": Kind(((INTEL, 0x2415),), ("snd_intel8x0",)),
    "ES1370": Kind(((0x1274, 0x5000),), ("snd_ens1370",)),
    # video
    "VGA": Kind(((0x1234, 0x1111),), ("bochs",)),
    "bochs-display": Kind(((0x1234, 0x1111),), ("bochs",)),
    "secondary-vga": Kind(((0x1234, 0x1111),), ("bochs",)),
    "cirrus-vga": Kind(((0x1013, 0x00B8),), ("cirrus",)),
    "vmware-svga": Kind(((0x15AD, 0x0405),), ("vmwgfx",)),
    "qxl-vga": Kind(((QUMRANET, 0x0100),), ("qxl",)),
    "qxl": Kind(((QUMRANET, 0x0100),), ("qxl",)),
    "ramfb": Kind(()),
    # misc
    "i6300esb": Kind(((INTEL, 0x25AB),), ("i6300esb",)),
    "ivshmem-plain": Kind(((REDHAT, 0x1110),)),
    "ivshmem-doorbell": Kind(((REDHAT, 0x1110),)),
    "ivshmem": Kind(((REDHAT, 0x1110),)),
    "pci-serial": Kind(((QUMRANET, 0x0002),)),
    "pci-serial-2x": Kind(((QUMRANET, 0x0003),)),
    "pci-serial-4x": Kind(((QUMRANET, 0x0004),)),
    "vfio-pci": Kind(()),
})

#: functions the machine creates by itself on bus 0, whether or not the plan lists them:
#: (slot, function, vendor, device) -> (vendor, device, name)
CHIPSET: dict[tuple[int, int, int, int], tuple[int, int, str]] = {}
for _slot, _fn, _v, _d, _name in (
        (0x00, 0, INTEL, 0x29C0, "Q35 host bridge"),
        (0x1F, 0, INTEL, 0x2918, "ICH9 LPC/ISA bridge"),
        (0x1F, 2, INTEL, 0x2922, "ICH9 AHCI"),
        (0x1F, 3, INTEL, 0x2930, "ICH9 SMBus"),
        (0x00, 0, INTEL, 0x1237, "i440FX host bridge"),
        (0x01, 0, INTEL, 0x7000, "PIIX3 ISA bridge"),
        (0x01, 1, INTEL, 0x7010, "PIIX3 IDE"),
        (0x01, 3, INTEL, 0x7113, "PIIX4 ACPI/SMBus"),
        (0x00, 0, QUMRANET, 0x0008, "generic PCIe host bridge")):
    CHIPSET[(_slot, _fn, _v, _d)] = (_v, _d, _name)


def chipset_name(slot: int, function: int, vendor: int, device: int) -> str | None:
    """The name of a machine-made function at 00:slot.function with these IDs, or None."""
    hit = CHIPSET.get((slot, function, vendor, device))
    return hit[2] if hit else None


def kind(qemu_model: str) -> Kind | None:
    return KINDS.get(qemu_model)


def all_modules() -> set[str]:
    """Every driver module the table names (the guest image carries them and their deps)."""
    return {m for k in KINDS.values() for m in k.modules}


def vendor_name(vendor: int) -> str:
    return {REDHAT: "Red Hat (virtio)", QUMRANET: "Red Hat (QEMU)", INTEL: "Intel"}.get(vendor, f"{vendor:04x}")
