"""QEMU 7.2 command-line arguments that realise a planned PCI topology.

``build(topology)`` turns a :class:`~pciplan.topology.Topology` into a
:class:`QemuConfig`: one ``-device`` per PCI controller and per endpoint, at
its planned bus and address, plus the few harmless backends the devices need
(``-blockdev null-co``, ``-chardev null``, ...).  Pure: no QEMU is run, no host
is probed; which devices a QEMU 7.2 binary has is a table below.

Naming follows libvirt 9.0: the root bus is ``pcie.0`` (q35, ARM/RISC-V virt)
or ``pci.0`` (pc, pseries, s390x); every other PCI controller gets
``id=pci.<index>`` and QEMU names the bus it provides after that id (a
pseries PHB's bus is ``pci.<index>.0``, as QEMU names a host bridge's bus).

Functions that QEMU's chipset creates by itself (q35 ``00:1f.x``, the pc PIIX3
functions ``00:01.x``) are not emitted; they are listed in ``QemuConfig.fixed``
so that ``verify`` expects them.  Where an endpoint needs host resources a
*stand-in* of the same kind is used; ``docs/qemu-args.md`` lists them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from . import machines
from .address import PciAddress
from .domain import Controller, Device
from .topology import Bus, Function, Topology

__all__ = ["QemuDevice", "FixedFunction", "QemuConfig", "build", "device_args", "bus_name",
           "available", "EXPRESS_STANDIN", "CONVENTIONAL_STANDIN"]

X86 = machines.X86
ARM = machines.ARM
RISCV = machines.RISCV
PPC64 = machines.PPC64
S390 = machines.S390

#: QEMU 7.2 devices that only some system emulators have (``-device help``).
#: Devices not listed here exist in every emulator pciplan drives, except that
#: qemu-system-s390x has only virtio/vhost PCI devices and ``pci-bridge``.
ONLY_ON: dict[str, frozenset[str]] = {
    "virtio-vga": X86 | RISCV,
    "qxl": X86, "qxl-vga": X86,
    "virtio-pmem-pci": X86,
    "virtio-mem-pci": X86 | ARM,
    "pxb": X86 | ARM, "pxb-pcie": X86 | ARM,
    "piix3-ide": X86,
    "spapr-pci-host-bridge": PPC64,
    "zpci": S390,
    # not in QEMU 7.2 at all
    "igb": frozenset(), "vt82c686b-usb-uhci": frozenset(), "buslogic": frozenset(),
    "xen": frozenset(), "vbox": frozenset(), "parallels": frozenset(),
}
_S390_ALSO = frozenset({"pci-bridge", "zpci"})

#: PCI functions QEMU 7.2 machines create by themselves, by machine family:
#: never emitted as -device; ``verify`` accepts them where they are
BUILTIN: dict[str, tuple[tuple[PciAddress, str], ...]] = {
    "i440fx": ((PciAddress(0, 0, 0, 0), "i440FX"), (PciAddress(0, 0, 1, 0), "PIIX3"),
               (PciAddress(0, 0, 1, 1), "piix3-ide"), (PciAddress(0, 0, 1, 3), "PIIX4_PM")),
    "q35": ((PciAddress(0, 0, 0, 0), "mch"), (PciAddress(0, 0, 0x1F, 0), "ICH9-LPC"),
            (PciAddress(0, 0, 0x1F, 2), "ich9-ahci"), (PciAddress(0, 0, 0x1F, 3), "ICH9-SMB")),
    "arm-virt": ((PciAddress(0, 0, 0, 0), "gpex-root"),),
    "riscv-virt": ((PciAddress(0, 0, 0, 0), "gpex-root"),),
}

#: NIC models that are QEMU 7.2 PCI devices of the same name (libvirt passes
#: ``<model type>`` through as the device name)
QEMU_NICS = frozenset({
    "e1000", "e1000-82544gc", "e1000-82545em", "e1000e", "rtl8139", "vmxnet3", "ne2k_pci",
    "pcnet", "tulip", "i82550", "i82551", "i82557a", "i82557b", "i82557c", "i82558a", "i82558b",
    "i82559a", "i82559b", "i82559c", "i82559er", "i82562", "i82801",
})

#: the stand-in for a device of PCI Express kind that needs host hardware (VFIO...)
EXPRESS_STANDIN = "e1000e"
#: ... and for one of conventional PCI kind
CONVENTIONAL_STANDIN = "e1000"
#: ... on qemu-system-s390x, which has no emulated NICs
VIRTIO_STANDIN = "virtio-net-pci"

_PCI_CONTROLLERS: dict[str, str] = {
    "pci-bridge": "pci-bridge",
    "pci-expander-bus": "pxb",
    "pcie-expander-bus": "pxb-pcie",
    "dmi-to-pci-bridge": "i82801b11-bridge",
    "pcie-to-pci-bridge": "pcie-pci-bridge",
    "pcie-root-port": "pcie-root-port",
    "pcie-switch-upstream-port": "x3130-upstream",
    "pcie-switch-downstream-port": "xio3130-downstream",
}
_USB: dict[str, str] = {
    "qemu-xhci": "qemu-xhci", "nec-xhci": "nec-usb-xhci", "piix3-uhci": "piix3-usb-uhci",
    "piix4-uhci": "piix4-usb-uhci", "ehci": "usb-ehci", "ich9-ehci1": "ich9-usb-ehci1",
    "ich9-uhci1": "ich9-usb-uhci1", "ich9-uhci2": "ich9-usb-uhci2", "ich9-uhci3": "ich9-usb-uhci3",
    "vt82c686b-uhci": "vt82c686b-usb-uhci", "pci-ohci": "pci-ohci",
}
_USB_FIRSTPORT = {"ich9-uhci1": 0, "ich9-uhci2": 2, "ich9-uhci3": 4}
_SCSI: dict[str, str] = {
    "virtio-scsi": "virtio-scsi-pci", "lsilogic": "lsi53c895a", "lsisas1068": "mptsas1068",
    "lsisas1078": "megasas", "vmpvscsi": "pvscsi", "am53c974": "am53c974", "dc390": "dc390",
    "buslogic": "buslogic",
}
_SOUND = {"ich6": "intel-hda", "ich7": "intel-hda", "ich9": "ich9-intel-hda", "ac97": "AC97", "es1370": "ES1370"}
_SOUND_AUDIODEV = frozenset({"AC97", "ES1370"})
_VIDEO = {"vga": "VGA", "cirrus": "cirrus-vga", "bochs": "bochs-display", "vmvga": "vmware-svga"}
_INPUT = {"keyboard": "virtio-keyboard-pci", "mouse": "virtio-mouse-pci", "tablet": "virtio-tablet-pci"}
#: libvirt's alias prefix per element
_ALIAS = {"disk": "virtio-disk", "interface": "net", "hostdev": "hostdev", "sound": "sound",
          "video": "video", "memballoon": "balloon", "rng": "rng", "watchdog": "watchdog",
          "shmem": "shmem", "serial": "serial", "iommu": "iommu", "vsock": "vsock",
          "filesystem": "fs", "input": "input", "memory": "memory"}
#: virtio models that have -transitional / -non-transitional variants in QEMU 7.2
_TRANSITIONAL_BASES = frozenset({
    "virtio-net-pci", "virtio-blk-pci", "virtio-scsi-pci", "virtio-serial-pci",
    "virtio-balloon-pci", "virtio-rng-pci", "virtio-9p-pci", "vhost-scsi-pci", "vhost-vsock-pci",
})


def available(driver: str, arch: str) -> bool:
    """Does QEMU 7.2's emulator for ``arch`` have ``driver``?"""
    if driver in ONLY_ON:
        return arch in ONLY_ON[driver]
    if arch in S390:
        return driver.startswith(("virtio-", "vhost-")) or driver in _S390_ALSO
    return True


