"""Hot-plug: where libvirt 9.0 puts a device attached to a running guest.

Controllers cannot be hot-plugged, so a new device can only go into a slot
that already exists and is empty.  libvirt's rule (``virDomainPCIAddressEnsureAddr``)
is the cold-plug search with one more requirement: the bus must be
hot-pluggable.  So a PCI Express device needs an empty ``pcie-root-port`` or
``pcie-switch-downstream-port``, a conventional PCI device a free slot of a
``pci-root`` (pc, pSeries PHBs), ``pci-bridge``, ``pcie-to-pci-bridge`` or
``pci-expander-bus``; ``pcie-root`` and ``dmi-to-pci-bridge`` never take one,
nor does a port with ``<target hotplug='off'/>``.  Only function 0 of an
empty slot is used.

Where libvirt would pick a bus QEMU then refuses to hot-plug into (a
``pci-expander-bus``; pc's root bus without ACPI), pciplan takes the next slot
that works (``hotplug_set``).  A SCSI disk brings the SCSI controllers libvirt
hot-plugs first (``Placement.first``).  What libvirt or QEMU refuse is refused
in their words and in libvirt's order (``place``): the device's own validation
as libvirt parses it, its compatibility with the running guest (USB bus, user
alias, memory room), the kinds and buses that take no hot-plug, the host side
libvirt sets up first (a NIC's virtual network, a host PCI device's back end),
then the slot, then what fails once the device has it (a drive without a medium,
a bridge or device file the host lacks, QEMU's view of the device: its NIC
models, a PCI-only device at a CCW address).  What depends on the guest's host
is asked of ``Options.host`` (``pciplan hotplug`` asks this machine only for a
guest of a local daemon).

``place(plan, device)`` answers with the planner's own knowledge: the
device's class (``devices.classify`` via ``Assigner.flags``) and the final
address set of the plan of the running domain (``Plan.addresses``).  It is
pure: the plan is not changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from . import (defaults, devices, disks, filesystems, hostcaps, hostpci, hotplug, machines,
               memdevs, transports, validate)
from .addrset import AddressSet
from .address import PciAddress
from .connect import Connect, kind_name
from .defaults import Guest
from .domain import Address, Controller, Device, Domain
from .errors import CapacityError, HostError, PlanError
from .planner import Assigner, Options, Plan

#: device elements libvirt 9.0 can attach to a running QEMU guest (qemuDomainAttachDeviceLive)
LIVE_ATTACHABLE = frozenset({"disk", "controller", "lease", "interface", "hostdev", "redirdev",
                             "serial", "parallel", "channel", "console", "rng", "memory", "shmem",
                             "watchdog", "input", "vsock", "filesystem"})
#: the only controller type libvirt hot-plugs
LIVE_CONTROLLER_TYPES = frozenset({"scsi"})
#: the disk buses QEMU hot-plugs no disk onto (libvirt 9.0 asks it all the same)
NO_HOTPLUG_DISK_BUSES = frozenset({"ide", "sata"})
#: the input buses libvirt 9.0 hot-plugs onto (qemuDomainAttachInputDevice)
HOTPLUG_INPUT_BUSES = frozenset({"usb", "virtio"})
#: the <interface> types libvirt 9.0 cannot hot-plug, refused once the NIC has its address
#: ("hotplug of interface type of mcast is not implemented yet")
NO_HOTPLUG_INTERFACE_TYPES = frozenset({"server", "client", "mcast", "udp", "null", "vds", "internal"})
#: the disk types whose file or block device libvirt opens before it looks for a slot
OPENED_DISK_TYPES = frozenset({"file", "block"})
#: TABLE: a NIC's host interface libvirt uses once the NIC has its slot, by NIC type: where
#: the NIC names it (its NetFacts field, and the attribute there) and libvirt's words when
#: the host has none of that name (an ethernet NIC's only when unmanaged)
HOST_NIC_DEVICES = {
    "bridge": ("source", "bridge", "Cannot get interface MTU on '{}': No such device"),
    "direct": ("source", "dev", "Unable to get index for interface {}: No such device"),
    "ethernet": ("target", "dev", "target managed='no' but specified dev doesn't exist"),
}
#: the only watchdog model libvirt 9.0 hot-plugs (qemuDomainAttachWatchdog)
HOTPLUG_WATCHDOG_MODELS = frozenset({"i6300esb"})
#: the device kinds libvirt 9.0's hot-plug does not know at all ("unknown device type")
UNKNOWN_DEVICE_TYPES = frozenset({"crypto", "pstore", "redirfilter"})
#: libvirt's names for device kinds in "live attach of device '...'" (virDomainDeviceType)
DEVICE_TYPE_NAMES = {"interface": "net", "filesystem": "fs", "serial": "chr", "parallel": "chr",
                     "channel": "chr", "console": "chr"}


@dataclass
class Placement:
    """Where a hot-plugged device goes."""

    device: Device
    #: the PCI address libvirt gives it; None when the device does not use PCI here
    address: PciAddress | None
    #: what the device needs from its bus (``Connect.NONE`` when it is not PCI)
    flags: Connect = Connect.NONE
    #: why the device needs no PCI address (its transport), when ``address`` is None
    transport: str | None = None
    #: how many empty hot-pluggable slots take the device (before it is placed)
    room: int = 0
    #: things that will go wrong beyond libvirt's choice (QEMU's own limits)
    warnings: list[str] = field(default_factory=list)
    #: the devices libvirt hot-plugs first for this one (the SCSI controllers of a SCSI disk)
    first: list["Placement"] = field(default_factory=list)


def check_attachable(dev: Device) -> None:
    """libvirt's refusals of a live attach that have nothing to do with free slots."""
    if dev.tag in UNKNOWN_DEVICE_TYPES:
        raise PlanError(f"unknown device type '{dev.tag}'", dev.describe(), kind="unsupported")
    if dev.tag not in LIVE_ATTACHABLE:
        name = DEVICE_TYPE_NAMES.get(dev.tag, dev.tag)
        raise PlanError(f"live attach of device '{name}' is not supported", dev.describe(),
                        kind="unsupported")
    if isinstance(dev, Controller) and dev.type not in LIVE_CONTROLLER_TYPES:
        raise PlanError(f"'{dev.type}' controller cannot be hot plugged.", dev.describe(),
                        kind="unsupported")