@dataclass
class QemuDevice:
    """One ``-device``: its driver and properties (``id``, ``bus``, ``addr`` ... in order)."""

    driver: str
    props: dict[str, str]
    #: what it realises: the XML element, as ``Device.describe()`` says
    element: str
    #: the planned function (None for a pseries PHB, which has no PCI address)
    function: Function | None = None
    #: the planned address, and the index of the plan bus it sits on
    address: PciAddress | None = None
    #: the plan bus index this device provides (bridges, ports, expanders, PHBs)
    provides: int | None = None
    #: the device the element really is, when a stand-in is used instead
    stand_in_for: str | None = None
    #: backend options this device needs, as (option, value)
    backends: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.props.get("id", "")

    def arg(self) -> str:
        """The ``-device`` value: ``driver,key=value,...``."""
        parts = [self.driver] + [f"{k}={_escape(v)}" for k, v in self.props.items()]
        return ",".join(parts)


@dataclass
class FixedFunction:
    """A planned function the machine creates by itself (not emitted as ``-device``)."""

    address: PciAddress
    #: QEMU's device type for it (what ``info qtree`` shows)
    driver: str
    element: str
    function: Function | None = None


@dataclass
class QemuConfig:
    """Everything needed to start a QEMU whose PCI tree is the plan's."""

    arch: str
    emulator: str
    machine: str
    #: options appended to ``-machine <type>`` (``usb=on``, ...)
    machine_options: dict[str, str]
    accel: str
    cpu: str | None
    #: ``-m`` value, None for QEMU's default
    memory: str | None
    #: options before the devices (``-object``, ``-numa``, ``-audiodev``...), as (option, value)
    objects: list[tuple[str, str]]
    devices: list[QemuDevice]
    fixed: list[FixedFunction]
    #: QEMU bus name per plan bus index
    bus_names: dict[int, str]
    #: the zpci devices of an s390x guest (after the devices they target)
    extra_devices: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: per plan bus: index, QEMU name, controller model, PCI Express, hot-plug, provider id
    buses: list[dict] = field(default_factory=list)

    def machine_arg(self) -> str:
        return ",".join([self.machine] + [f"{k}={v}" for k, v in self.machine_options.items()])

    def device_options(self) -> list[tuple[str, str]]:
        """(option, value) pairs of the backends and ``-device``s, in a valid order."""
        out: list[tuple[str, str]] = list(self.objects)
        for d in self.devices:
            out.extend(d.backends)
            out.append(("-device", d.arg()))
        out.extend(self.extra_devices)
        return out

    def argv(self, *, extra: list[str] | None = None, accel: str | None = None,
             machine_options: dict[str, str] | None = None) -> list[str]:
        """The whole command line: emulator, machine, accelerator, CPU, devices."""
        mopts = dict(self.machine_options)
        mopts.update(machine_options or {})
        m = ",".join([self.machine] + [f"{k}={v}" for k, v in mopts.items()])
        argv = [self.emulator, "-machine", m, "-accel", accel or self.accel]
        if self.cpu:
            argv += ["-cpu", self.cpu]
        if self.memory:
            argv += ["-m", self.memory]
        argv.append("-nodefaults")
        argv += list(extra or [])
        for opt, val in self.device_options():
            argv += [opt, val]
        return argv

    def lines(self) -> list[str]:
        return [f"{opt} {val}" for opt, val in self.device_options()]

    def shell(self) -> str:
        argv = self.argv()
        out = [shlex.quote(argv[0])]
        i = 1
        while i < len(argv):
            if argv[i].startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                out.append(f"{argv[i]} {shlex.quote(argv[i + 1])}")
                i += 2
            else:
                out.append(argv[i])
                i += 1
        return " \\\n    ".join(out)

    def to_json(self) -> dict:
        """The documented JSON structure (schema ``qemu-args-v1``, see docs/qemu-args.md)."""
        def dev(d: QemuDevice) -> dict:
            return {
                "driver": d.driver, "id": d.id, "bus": d.props.get("bus"),
                "addr": d.props.get("addr"), "props": dict(d.props), "arg": d.arg(),
                "element": d.element,
                "address": str(d.address) if d.address is not None else None,
                "provides_bus": d.provides,
                "stand_in_for": d.stand_in_for,
                "added": bool(d.function.added) if d.function is not None else False,
                "backends": [list(b) for b in d.backends],
            }
        return {
            "schema": "qemu-args-v1",
            "arch": self.arch,
            "emulator": self.emulator,
            "machine": self.machine,
            "machine_options": dict(self.machine_options),
            "accel": self.accel,
            "cpu": self.cpu,
            "memory": self.memory,
            "buses": [dict(b) for b in self.buses],
            "objects": [list(o) for o in self.objects],
            "devices": [dev(d) for d in self.devices],
            "extra_devices": [list(o) for o in self.extra_devices],
            "fixed": [{"address": str(f.address), "driver": f.driver, "element": f.element}
                      for f in self.fixed],
            "notes": list(self.notes),
            "argv": self.argv(),
        }


def _escape(value: str) -> str:
    """QEMU's option syntax doubles a comma inside a value."""
    return value.replace(",", ",,")


def _hex(v: int) -> str:
    return f"0x{v:x}"


def addr_value(a: PciAddress) -> str:
    """libvirt's spelling of ``addr=``: ``0x2``, or ``0x2.0x1`` for a non-zero function."""
    return _hex(a.slot) if a.function == 0 else f"{_hex(a.slot)}.{_hex(a.function)}"


def root_bus_name(topo: Topology) -> str:
    m = topo.machine
    if m is not None:
        return m.root_bus_name
    return "pcie.0" if topo.express else "pci.0"


def bus_name(topo: Topology, index: int) -> str:
    """QEMU's name of the bus of plan bus ``index``."""
    bus = topo.buses.get(index)
    if index == 0:
        return root_bus_name(topo)
    if bus is not None and bus.is_root and bus.model.name == "pci-root":
        # a pseries PHB: QEMU names a host bridge's bus "<id>.0"
        return f"pci.{index}.0"
    return f"pci.{index}"


def _target_int(c: Controller, key: str) -> int | None:
    v = c.target.get(key)
    if v is None:
        return None
    try:
        return int(v, 0)
    except ValueError:
        return None


def _element(dev: Device) -> str:
    return dev.describe()