def _disk_device(disk: Device) -> str:
    return disk.disk.device if disk.disk is not None else "disk"


def check_conflicts(plan: Plan, dev: Device) -> Device | None:
    """libvirt's refusals of a device that clashes with one the running guest has: a disk
    target (``virDomainDefCompatibleDevice``), a controller's type and index, a second
    watchdog (``qemuDomainAttachControllerLive``, ``qemuDomainAttachWatchdog``).  A MAC,
    an ivshmem name or an RNG the guest already has are no clash to libvirt.

    A cdrom or floppy at the target of one the guest has is no new device: libvirt
    changes that drive's medium.  Returns that drive."""
    dom = plan.domain
    if dev.tag == "disk":
        dst = dev.target.get("dev")
        old = next((d for d in dom.devices if d.tag == "disk" and dst and d.target.get("dev") == dst), None)
        if old is not None and _disk_device(dev) in ("cdrom", "floppy"):
            if _disk_device(old) not in ("cdrom", "floppy"):
                raise PlanError(f"a {_disk_device(dev)} at the target of {old.describe()} changes that "
                                "drive's medium (libvirt's hot-plug of a cdrom or floppy), and QEMU "
                                "refuses it: the drive is not removable", dev.describe(), kind="internal")
            return old
        if old is not None:
            raise PlanError(f"target '{dst}' duplicated for disk sources '{old.attrs.get('source', '<null>')}' "
                            f"and '{dev.attrs.get('source', '<null>')}'", dev.describe())
    elif isinstance(dev, Controller):
        if dev.index is not None and plan.guest.find_controller(dev.type, dev.index) is not None:
            raise PlanError(f"target {dev.type}:{dev.index} already exists", dev.describe(), kind="internal")
    elif dev.tag == "watchdog" and any(d.tag == "watchdog" for d in dom.devices):
        raise PlanError("domain already has a watchdog", dev.describe(), kind="unsupported")
    return None


def _is_usb(dev: Device) -> bool:
    """A device on the guest's USB bus, as libvirt's compatibility check sees one."""
    return ((dev.tag in ("disk", "input") and dev.bus == "usb") or (dev.tag == "hub" and dev.type == "usb")
            or (dev.tag == "hostdev" and dev.type == "usb"))


def _has_usb(plan: Plan) -> bool:
    """A USB bus: a USB controller of a model other than 'none'."""
    return any(c.type == "usb" and c.model != "none" for c in plan.guest.controllers)


def check_usb(plan: Plan, dev: Device) -> None:
    """libvirt's first compatibility check of a USB device (or USB redirector):
    the running guest must have a USB bus."""
    if _has_usb(plan):
        return
    if _is_usb(dev):
        raise PlanError("Device configuration is not compatible: Domain has no USB bus support",
                        dev.describe(), kind="unsupported")
    if dev.tag == "redirdev" and (dev.bus or "usb") == "usb":
        raise PlanError("cannot add redirected USB device: USB is disabled for this domain",
                        dev.describe(), kind="unsupported")


def check_alias(plan: Plan, dev: Device) -> None:
    """libvirt's compatibility check of a user alias (``ua-``): no device of the running
    guest may have it."""
    alias = dev.attrs.get("alias")
    if alias and any(d.attrs.get("alias") == alias for d in plan.domain.devices):
        raise PlanError(f"non unique alias detected: {alias}", dev.describe(), kind="unsupported")


def check_ports(plan: Plan, dev: Device) -> None:
    """libvirt's refusals of a character device whose port the running guest lacks: a
    USB serial port without USB, a virtio one without a virtio-serial controller
    (libvirt adds none on hot-plug)."""
    if dev.tag == "serial" and dev.target.get("type") == "usb-serial" and not _has_usb(plan):
        raise PlanError("No free USB ports", dev.describe(), kind="internal")
    if dev.tag in ("channel", "console") and dev.target.get("type") == "virtio" and \
            not any(c.type == "virtio-serial" for c in plan.guest.controllers):
        raise PlanError("no virtio-serial controllers are available", dev.describe(), kind="internal")


def prepare(plan: Plan, dev: Device) -> Device:
    """The device as libvirt sees it after parsing: default models and the
    transports that take it off PCI (CCW on s390x, spapr-vio on pSeries, but over a PCI
    address written).

    Hot-plug never picks virtio-mmio: an ARM/RISC-V guest with a PCIe root gets
    the device on PCI."""
    dom = plan.domain
    if dev.tag == "input" and dev.ref is not None and dev.ref.get("bus") is None:
        # (the device's own document has no <os>: its bus is the running guest's default)
        dev.bus = devices.default_input_bus(dev.type, dom.arch, dom.conf.os_type if dom.conf else "hvm")
        if dev.bus == "usb" and dev.address is not None and dev.address.type != "usb":
            raise PlanError("Invalid address for a USB device", dev.describe())  # (the parser's)
    machine = plan.machine._replace(virtio_mmio=False)
    scratch = Guest(Domain(dom.arch, dom.machine, dom.virt_type, devices=[dev]), machine)
    written = dev.address
    defaults.fill_models(scratch)
    transports.mark_non_pci_transports(scratch)
    if written is not None and written.is_pci and dev.address is not None and dev.address.type == "spapr-vio":
        # libvirt's hot-plug keeps the PCI address written (its spapr-vio pass runs at define only)
        dev.address = written
    return dev


def place(plan: Plan, dev: Device, options: Options | None = None) -> Placement:
    """Where libvirt 9.0 would hot-plug ``dev`` into the running guest of ``plan``.

    libvirt's order: it parses and validates the device (:func:`check_parsed`), checks it
    against the running guest (:func:`check_compatible`), refuses what it or QEMU cannot
    hot-plug (:func:`check_live`), sets up the host side it needs first (:func:`check_prepared`),
    then looks for a slot, and fails on what it meets once the device has one
    (:func:`check_plugged`: the medium, the host side, QEMU's view of the device).

    Raises ``PlanError`` when libvirt refuses the attach for another reason and
    ``CapacityError`` when no empty hot-pluggable slot takes the device.
    """
    host = _host(options)
    written = dev.address
    prepare(plan, dev)
    transport = dev.address
    dev.address = written  # libvirt validates the device as written: CCW and spapr-vio come later
    check_parsed(plan, dev, options)
    dev.address = transport
    check_compatible(plan, dev)
    if check_conflicts(plan, dev) is not None:
        return Placement(dev, None, transport="a medium change of the drive the guest has")
    check_live(plan, dev, host)
    check_prepared(dev, host)
    s = hotplug_set(plan)
    first = []
    for c in implicit_scsi_controllers(plan, dev):
        # libvirt hot-plugs the SCSI controllers a SCSI disk needs before the disk
        first.append(_place_in(plan, s, prepare(plan, c), options))
    try:
        p = _place_in(plan, s, dev, options)
    except DeviceAddRefusal as refusal:
        # QEMU refuses to plug the device where libvirt puts it: libvirt's own steps come first
        check_plugged(plan, Placement(dev, refusal.address), host, qemu=False)
        if dev.tag == "interface" and refusal.address is not None:
            check_qemu_nic(plan, dev, refusal.address)  # (QEMU looks the device up before the bus)
        raise
    p.first = first
    check_plugged(plan, p, host)
    return p