def _ref_attr(dev: Device, path: str, attr: str) -> str | None:
    el = dev.ref
    if el is None:
        return None
    try:
        sub = el.find(path) if path else el
    except Exception:  # noqa: BLE001 - a foreign element object
        return None
    return sub.get(attr) if sub is not None else None


class _Builder:
    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.arch = topo.arch
        self.machine = topo.machine
        self.family = self.machine.family if self.machine is not None else ""
        self.devices: list[QemuDevice] = []
        self.fixed: list[FixedFunction] = []
        self.objects: list[tuple[str, str]] = []
        self.extra: list[tuple[str, str]] = []
        self.machine_options: dict[str, str] = {}
        self.notes: list[str] = []
        self.counters: dict[str, int] = {}
        self.numa_nodes = 0
        self.memory_devices = 0
        self.audiodev: str | None = None
        self.names = {i: bus_name(topo, i) for i in topo.buses}
        self.ids: dict[int, str] = {}

    # -- helpers -------------------------------------------------------------------------
    def alias(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0)
        self.counters[prefix] = n + 1
        return f"{prefix}{n}"

    def placed(self, fn: Function, driver: str, props: dict[str, str], *,
               provides: int | None = None, stand_in_for: str | None = None,
               backends: list[tuple[str, str]] | None = None, dev_id: str | None = None,
               first: tuple[str, ...] = ()) -> QemuDevice:
        """A -device at the function's planned bus/addr; ``first`` props come before ``id``."""
        a = fn.address
        ordered: dict[str, str] = {k: props.pop(k) for k in first if k in props}
        if dev_id is not None:
            ordered["id"] = dev_id
        ordered.update(props)
        ordered["bus"] = self.names.get(a.bus, f"pci.{a.bus}")
        mf = fn.device.address.multifunction if fn.device.address is not None else None
        if mf in ("on", "off"):
            ordered["multifunction"] = mf
        ordered["addr"] = addr_value(a)
        d = QemuDevice(driver, ordered, _element(fn.device), fn, a, provides, stand_in_for,
                       list(backends or []))
        self.devices.append(d)
        self.ids[id(fn.device)] = ordered.get("id", "")
        return d

    def pick(self, real: str, express: bool) -> tuple[str, str | None]:
        """``real`` when this emulator has it, else a stand-in of the same kind."""
        if available(real, self.arch):
            return real, None
        return self.standin(express), real

    def standin(self, express: bool) -> str:
        if self.arch in S390:
            return VIRTIO_STANDIN
        return EXPRESS_STANDIN if express else CONVENTIONAL_STANDIN

    def variant(self, base: str, model: str | None) -> str:
        if base in _TRANSITIONAL_BASES and model in ("virtio-transitional", "virtio-non-transitional"):
            return f"{base}-{model[len('virtio-'):]}"
        return base

    # -- controllers ---------------------------------------------------------------------
    def pci_controller(self, fn: Function) -> None:
        c = fn.device
        assert isinstance(c, Controller)
        model = c.model or ""
        driver = c.model_name or _PCI_CONTROLLERS.get(model, model)
        props: dict[str, str] = {}
        if model == "pci-bridge":
            props["chassis_nr"] = str(_target_int(c, "chassisNr") or c.index)
        elif model in ("pcie-root-port", "pcie-switch-downstream-port"):
            port = _target_int(c, "port")
            chassis = _target_int(c, "chassis")
            if port is not None:
                props["port"] = _hex(port)
            if chassis is not None:
                props["chassis"] = str(chassis)
            if c.target.get("hotplug") == "off":
                props["hotplug"] = "off"
        elif model in ("pci-expander-bus", "pcie-expander-bus"):
            nr = _target_int(c, "busNr")
            if nr is not None:
                props["bus_nr"] = str(nr)
            node = _target_int(c, "node")
            if node is not None:
                props["numa_node"] = str(node)
                self.numa_nodes = max(self.numa_nodes, node + 1)
        driver, standin = self.pick(driver, fn.express)
        self.placed(fn, driver, props, provides=c.index, stand_in_for=standin,
                    dev_id=f"pci.{c.index}", first=("chassis_nr", "port", "chassis", "bus_nr"))

    def phb(self, bus: Bus) -> None:
        """A pseries PCI host bridge (pci-root index > 0)."""
        c = bus.controller
        props = {"index": str(_target_int(c, "index") or bus.index), "id": f"pci.{bus.index}"}
        node = _target_int(c, "node")
        if node is not None:
            props["numa_node"] = str(node)
            self.numa_nodes = max(self.numa_nodes, node + 1)
        self.devices.append(QemuDevice("spapr-pci-host-bridge", props, _element(c), None, None,
                                       bus.index))

    def controller(self, fn: Function) -> None:
        c = fn.device
        assert isinstance(c, Controller)
        t, model, a = c.type, c.model, fn.address
        if t == "pci":
            self.pci_controller(fn)
            return
        if t == "ide":
            if self.family == "i440fx" and (a.bus, a.slot, a.function) == (0, 1, 1):
                self.fixed.append(FixedFunction(a, "piix3-ide", _element(c), fn))
                return
            driver, standin = self.pick("piix3-ide", False)
            self.placed(fn, driver, {}, dev_id=f"ide{c.index or 0}", stand_in_for=standin)
            return
        if t == "sata":
            if self.family == "q35" and (a.bus, a.slot, a.function) == (0, 0x1F, 2):
                self.fixed.append(FixedFunction(a, "ich9-ahci", _element(c), fn))
                return
            driver, standin = self.pick("ich9-ahci", fn.express)
            self.placed(fn, driver, {}, dev_id=f"sata{c.index or 0}", stand_in_for=standin)
            return
        if t == "usb":
            model = model or (self.machine.usb_model if self.machine else None) or "piix3-uhci"
            uid = "usb" if not c.index else f"usb{c.index}"
            if (self.family == "i440fx" and model == "piix3-uhci"
                    and (a.bus, a.slot, a.function) == (0, 1, 2)):
                self.machine_options["usb"] = "on"
                self.fixed.append(FixedFunction(a, "piix3-usb-uhci", _element(c), fn))
                return
            driver = _USB.get(model, model)
            props: dict[str, str] = {}
            if model in _USB_FIRSTPORT and self._has_ehci_master(c.index):
                start = _ref_attr(c, "master", "startport")
                props["masterbus"] = f"{uid}.0"
                props["firstport"] = str(int(start, 0)) if start and start.isdigit() else \
                    str(_USB_FIRSTPORT[model])
            ports = c.attrs.get("ports")
            if model in ("qemu-xhci", "nec-xhci") and ports and ports.isdigit():
                props["p2"] = ports
                props["p3"] = ports
            driver, standin = self.pick(driver, fn.express)
            if standin:
                props.pop("masterbus", None)
                props.pop("firstport", None)
            if model in _USB_FIRSTPORT and "masterbus" in props:
                uid = f"{uid}-{model}"
            self.placed(fn, driver, props, dev_id=uid, stand_in_for=standin,
                        first=("p2", "p3"))
            return
        if t == "scsi":
            model = model or "lsilogic"
            if model in ("auto", "default"):
                model = self.machine.scsi_model if self.machine else "lsilogic"
            if model in ("virtio-scsi", "virtio-transitional", "virtio-non-transitional"):
                driver = self.variant("virtio-scsi-pci", model)
            else:
                driver = _SCSI.get(model, model)
            driver, standin = self.pick(driver, fn.express)
            self.placed(fn, driver, {}, dev_id=f"scsi{c.index or 0}", stand_in_for=standin)
            return
        if t == "virtio-serial":
            driver = self.variant("virtio-serial-pci", model)
            self.placed(fn, driver, {}, dev_id=f"virtio-serial{c.index or 0}")
            return
        driver = self.standin(fn.express)
        self.placed(fn, driver, {}, dev_id=self.alias(f"{t}-ctrl"), stand_in_for=f"controller {t}")

    def _has_ehci_master(self, index: int | None) -> bool:
        for f in self.topo.functions:
            d = f.device
            if isinstance(d, Controller) and d.type == "usb" and d.model == "ich9-ehci1" \
                    and d.index == index:
                return True
        return False

    # -- endpoints -----------------------------------------------------------------------
    def endpoint(self, fn: Function) -> None:
        d = fn.device
        tag, model = d.tag, d.model
        if tag == "console":
            return  # an alias of the serial device at the same address
        alias = self.alias(_ALIAS.get(tag, tag))
        if tag == "interface":
            if d.type == "hostdev":
                self.placed(fn, self.standin(fn.express), {}, dev_id=alias,
                            stand_in_for="vfio-pci")
                return
            if model in (None, "virtio", "virtio-transitional", "virtio-non-transitional"):
                if model is None:
                    model = self.machine.nic_model if self.machine else "rtl8139"
                if model.startswith("virtio"):
                    self.placed(fn, self.variant("virtio-net-pci", model), {}, dev_id=alias)
                    return
            if model in QEMU_NICS and available(model, self.arch):
                self.placed(fn, model, {}, dev_id=alias)
                return
            self.placed(fn, self.standin(fn.express), {}, dev_id=alias, stand_in_for=model)
            return
        if tag == "disk":
            node = f"drive-{alias}"
            self.placed(fn, self.variant("virtio-blk-pci", model), {"drive": node}, dev_id=alias,
                        backends=[("-blockdev", f"driver=null-co,node-name={node}")], first=())
            return
        if tag == "hostdev":
            if d.type == "scsi_host":
                real = self.variant("vhost-scsi-pci", model)
                self.placed(fn, self.variant("virtio-scsi-pci", model), {}, dev_id=alias,
                            stand_in_for=real)
                return
            self.placed(fn, self.standin(fn.express), {}, dev_id=alias, stand_in_for="vfio-pci")
            return
        if tag == "sound":
            real = _SOUND.get(model or "", "ich9-intel-hda")
            driver, standin = self.pick(real, fn.express)
            props = {}
            if driver in _SOUND_AUDIODEV:
                props["audiodev"] = self._audiodev()
            self.placed(fn, driver, props, dev_id=alias, stand_in_for=standin)
            return
        if tag == "video":
            self.video(fn, alias)
            return
        if tag == "memballoon":
            self.placed(fn, self.variant("virtio-balloon-pci", model), {}, dev_id=alias)
            return
        if tag == "rng":
            self.placed(fn, self.variant("virtio-rng-pci", model), {}, dev_id=alias)
            return
        if tag == "vsock":
            real = self.variant("vhost-vsock-pci", model)
            self.placed(fn, self.variant("virtio-rng-pci", model), {}, dev_id=alias,
                        stand_in_for=real)
            return
        if tag == "filesystem":
            fsdev = f"fsdev-{alias}"
            real = "vhost-user-fs-pci" if d.attrs.get("driver") == "virtiofs" else None
            self.placed(fn, self.variant("virtio-9p-pci", model),
                        {"fsdev": fsdev, "mount_tag": alias}, dev_id=alias, stand_in_for=real,
                        backends=[("-fsdev", f"synth,id={fsdev}")])
            return
        if tag == "input":
            if d.type in _INPUT:
                self.placed(fn, _INPUT[d.type or ""], {}, dev_id=alias)
            else:
                self.placed(fn, "virtio-keyboard-pci", {}, dev_id=alias,
                            stand_in_for="virtio-input-host-pci")
            return
        if tag == "watchdog":
            driver, standin = self.pick(model or "i6300esb", fn.express)
            self.placed(fn, driver, {}, dev_id=alias, stand_in_for=standin)
            return
        if tag == "shmem":
            mem = f"shmmem-{alias}"
            driver, standin = self.pick("ivshmem-plain", fn.express)
            props = {"memdev": mem} if driver == "ivshmem-plain" else {}
            backends = [("-object", f"memory-backend-ram,id={mem},size=4M,share=on")] \
                if props else []
            if model not in (None, "ivshmem-plain") and standin is None:
                standin = "ivshmem-doorbell" if model == "ivshmem-doorbell" else model
            self.placed(fn, driver, props, dev_id=alias, stand_in_for=standin, backends=backends)
            return
        if tag == "serial":
            chardev = f"char{alias}"
            driver, standin = self.pick("pci-serial", fn.express)
            props = {"chardev": chardev} if driver == "pci-serial" else {}
            self.placed(fn, driver, props, dev_id=alias, stand_in_for=standin,
                        backends=[("-chardev", f"null,id={chardev}")] if props else [])
            return
        if tag == "iommu":
            self.placed(fn, "virtio-iommu-pci", {}, dev_id=alias)
            return
        if tag == "memory":
            real = "virtio-pmem-pci" if model == "virtio-pmem" else "virtio-mem-pci"
            if available(real, self.arch):
                mem = f"mem{alias}"
                self.memory_devices += 1
                self.placed(fn, real, {"memdev": mem}, dev_id=alias,
                            backends=[("-object", f"memory-backend-ram,id={mem},size=128M")])
            else:
                self.placed(fn, "virtio-rng-pci", {}, dev_id=alias, stand_in_for=real)
            return
        # anything else the planner gave a PCI address: a stand-in of its kind
        self.placed(fn, self.standin(fn.express), {}, dev_id=alias, stand_in_for=tag)

    def video(self, fn: Function, alias: str) -> None:
        d = fn.device
        model = d.model or (self.machine.video_model if self.machine else "vga")
        primary = self._primary_video() is d
        if model == "virtio":
            real = "virtio-vga" if primary and available("virtio-vga", self.arch) else "virtio-gpu-pci"
        elif model == "qxl":
            real = "qxl-vga" if primary else "qxl"
        else:
            real = _VIDEO.get(model, model)
        driver, standin = self.pick(real, fn.express)
        self.placed(fn, driver, {}, dev_id=alias, stand_in_for=standin)

    def _primary_video(self) -> Device | None:
        vids = [f.device for f in self.topo.functions if f.device.tag == "video"]
        for v in vids:
            if v.attrs.get("primary") == "yes":
                return v
        # libvirt's primary is its first <video>, PCI or not
        for f in self.topo.functions:
            if f.device.tag == "video":
                return f.device
        return None

    def _audiodev(self) -> str:
        if self.audiodev is None:
            self.audiodev = "audio0"
            self.objects.append(("-audiodev", "none,id=audio0"))
        return self.audiodev

    # -- the whole tree ------------------------------------------------------------------
    def run(self) -> QemuConfig:
        topo = self.topo
        # PHBs first, then every bus-providing controller parent-first, then endpoints
        for bus in sorted(topo.roots, key=lambda b: b.index):
            if bus.index != 0 and bus.model.name == "pci-root":
                self.phb(bus)
        for fn in self._controllers_in_tree_order():
            self.pci_controller(fn)
        seen: set[tuple[int, int, int]] = set()
        for fn in sorted(self._endpoints(), key=self._order):
            key = (fn.address.bus, fn.address.slot, fn.address.function)
            if key in seen and fn.device.tag == "console":
                continue
            seen.add(key)
            if isinstance(fn.device, Controller):
                self.controller(fn)
            else:
                self.endpoint(fn)
        self._zpci()
        machine = machines.canonical(self.arch, topo.machine_type or "")
        emulator = machines.EMULATORS.get(self.arch, "qemu-system-" + self.arch)
        accel = "tcg"
        cpu = {"aarch64": "cortex-a57"}.get(self.arch)
        memory = self._memory()
        buses = [{"index": i, "name": self.names[i], "model": b.model.name, "express": b.express,
                  "hotplug": b.hotplug,
                  "provided_by": (f"pci.{i}" if b.parent is not None or i != 0 else None)}
                 for i, b in sorted(topo.buses.items())]
        return QemuConfig(self.arch, emulator, machine, self.machine_options, accel, cpu, memory,
                          self.objects, self.devices, self.fixed, self.names, self.extra,
                          self.notes, buses)

    def _order(self, fn: Function) -> tuple:
        """Document order, except that QEMU needs the primary video first among the
        displays (qxl-vga must be console 0) and an EHCI master before its companions."""
        d = fn.device
        pos = d.position or 10_000
        if d.tag == "video":
            vids = [f.device for f in self.topo.functions if f.device.tag == "video"]
            first = min(v.position or 10_000 for v in vids)
            return (first, 0 if d is self._primary_video() else 1, pos, fn.address)
        if isinstance(d, Controller) and d.type == "usb" and self._has_ehci_master(d.index) \
                and (d.model in _USB_FIRSTPORT or d.model == "ich9-ehci1"):
            group = [f.device for f in self.topo.functions
                     if isinstance(f.device, Controller) and f.device.type == "usb"
                     and f.device.index == d.index]
            first = min(g.position or 10_000 for g in group)
            return (first, 0 if d.model == "ich9-ehci1" else 1, pos, fn.address)
        return (pos, 0, 0, fn.address)

    def _controllers_in_tree_order(self) -> list[Function]:
        out: list[Function] = []
        todo = sorted(self.topo.roots, key=lambda b: b.index)
        while todo:
            bus = todo.pop(0)
            for fn in bus.functions:
                if fn.child is not None and fn.is_bridge:
                    out.append(fn)
                    todo.append(fn.child)
        # bridges on no known bus (should not happen) still get emitted
        listed = {id(f) for f in out}
        out += [f for f in self.topo.functions
                if f.is_bridge and f.child is not None and id(f) not in listed]
        return out

    def _endpoints(self) -> list[Function]:
        return [f for f in self.topo.functions if not (f.is_bridge and f.child is not None)]

    def _zpci(self) -> None:
        """s390x: a zpci device naming uid/fid goes right before the device it targets
        (QEMU gives a device without one an automatic zpci when it is plugged)."""
        for d in list(self.devices):
            f = d.function
            if f is None or f.device.address is None or f.device.address.zpci is None:
                continue
            z = f.device.address.zpci
            if z.uid is None and z.fid is None:
                continue
            props = []
            if z.uid is not None:
                props.append(f"uid={z.uid}")
            if z.fid is not None:
                props.append(f"fid={z.fid}")
            props.append(f"target={d.id}")
            props.append(f"id=zpci{z.uid if z.uid is not None else d.id}")
            d.backends.append(("-device", "zpci," + ",".join(props)))

    def _memory(self) -> str | None:
        nodes = self.numa_nodes
        if nodes:
            per = 256 if self.arch in PPC64 else 128   # pseries aligns nodes to 256 MiB
            for i in range(nodes):
                self.objects.insert(i * 2, ("-object", f"memory-backend-ram,id=ram-node{i},size={per}M"))
                self.objects.insert(i * 2 + 1, ("-numa", f"node,nodeid={i},memdev=ram-node{i}"))
            base = per * nodes
        else:
            base = 128 if self.arch not in PPC64 else 512
        if self.memory_devices:
            return f"{base}M,slots={self.memory_devices},maxmem={base + 256 * self.memory_devices}M"
        return f"{base}M" if nodes else None


def build(topo: Topology) -> QemuConfig:
    """The QEMU 7.2 configuration realising ``topo`` (see the module docstring)."""
    return _Builder(topo).run()


def device_args(topo: Topology) -> list[str]:
    """Just the ``-device`` values, in the order they must be given."""
    return [d.arg() for d in build(topo).devices]