def check_prepared(dev: Device, host: hostcaps.Host) -> None:
    """What libvirt sets up on the host before it looks for a slot: a NIC's virtual
    network, a host PCI device's back end."""
    check_network(dev, host)
    check_passthrough(dev, host)


def check_plugged(plan: Plan, p: Placement, host: hostcaps.Host, qemu: bool = True) -> None:
    """What fails once the device has its slot: a drive without a medium, the host side
    (:func:`check_host`), a NIC type libvirt does not hot-plug, then (``qemu``) QEMU's NIC
    models."""
    dev = p.device
    check_medium(dev)
    check_host(dev, host)
    if dev.tag == "interface" and dev.type in NO_HOTPLUG_INTERFACE_TYPES:
        raise PlanError(f"hotplug of interface type of {dev.type} is not implemented yet", dev.describe(),
                        kind="unsupported")
    if qemu and dev.tag == "interface" and (p.address is not None or p.transport == "ccw"):
        check_qemu_nic(plan, dev, p.address)


class DeviceAddRefusal(PlanError):
    """QEMU's refusal of the device libvirt hot-plugs (its ``device_add``), at ``address``
    (None: not a PCI one QEMU looks up)."""

    def __init__(self, reason: str, element: str, address: PciAddress | None = None) -> None:
        super().__init__(reason, element, kind="internal")
        self.address = address


def check_parsed(plan: Plan, dev: Device, options: Options | None) -> None:
    """libvirt validates a hot-plugged device as it parses it, as a defined one: the
    checks of ``validate_late`` for its kind, a disk's, a serial port's (its post-parse
    one first), a memory device's (pSeries aligned first)."""
    validate.check_device(plan.guest, dev, _host(options))
    if dev.tag == "disk":
        check_disk(plan, dev)
    elif dev.tag == "serial":
        validate.post_parse_serial(dev)
        validate.check_serial(plan.guest, dev)
    elif dev.tag == "memory":
        if plan.domain.arch in machines.PPC64:
            memdevs.align_ppc64(dev)
        memdevs.check(plan.guest, dev, _host(options))


def check_compatible(plan: Plan, dev: Device) -> None:
    """libvirt's checks of the device against the running guest: a user alias, its USB
    bus, whether the kind can be live-attached at all, a memory device's room
    (``<maxMemory>``, then libvirt's hot-plug checks and QEMU's)."""
    check_alias(plan, dev)  # (libvirt's own check, before the compatibility ones)
    check_usb(plan, dev)
    check_attachable(dev)
    if dev.tag == "memory":
        validate.check_memory_attach(plan.guest, dev)
        memdevs.check_hotplug(plan.guest, dev)


def check_live(plan: Plan, dev: Device, host: hostcaps.Host = hostcaps.ANY_HOST) -> None:
    """What libvirt or QEMU refuse to hot-plug of a kind they attach: serial and parallel
    ports on buses without hot-plug, a console standing for a serial port, floppies, a
    disk whose file or block device ``host`` lacks, IDE and SATA disks, 9p shares,
    watchdogs other than i6300esb, a character device whose port the guest lacks."""
    if dev.tag == "serial":
        target = devices.serial_target_type(dev, plan.domain.arch in machines.X86, plan.machine.family)
        check_fixed_bus(dev, NO_HOTPLUG_BUSES.get(target or ""))
    elif dev.tag == "parallel":
        check_fixed_bus(dev, NO_HOTPLUG_BUSES["parallel"])
    elif dev.tag == "console" and (dev.target.get("type") or
                                   ("sclp" if plan.domain.arch in machines.S390 else "serial")) == "serial":
        # (libvirt hot-plugs a console standing for no serial port only)
        raise PlanError("unsupported console target type serial", dev.describe(), kind="unsupported")
    elif dev.tag == "disk":
        if _disk_device(dev) == "floppy":
            raise PlanError("floppy device hotplug isn't supported", dev.describe(), kind="unsupported")
        path = disks.local_path(dev) if (dev.type or "file") in OPENED_DISK_TYPES else None
        if path is not None and not host.has_file(path):
            raise HostError(f"Cannot access storage file '{path}': No such file or directory", dev.describe())
        if disks.empty_source(dev):
            return  # (refused once its controllers and slot are found: ``check_medium``)
        if dev.bus in NO_HOTPLUG_DISK_BUSES:
            ctrl = (disks.drive_numbers(dev) or (0,))[0]
            builtin = plan.machine.ide if dev.bus == "ide" else plan.machine.sata and ctrl == 0
            if not builtin and plan.guest.find_controller(dev.bus, ctrl) is None:
                # (libvirt names the drive's controller as it builds QEMU's device: none; the
                # machine's built-in one, pc's IDE or q35's first AHCI, needs no name)
                raise PlanError(f"Could not find {dev.bus} controller with index {ctrl} required for device",
                                dev.describe(), kind="internal")
            raise PlanError(f"unable to execute QEMU command 'device_add': Bus '{drive_bus(dev)}' does not "
                            f"support hotplugging (libvirt 9.0 asks QEMU to hot-plug the {dev.bus} disk, and "
                            "QEMU's IDE and AHCI buses take none)", dev.describe(), kind="internal")
    elif dev.tag == "filesystem" and (dev.facts.driver if isinstance(dev.facts, filesystems.FsFacts)
                                      else {}).get("type") != "virtiofs":
        raise PlanError("only virtiofs filesystems can be hotplugged", dev.describe(), kind="unsupported")
    elif dev.tag == "input" and dev.bus not in HOTPLUG_INPUT_BUSES:
        raise PlanError(f"input device on bus '{dev.bus or 'none'}' cannot be hot plugged.", dev.describe(),
                        kind="unsupported")
    elif dev.tag == "watchdog" and dev.model not in HOTPLUG_WATCHDOG_MODELS:
        raise PlanError(f"hotplug of watchdog of model {dev.model} is not supported", dev.describe(),
                        kind="unsupported")
    check_ports(plan, dev)


def check_network(dev: Device, host: hostcaps.Host) -> None:
    """A NIC's virtual network is looked up before its slot: it must be there and active."""
    if dev.tag == "interface" and dev.type == "network" and dev.net is not None:
        problem = host.network_problem(dev.net.source.get("network", ""))
        if problem is not None:
            raise HostError(problem, dev.describe())


def check_medium(dev: Device) -> None:
    """libvirt 9.0 cannot hot-plug a drive without a medium: it hands QEMU a block device
    without a file name (after the drive's controllers and slot are found)."""
    if dev.tag == "disk" and disks.empty_source(dev):
        raise PlanError("argument key 'filename' must not have null value", dev.describe(), kind="internal")


def check_passthrough(dev: Device, host: hostcaps.Host) -> None:
    """A host PCI device (or a NIC of one) is prepared before its slot is looked for: its
    back end must run on the guest's host (legacy KVM assignment never does), a NIC's must
    be an SR-IOV virtual function there, and QEMU plugs a VFIO one only (Xen's is refused)."""
    if dev.tag == "hostdev" and dev.type == "pci" and dev.attrs.get("mode") != "capabilities":
        backend = dev.hostdev.backend if dev.hostdev is not None else None
    elif dev.tag == "interface" and dev.type == "hostdev" and dev.source.get("type", "pci") == "pci":
        backend = (dev.net.driver if dev.net is not None else {}).get("name")
    else:
        return
    if backend == "kvm":
        raise PlanError("host doesn't support legacy PCI passthrough", dev.describe(), kind="unsupported")
    if backend in (None, "vfio") and not host.vfio_runs():
        words = "VFIO PCI passthrough" if backend else "passthrough of host PCI devices"
        raise HostError(f"host doesn't support {words}", dev.describe())
    vf = hostpci.virtual_function_path(dev.source) if dev.tag == "interface" else None
    if vf is not None and not host.has_file(vf):
        raise HostError("Interface type hostdev is currently supported on SR-IOV Virtual Functions only",
                        dev.describe())
    if backend not in (None, "vfio"):  # (prepared: then only VFIO is plugged)
        raise PlanError(f"QEMU does not support device assignment mode '{backend}'", dev.describe(),
                        kind="unsupported")


def check_host(dev: Device, host: hostcaps.Host) -> None:
    """What libvirt opens on the host for the device once it has its address: VFIO for a
    mediated device, a NIC's host side, a vsock's vhost device, a passthrough input's
    event device."""
    if dev.tag == "hostdev" and dev.type == "mdev" and not host.vfio_runs():
        raise HostError("Mediated host device assignment requires VFIO support", dev.describe())
    if dev.tag == "interface":
        check_host_nic(dev, host)
    if dev.tag == "vsock" and not host.has_file(hostcaps.VHOST_VSOCK_DEVICE):
        raise HostError("unable to open vhost-vsock device", dev.describe())
    path = dev.source.get("evdev") if dev.tag == "input" and dev.type == "passthrough" else None
    if path and not host.has_file(path):
        raise HostError(f"Path '{path}' is not accessible: No such file or directory", dev.describe())


def check_host_nic(nic: Device, host: hostcaps.Host) -> None:
    """The host side of a NIC, set up once it has its slot: a bridge or host interface
    that is there, an unmanaged tap device that exists (``HOST_NIC_DEVICES``)."""
    row = HOST_NIC_DEVICES.get(nic.type or "")
    net = nic.net
    if row is None or net is None or (nic.type == "ethernet" and net.managed != "no"):
        return
    where, attr, words = row
    name = net.source.get(attr) if where == "source" else net.target_dev
    if name and not host.has_file(hostcaps.net_device(name)):
        raise HostError(words.format(name), nic.describe())


def check_qemu_nic(plan: Plan, nic: Device, address: PciAddress | None) -> None:
    """QEMU's refusal of a NIC model it has no device for (libvirt 9.0 passes any model it
    does not name itself on to QEMU as the device's name), of one of another bus on PCI,
    or of a PCI one at a CCW address (``address`` None: s390x's hot-plug gives one)."""
    model = nic.model
    arch = plan.domain.arch
    problem = devices.qemu_nic_problem(nic, arch)
    prefix = "unable to execute QEMU command 'device_add': "
    if address is None and model in devices.QEMU_PCI_ONLY_VIRTIO_NICS:
        # a CCW address (s390x) on a device QEMU has for PCI alone
        raise PlanError(f"{prefix}Property '{model}.devno' not found", nic.describe(), kind="internal")
    if problem is None:
        return
    if problem == "unknown":
        alias = devices.QEMU_NIC_ALIASES.get(model or "")
        name = f"'{model}' (alias '{alias}')" if alias else f"'{model}'"
        raise PlanError(f"{prefix}{name} is not a valid device model name", nic.describe(), kind="internal")
    if problem == "not-pci" and address is not None and arch not in machines.S390:
        bus = next((b for b in plan.addresses.buses if b.index == address.bus), None)
        kind = "PCIE" if bus is not None and bus.accepts & Connect.PCIE_DEVICE else "PCI"
        raise PlanError(f"{prefix}Device '{model}' can't go on {kind} bus", nic.describe(),
                        kind="internal")


def drive_bus(disk: Device) -> str:
    """QEMU's name of the IDE or AHCI bus an IDE or SATA disk goes on (its drive address,
    ``disks.drive_numbers``): an IDE controller's bus, or one of an AHCI controller's ports
    (the first controller is q35's built-in 'ide')."""
    ctrl, bus, _, unit = disks.drive_numbers(disk) or (0, 0, 0, 0)
    if disk.bus == "ide":
        return f"ide.{bus}"
    return f"ide.{unit}" if ctrl == 0 else f"sata{ctrl}.{unit}"


def check_disk(plan: Plan, disk: Device) -> None:
    """libvirt validates a hot-plugged disk as a defined one (its generic checks, its
    QEMU driver's: a PCI address on a SCSI disk, ...)."""
    facts = disk.disk if disk.disk is not None else disks.DiskFacts()
    disks.check_generic(plan.guest, disk, facts)
    disks.check_qemu(plan.guest, disk, facts)


def _host(options: Options | None) -> hostcaps.Host:
    """The host the answer is for (``api`` fills it in; any host when not given)."""
    return (options or Options()).host or hostcaps.ANY_HOST


def implicit_scsi_controllers(plan: Plan, dev: Device) -> list[Controller]:
    """The SCSI controllers libvirt hot-plugs for a SCSI disk: each one missing from 0 to
    the disk's (``qemuDomainFindOrCreateSCSIDiskController``), of the model of the last
    SCSI controller the guest has, or of the machine's default when it has none."""
    if dev.tag != "disk" or dev.bus != "scsi":
        return []
    top = defaults.drive_controller(dev)
    have = [c for c in plan.guest.controllers if c.type == "scsi"]
    model = have[-1].model if have and have[-1].model else plan.machine.scsi_model
    indexes = {c.index for c in have}
    return [Controller(tag="controller", type="scsi", index=i, model=model, origin="implicit")
            for i in range(0 if top is None else top + 1) if i not in indexes]


def hotplug_set(plan: Plan) -> AddressSet:
    """A copy of the running guest's address set, less the buses QEMU refuses to hot-plug
    into though libvirt would pick them."""
    s = copy.deepcopy(plan.addresses)
    no_root = root_without_hotplug(plan)
    for bus in s.buses:
        if not hotplug.qemu_hotplug(bus.model, bus.index, no_root):
            bus.accepts &= ~Connect.HOTPLUGGABLE
    return s


def _place_in(plan: Plan, s: AddressSet, dev: Device, options: Options | None) -> Placement:
    """The slot of a device ``prepare`` has made ready, in the hot-plug address set ``s``."""
    a = dev.address
    if dev.tag == "channel" and dev.target.get("type") == "virtio" and a is not None and \
            a.type != "virtio-serial":
        # libvirt gives a virtio channel a port in place of any other address written
        dev.set("address", None)
        return Placement(dev, None, transport="a virtio-serial port, in place of the address written")
    if a is None and plan.machine.ccw and dev.tag == "interface" and dev.type != "hostdev":
        # libvirt's hot-plug gives an s390-ccw guest's NIC a CCW address whatever its model
        # (its define, a PCI one to a model it does not know as virtio)
        return Placement(dev, None, transport="ccw")
    if a is not None and a.is_pci and transports.is_spapr_vio_device(dev):
        # libvirt 9.0 takes the address written (a conventional PCI device's), QEMU refuses it
        if not a.pci.is_empty:
            if a.pci.function != 0:
                raise PlanError("Only PCI device addresses with function=0 are supported",
                                dev.describe(), kind="internal")
            s.reserve(a.pci, Connect.PCI_DEVICE | Connect.HOTPLUGGABLE, from_config=True,
                      element=dev.describe())
        check_spapr_vio(dev)
    if a is not None and a.type == "spapr-vio":
        check_spapr_vio(dev)
    if a is not None and not a.is_pci:
        return Placement(dev, None, transport=a.type)
    flags = Assigner(plan.guest, options or Options()).flags(dev)
    if not flags:
        return Placement(dev, None, transport="not PCI")
    flags |= Connect.HOTPLUGGABLE
    element = dev.describe()
    if not s.buses:
        raise PlanError("No PCI buses available", element)
    if a is not None and not a.pci.is_empty:
        if a.pci.function != 0:
            raise PlanError("Only PCI device addresses with function=0 are supported", element,
                            kind="internal")
        if qemu_refuses_bus(plan, s, a.pci):
            # libvirt takes the address (it validates it as hot-pluggable), QEMU refuses it
            copy.deepcopy(plan.addresses).reserve(a.pci, flags, from_config=True, element=element)
            raise DeviceAddRefusal(f"unable to execute QEMU command 'device_add': Bus 'pci.{a.pci.bus}' "
                                   "does not support hotplugging", element, a.pci)
        addr = s.reserve(a.pci, flags, from_config=True, element=element)
    else:
        try:
            addr = s.reserve_next(flags, element)
        except CapacityError as err:
            raise CapacityError(f"{err.reason}: no empty hot-pluggable slot takes a "
                                f"{kind_name(flags)} ({needed(plan, flags)})", element) from None
    return Placement(dev, addr, flags, room=room(plan, flags))


def qemu_refuses_bus(plan: Plan, s: AddressSet, addr: PciAddress) -> bool:
    """Whether ``addr`` is on a bus libvirt hot-plugs into and QEMU does not (those
    ``hotplug_set`` leaves out): a pci-expander-bus, pc's root bus without ACPI."""
    ours = next((b for b in s.buses if b.index == addr.bus), None)
    theirs = next((b for b in plan.addresses.buses if b.index == addr.bus), None)
    return (ours is not None and theirs is not None and bool(theirs.accepts & Connect.HOTPLUGGABLE)
            and not ours.accepts & Connect.HOTPLUGGABLE)


def root_without_hotplug(plan: Plan) -> bool:
    return hotplug.root_needs_acpi(plan.machine.chipset, plan.domain.acpi)


#: the QEMU buses that take no hot-plug, of serial ports by target type, and of parallel ports
NO_HOTPLUG_BUSES = {"isa-serial": "isa.0", "sclp-serial": "s390-sclp-events-bus.0",
                    "spapr-vio-serial": "spapr-vio", "parallel": "isa.0"}
#: the QEMU devices libvirt 9.0 hot-plugs onto PCI though they are spapr-vio ones
SPAPR_VIO_DEVICES = {"interface": "spapr-vlan", "controller": "spapr-vscsi"}


def check_fixed_bus(dev: Device, bus: str | None) -> None:
    """libvirt 9.0 asks QEMU to hot-plug an ISA serial or parallel port, an s390x SCLP or a
    pSeries VIO console; QEMU's buses for them take none."""
    if bus is not None:
        raise PlanError(f"unable to execute QEMU command 'device_add': Bus '{bus}' does not support "
                        "hotplugging", dev.describe(), kind="internal")


def check_spapr_vio(dev: Device) -> None:
    """libvirt 9.0 hot-plugs no spapr-vio device: it gives a spapr-vlan NIC or an
    ibmvscsi controller a PCI address (its spapr-vio pass runs at define only), and
    asks QEMU for a spapr-vty on a bus that takes no hot-plug; QEMU refuses both."""
    name = SPAPR_VIO_DEVICES.get(dev.tag)
    if name is not None:
        raise DeviceAddRefusal(f"unable to execute QEMU command 'device_add': Device '{name}' can't go "
                               "on PCI bus (libvirt 9.0 hot-plugs it onto PCI; add it to the domain's "
                               "XML and restart the guest)", dev.describe())
    check_fixed_bus(dev, NO_HOTPLUG_BUSES["spapr-vio-serial"])


def room(plan: Plan, flags: Connect) -> int:
    """How many empty slots of the plan a device with ``flags`` could be hot-plugged into."""
    n = 0
    no_root = root_without_hotplug(plan)
    for bus in plan.addresses.buses:
        probe = PciAddress(0, bus.index, 0, 0)
        if not hotplug.qemu_hotplug(bus.model, bus.index, no_root):
            continue
        if plan.addresses.fits(probe, bus.accepts, flags | Connect.HOTPLUGGABLE, from_config=False):
            n += len(bus.free_slots())
    return n


def needed(plan: Plan, flags: Connect) -> str:
    """What kind of empty slot a device with ``flags`` needs on this machine."""
    if flags & Connect.PCIE_DEVICE:
        return "an empty pcie-root-port or pcie-switch-downstream-port"
    if plan.machine.multiple_roots:
        return "a free slot on a PHB (pci-root)"
    root = plan.guest.find_controller("pci", 0)
    if root is not None and root.model == "pcie-root":
        return "a free slot on a pcie-to-pci-bridge or pci-bridge"
    if root_without_hotplug(plan):
        return ("a free slot on a pci-bridge: QEMU hot-plugs into the root bus of a pc guest "
                "through ACPI only, and the domain has no <features><acpi/>")
    return "a free slot on the root bus or a pci-bridge"


def remedy(plan: Plan, flags: Connect) -> str:
    """How to make room: controllers cannot be hot-plugged, so re-plan and restart."""
    root = plan.guest.find_controller("pci", 0)
    pcie_root = root is not None and root.model == "pcie-root"
    if pcie_root and not flags & Connect.PCIE_DEVICE:
        return ("add <controller type='pci' model='pcie-to-pci-bridge'/> to the domain, re-plan it "
                "with `pciplan plan` and restart it")
    if root_without_hotplug(plan):
        return ("add <features><acpi/></features> to the domain, or re-plan it with `pciplan plan "
                "--hotplug-ports N` (which adds pci-bridges), and restart it")
    return "re-plan the domain with `pciplan plan --hotplug-ports N` and restart it"


def apply(placement: Placement) -> None:
    """Write the address into the device (marked changed, for ``xmlio.device_tostring``)."""
    if placement.address is None:
        return
    dev = placement.device
    old = dev.address
    zpci = old.zpci if old is not None and old.is_pci else None
    mf = old.multifunction if old is not None and old.is_pci else None
    dev.set("address", Address("pci", placement.address, mf, zpci))
