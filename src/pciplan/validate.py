"""What libvirt 9.0 refuses of a domain, and when: the order of its checks decides which
error a domain with several mistakes gets, so each check sits where libvirt makes it.

1. the parser (``parsecheck``, called by ``xmlio`` in the parser's order: the domain, its
   ``<features>`` and ``<os>``, then the devices kind by kind);
2. post-parse, before any address is assigned (``validate``): the machine's defaults
   (``defaults``), each device's own checks, then the domain's (``post_parse_memory``,
   duplicate controllers and panics, boot order);
3. the addresses (``planner``, ``transports``);
4. validation (``validate_late``): the domain first (firmware, memory hotplug, vCPUs,
   features, consoles, panics, TPMs), then device kind by kind in libvirt's iteration
   order (each device's address first), then what spans devices (disk targets, host
   devices, drive addresses, aliases, interrupt remapping, primary videos).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from . import (audios, chardevs, clock, controllers, devices, disks, filesystems, graphics,
               guestconf, hostdevs, interfaces, machines, memdevs, parsecheck, rng, shmems,
               sounds, transports, video)
from . import tpm as tpm_mod
from .defaults import MAX_PLANNED_INDEX, number
from .domain import Controller, Device, Domain
from .errors import HostError, PlanError

if TYPE_CHECKING:
    from .defaults import Guest
    from .hostcaps import Host


def post_parse_memory(domain: Domain) -> None:
    """libvirt's post-parse of the guest's memory: without NUMA cells, ``<memory>`` holds
    the initial memory and the memory devices; some initial memory there must be, and
    ``<maxMemory>`` (with its slots) at least the total."""
    m = domain.memory
    if m is None:
        return
    if m.numa:
        initial, total = m.numa, m.numa + m.devices
    else:
        if m.devices > m.memory:
            raise PlanError("Total size of memory devices exceeds the total memory size", "memory")
        initial, total = m.memory - m.devices, m.memory
    if not initial:
        raise PlanError("Memory size must be specified via <memory> or in the <numa> configuration",
                        "domain")
    if bool(m.maximum) != bool(m.slots):
        raise PlanError("both maximum memory size and memory slot count must be specified",
                        "maxMemory")
    if m.maximum and m.maximum < total:
        raise PlanError("maximum memory size must be equal or greater than the actual memory size",
                        "maxMemory")


def validate(guest: Guest) -> None:
    """Checks of libvirt's post-parse step (before addresses): each device's first, in its
    order of device kinds (disks, ..., controllers, ..., serials), then the domain's."""
    dom = guest.domain
    conf = dom.conf or guestconf.GuestFacts()
    guestconf.post_parse(conf, guest.machine.family)  # (QEMU's: before any device)
    for disk in guest.devices("disk"):
        dev = disk.target.get("dev")
        if dev is not None and disk.address is None and parsecheck.disk_name_index(dev) is None:
            raise PlanError(f"Unknown disk name '{dev}' and no address specified", disk.describe())
    hostdevs.post_parse(guest.devices("disk"), guest.devices("hostdev"))
    written = {id(c) for c in dom.controllers}
    for c in [c for c in guest.controllers if id(c) in written]:  # (libvirt's order: by type, index)
        if c.type == "pci":
            _pci_controller_post_parse(guest, c)
        elif c.type == "usb" and c.model in devices.USB_MODELS_QEMU_LACKS:
            raise PlanError(f"USB controller model type 'qusb1' or 'qusb2' is not supported in "
                            f"{dom.virt_type}", c.describe(), kind="unsupported")
        elif c.type == "usb" and c.model in devices.XHCI_MODELS and \
                number(c.attrs.get("ports"), 0) > devices.XHCI_MAX_PORTS:
            raise PlanError(f"'{c.model}' controller only supports up to '{devices.XHCI_MAX_PORTS}' ports",
                            c.describe(), kind="unsupported")
        elif c.type == "scsi" and c.model is None and c.origin != "implicit":
            _no_scsi_model(c)
        if parsecheck.c_uint(c.attrs.get("driver_iothread", "0"), 10) and \
                (c.type, c.model) not in devices.IOTHREAD_POST_PARSE_MODELS:
            raise PlanError("'iothread' attribute only supported for virtio scsi controllers",
                            c.describe())
    for ser in guest.devices("serial"):
        post_parse_serial(ser)
    chardevs.post_parse_serials(guest)
    shmems.post_parse(guest)
    memdevs.post_parse(guest)  # (the last kind of device with checks of its own)
    chardevs.post_parse_consoles(guest)  # (the domain's, after every device's)
    clock.post_parse(conf.clock)
    post_parse_memory(dom)
    guestconf.post_parse_os(conf)
    twice = _repeated(guest.controllers, lambda c: None if c.type == "usb" else (c.type, c.index))
    if twice:
        c = twice[1]
        raise PlanError(f"Multiple '{c.type}' controllers with index '{c.index}'", c.describe())
    for c in guest.controllers:
        if c.type == "pci":
            _validate_pci_controller(guest, c)
    twice = _repeated(guest.devices("panic"), lambda p: p.model)
    if twice:
        raise PlanError(f"Multiple panic devices with model '{twice[1].model}'", twice[1].describe())
    twice = _repeated(dom.devices, lambda d: d.attrs.get("boot"))
    if twice:
        raise PlanError(f"boot order '{twice[1].attrs['boot']}' used for more than one device",
                        twice[1].describe(), kind="unsupported")
    if dom.os_boot and any("boot" in d.attrs for d in dom.devices):
        raise PlanError("per-device boot elements cannot be used together with os/boot elements",
                        "os", kind="unsupported")
    for c in guest.controllers:  # (the implicit ones libvirt adds after these checks)
        if c.type == "scsi" and c.model is None:
            _no_scsi_model(c)


def post_parse_serial(ser: Device) -> None:
    """libvirt's post-parse check of a serial port: a USB one takes a USB address."""
    a = ser.address
    if ser.target.get("type") == "usb-serial" and a is not None and a.type != "usb":
        raise PlanError("usb-serial requires address of usb type", ser.describe(), kind="unsupported")


#: TABLE: a balloon's switches, the QEMU property each needs (``Machine.lacks``) and libvirt's
#: name of it, in libvirt's order
BALLOON_OPTIONS = {"autodeflate": ("virtio-balloon-pci.deflate-on-oom", "deflate-on-oom"),
                   "freePageReporting": ("virtio-balloon.free-page-reporting", "freePageReporting")}
#: TABLE: the QEMU device of a virtio <input> of each type (``Machine.lacks``)
VIRTIO_INPUT_DEVICES = {"mouse": "virtio-mouse", "tablet": "virtio-tablet", "keyboard": "virtio-keyboard",
                        "passthrough": "virtio-input-host"}


def _no_scsi_model(c: Controller) -> None:
    """A SCSI controller without a model where the emulator has none for libvirt to pick
    (``Machine.scsi_model`` None: cris, microblaze)."""
    raise PlanError(f"Unable to determine model for SCSI controller idx={c.index}", c.describe(),
                    kind="internal")


def validate_late(guest: Guest, host: Host) -> None:
    """Checks libvirt makes after addresses are assigned (so an address error wins), on
    ``host`` (the refusals that depend on it, each where libvirt makes it: see ``hostcaps``)."""
    dom = guest.domain
    by_tag: dict[str, list[Device]] = {}
    for d in dom.devices:
        by_tag.setdefault(d.tag, []).append(d)

    def of(tag: str) -> list[Device]:
        return by_tag.get(tag, [])

    def each(devs: list[Device]) -> Iterator[Device]:
        """The devices of a kind without generic checks of libvirt's own: each one's
        address validated before the device (as QEMU's checks start)."""
        for d in devs:
            _validate_unassigned(d)
            _validate_address(guest, d)
            yield d

    def generic_first(devs: list[Device]) -> Iterator[Device]:
        """The devices of a kind libvirt checks itself first: the caller makes those
        checks, then ``_validate_address``, then QEMU's."""
        for d in devs:
            _validate_unassigned(d)
            yield d
    conf = dom.conf or guestconf.GuestFacts()
    guestconf.validate_first(dom, conf, host)  # the os type, KVM, min_guarantee
    if dom.uefi and not dom.acpi and dom.arch in machines.X86:
        raise PlanError("UEFI requires ACPI on this architecture", "os", kind="unsupported")
    if dom.acpi and not dom.uefi and dom.arch == "aarch64":
        raise PlanError("ACPI requires UEFI on this architecture", "features", kind="unsupported")
    guestconf.validate_qemu(guest, conf)  # BIOS serial console, lifecycle actions, CPU
    # memory hotplug (the memory devices included), the timers, <pm>, the firmware, the vCPUs
    if dom.max_memory and not dom.numa_cells and dom.arch not in machines.PPC64:
        raise PlanError("At least one numa node has to be configured when enabling memory hotplug",
                        "maxMemory", kind="unsupported")
    if of("memory") and not dom.max_memory:
        raise PlanError("cannot use/hotplug a memory device when domain 'maxMemory' is not defined",
                        of("memory")[0].describe(), kind="unsupported")
    if dom.max_memory:
        _validate_memory_hotplug(dom, of("memory"))
    guestconf.validate_timers(dom, conf)
    _validate_pm(dom)
    if dom.secure_boot:
        if guest.machine.family != "q35":
            raise PlanError("Secure boot is supported with q35 machine types only", "os/loader",
                            kind="unsupported")
        if dom.arch != "x86_64":
            raise PlanError("Secure boot is supported for x86_64 architecture only", "os/loader",
                            kind="unsupported")
        if not dom.firmware_auto and not dom.smm:
            raise PlanError("Secure boot requires SMM feature enabled", "os/loader", kind="unsupported")
    guestconf.validate_nvram(conf)  # (the firmware's loader and NVRAM: with libvirt's, at the end)
    # the topology before EIM
    limit = machines.max_cpus(dom.emulator, dom.arch, dom.machine)
    if limit and dom.max_vcpus > limit:
        raise PlanError(f"Maximum CPUs greater than specified machine type limit {limit}", "vcpu",
                        kind="unsupported")
    if dom.topology_vcpus is not None and dom.topology_vcpus != dom.max_vcpus and \
            dom.topology_vcpus <= guestconf.UINT_MAX:  # (more is refused after the devices)
        raise PlanError("CPU topology doesn't match maximum vcpu count", "cpu/topology",
                        kind="unsupported")
    # pSeries plugs vCPUs a core at a time: as many online at boot
    if guest.machine.family == "pseries" and conf.threads and conf.vcpus_online % conf.threads:
        raise PlanError("vCPUs count must be a multiple of the vCPU hotplug granularity "
                        f"({conf.threads})", "vcpu", kind="unsupported")
    if dom.arch in machines.X86 and dom.max_vcpus > X86_VCPUS_WITHOUT_EIM and \
            not any(i.attrs.get("eim") == "on" for i in of("iommu")):
        raise PlanError(f"more than {X86_VCPUS_WITHOUT_EIM} vCPUs require extended interrupt mode "
                        "enabled on the iommu device", "vcpu", kind="unsupported")
    guestconf.validate_resctrl(dom, conf)
    _validate_features(guest)
    guestconf.validate_after_features(conf)  # hugepages, fw_cfg names
    for console in of("console"):  # (with the domain: QEMU's console kinds)
        ctype = console.target.get("type")
        if ctype in CONSOLES_QEMU_LACKS:
            raise PlanError(f"unsupported console target type {ctype}", console.describe(),
                            kind="unsupported")
        if ctype in CONSOLES_S390 and dom.arch not in machines.S390:
            raise PlanError(f"{ctype}console is not supported in this QEMU binary", console.describe(),
                            kind="unsupported")
    # the panic devices and the TPM count are checked with the domain, before any device
    for panic in of("panic"):
        _validate_panic(guest, panic)
    seen_proxy = seen_tpm = False
    for tpm in of("tpm"):  # (a second of either kind, whichever comes first)
        if tpm.model == "spapr-tpm-proxy":
            if seen_proxy:
                raise PlanError("only a single TPM Proxy device is supported", tpm.describe(),
                                kind="unsupported")
            seen_proxy = True
        else:
            if seen_tpm:
                raise PlanError("only a single TPM non-proxy device is supported", tpm.describe(),
                                kind="unsupported")
            seen_tpm = True
    # the launch security, QEMU's last domain check: the guest arch's QEMU has it, the host runs it
    launch = LAUNCH_SECURITY.get(conf.launch_security or "")
    if launch is not None:
        message = f"{launch[0]} launch security is not supported with this QEMU binary"
        if dom.arch not in launch[1]:
            raise PlanError(message, "launchSecurity", kind="unsupported")
        if not host.launch_security_runs(conf.launch_security, dom.arch):
            raise HostError(message, "launchSecurity")
    watchdogs = of("watchdog")
    # libvirt validates devices kind by kind: disks, (nets,) sounds, hostdevs, videos,
    # controllers, smartcards, serials, ..., inputs, watchdogs; the checks of its QEMU
    # driver before its generic ones for each device (but for disks: ``disks``)
    for disk in of("disk"):  # (a disk's address is checked with its QEMU driver's checks)
        facts = disk.disk if disk.disk is not None else disks.DiskFacts()
        _validate_unassigned(disk)  # (libvirt's first generic check of every device)
        disks.check_generic(guest, disk, facts)
        _validate_address(guest, disk)
        disks.check_qemu(guest, disk, facts)
    for net in of("interface"):
        _validate_unassigned(net)
        _check_interface(guest, net)
    audio = guest_audios(guest)
    for snd in each(of("sound")):
        _check_sound(guest, snd, audio)
    for net in of("interface"):  # (the host devices of <interface type='hostdev'> come first)
        _check_interface_hostdev(guest, net)
    for h in generic_first(of("hostdev")):
        _check_hostdev(guest, h)
    videos = guest.videos()
    if len(videos) > 1:
        none = next((v for v in videos if v.model == "none"), None)
        if none is not None:
            raise PlanError("a 'none' video type must be the only video device defined for the domain",
                            none.describe(), kind="unsupported")
    for i, v in enumerate(generic_first(videos)):
        # the first video is the primary one, and so is any other marked primary='yes'
        # (libvirt's flag: two of them are refused only after the devices' checks)
        video.check_generic(v)
        _validate_address(guest, v)
        video.check_qemu(guest, v, primary=not i or v.attrs.get("primary") == "yes")
    for c in generic_first(guest.controllers):
        _check_controller(guest, c)
    cards = of("smartcard")
    if len(cards) > 1:
        raise PlanError("this QEMU binary lacks multiple smartcard support", cards[1].describe(),
                        kind="unsupported")
    for card in generic_first(cards):
        _check_smartcard(guest, card)
    for ser in generic_first(of("serial")):
        check_serial(guest, ser)
    for par in generic_first(of("parallel")):
        chardevs.check_generic(guest, par)
        _validate_address(guest, par)
        chardevs.check_qemu(guest, par)
        if guest.machine.family == "pseries" or dom.arch in machines.S390:
            raise PlanError("parallel ports are not supported", par.describe(), kind="unsupported")
    for ch in generic_first(of("channel")):
        _check_channel(guest, ch)
    for console in generic_first(of("console")):
        _check_console(guest, console)
    for inp in generic_first(of("input")):
        _check_input(guest, inp)
    for fs in generic_first(of("filesystem")):
        _check_filesystem(guest, fs)
    for w in each(watchdogs):
        _check_watchdog(guest, w)
    for balloon in each(of("memballoon")):
        if balloon.model == "xen":
            raise PlanError("Memory balloon device type 'xen' is not supported by this version of qemu",
                            balloon.describe(), kind="unsupported")
        for attr, (option, name) in BALLOON_OPTIONS.items():
            if balloon.model != "none" and balloon.attrs.get(attr) and option in guest.machine.lacks:
                raise PlanError(f"{name} is not supported by this QEMU binary", balloon.describe(),
                                kind="unsupported")
    for r in generic_first(of("rng")):
        _check_rng(guest, r)
    for nvram in each(of("nvram")):
        _check_nvram(guest, nvram)
    for hub in each(of("hub")):
        _check_hub(guest, hub)
    for shm in generic_first(of("shmem")):
        _check_shmem(guest, shm)
    for tpm in generic_first(of("tpm")):
        _check_tpm(guest, tpm, host)
    for mem in each(of("memory")):  # (after the TPMs, as libvirt walks the devices)
        memdevs.check(guest, mem, host)
    for rd in generic_first(of("redirdev")):
        _check_redirdev(guest, rd)
    for iommu in generic_first(of("iommu")):
        _check_iommu(guest, iommu)
    for vsock in generic_first(of("vsock")):
        _check_vsock(guest, vsock)
    for d in dom.devices:  # (the kinds without checks of their own above)
        _validate_unassigned(d)
        _validate_rom(guest, d)
    graphics.validate(dom.graphics_facts, audio, host.spice_tls_on)
    audios.validate(audio, dom.spice)
    # what spans devices, after every device is validated
    guestconf.validate_resource(conf)
    twice = _repeated(of("disk"), lambda disk: disk.target.get("dev"))
    if twice:
        first, disk = twice
        raise PlanError(f"target '{disk.target['dev']}' duplicated for disk sources "
                        f"'{first.attrs.get('source', '<null>')}' and "
                        f"'{disk.attrs.get('source', '<null>')}'", disk.describe())
    _check_duplicate_hostdevs(guest.hostdevs())
    hostdevs.check_ramfb(of("hostdev"))
    _check_duplicate_drives(of("disk"))
    hostdevs.check_duplicate_drives(of("hostdev"))
    unchecked = chardevs.alias_unchecked(guest)
    twice = _repeated([d for d in dom.devices if not any(d is u for u in unchecked)],
                      lambda d: d.attrs.get("alias"))
    if twice:
        raise PlanError(f"non unique alias detected: {twice[1].attrs['alias']}", twice[1].describe(),
                        kind="unsupported")
    for d in dom.devices:
        a = d.address
        if a is None or (d.tag == "console" and chardevs.replaced_by_stub(guest, d)):
            continue
        _validate_address(guest, d)  # (the kinds validated without a loop of their own)
        if d.tag == "hostdev" and d.type == "scsi_host" and a.type not in ("pci", "ccw"):
            raise PlanError("SCSI_host host device must use 'pci' or 'ccw' address type",
                            d.describe(), kind="unsupported")
    for iommu in of("iommu"):
        if iommu.attrs.get("intremap") == "on" and dom.ioapic != "qemu":
            raise PlanError("IOMMU interrupt remapping requires split I/O APIC (ioapic driver='qemu')",
                            iommu.describe(), kind="unsupported")
    guestconf.validate_generic(dom, conf)
    primaries = [v for v in of("video") if v.attrs.get("primary") == "yes"]
    if len(primaries) > 1:
        raise PlanError("Only one primary video device is supported", primaries[1].describe(),
                        kind="unsupported")
    guestconf.validate_tunables(conf)  # blkiotune devices, ID maps, NUMA
    filesystems.validate_domain(of("filesystem"))
    guestconf.validate_iothreads(conf)


def _check_interface(guest: Guest, net: Device) -> None:
    """A NIC: libvirt 9.0's generic checks, its address's, then QEMU's."""
    interfaces.check_generic(net, net.net or interfaces.NetFacts())
    _validate_address(guest, net)
    if net.type == "vdpa" and net.model != "virtio":  # (not even its transitional variants)
        raise PlanError(f"invalid model for interface of type 'vdpa': '{net.model or ''}'",
                        net.describe(), kind="unsupported")
    interfaces.check_qemu(net, net.net or interfaces.NetFacts())


def _check_interface_hostdev(guest: Guest, net: Device) -> None:
    """The host device of an ``<interface type='hostdev'>``."""
    if net.type == "hostdev":
        usb = (net.source or {}).get("type") == "usb"
        _check_hostdev_address(net, "usb" if usb else "pci")
        if not usb and (net.net or interfaces.NetFacts()).driver.get("name") == "vfio":
            hostdevs.check_vfio_backend(guest, net.describe())


def _check_hostdev(guest: Guest, h: Device) -> None:
    """A host device: its address kind, libvirt's generic checks, its address's, QEMU's."""
    # (a PCI one's rule is that of subsystem mode)
    _check_hostdev_address(h, None if h.type == "pci" and h.attrs.get("mode") != "subsys"
                           else h.type)
    hostdevs.check_generic(h, h.hostdev or hostdevs.HostdevFacts())
    _validate_address(guest, h)
    hostdevs.check_qemu(guest, h, h.hostdev or hostdevs.HostdevFacts())


def _check_channel(guest: Guest, ch: Device) -> None:
    """A channel."""
    chardevs.check_generic(guest, ch)
    _validate_address(guest, ch)
    chardevs.check_qemu(guest, ch)


def _check_console(guest: Guest, console: Device) -> None:
    """A console (one standing for a serial port is that port's)."""
    serial_stub = chardevs.stands_for_serial(guest, console)
    if not serial_stub:
        chardevs.check_generic(guest, console)
    if not chardevs.replaced_by_stub(guest, console):  # (one kept as written is validated)
        _validate_address(guest, console)
    if not serial_stub:
        chardevs.check_qemu(guest, console)


def _check_input(guest: Guest, inp: Device) -> None:
    """An input device: libvirt's generic checks (for a hvm guest), its address's, QEMU's."""
    if inp.bus == "ps2" and inp.type not in ("mouse", "keyboard"):
        raise PlanError(f"ps2 bus does not support {inp.type} input device", inp.describe(),
                        kind="internal")
    if inp.bus == "xen":
        raise PlanError("unsupported input bus xen", inp.describe(), kind="internal")
    if inp.type == "passthrough" and inp.bus not in (None, "virtio"):
        raise PlanError("only bus 'virtio' is supported for 'passthrough' input devices",
                        inp.describe(), kind="unsupported")
    if inp.type == "evdev" and inp.bus not in (None, "none"):
        raise PlanError("input evdev doesn't support bus element", inp.describe(),
                        kind="unsupported")
    if inp.model in devices.VIRTIO_INPUT_MODELS and inp.bus != "virtio" and \
            not (inp.bus is None and inp.type == "passthrough"):
        raise PlanError(f"only bus 'virtio' is supported for input model '{inp.model}'",
                        inp.describe(), kind="unsupported")
    _validate_address(guest, inp)
    if inp.bus == "ps2" and guest.domain.arch not in devices.PS2_ARCHES:
        raise PlanError("ps2 is not supported by this QEMU binary", inp.describe(),
                        kind="unsupported")
    if inp.bus == "usb" and inp.type == "keyboard":
        _check_emulator_has(guest, "usb-kbd", inp)
    if (inp.bus == "virtio" or (inp.bus is None and inp.type == "passthrough")) and \
            inp.model in ("virtio-transitional", "virtio-non-transitional"):
        raise PlanError("virtio (non-)transitional models are not supported for "
                        f"input type={inp.type}", inp.describe(), kind="unsupported")
    device = VIRTIO_INPUT_DEVICES.get(inp.type or "")
    # (a CCW one's device is another: s390x's QEMU has no virtio-input-host-ccw; an input
    # attached to a running guest has no address yet when it is validated)
    ccw = inp.address is not None and inp.address.type == "ccw"
    if (inp.bus == "virtio" or inp.type == "passthrough") and \
            (device in guest.machine.lacks or ccw and f"{device}-ccw" in guest.machine.lacks):
        raise PlanError(f"{device} is not supported by this QEMU binary", inp.describe(),
                        kind="unsupported")


def _check_filesystem(guest: Guest, fs: Device) -> None:
    """A filesystem."""
    filesystems.check_generic(fs)
    _validate_address(guest, fs)
    filesystems.check_qemu(guest, fs)


def _check_watchdog(guest: Guest, w: Device) -> None:
    """A watchdog: QEMU's checks alone (the address a model may have, then diag288's arch)."""
    if w.address is not None:
        if w.model == "ib700":
            raise PlanError("ib700 model of watchdog does not support configuring the address",
                            w.describe(), kind="unsupported")
        if w.model == "diag288":
            raise PlanError("diag288 model of watchdog is virtual and cannot go on any bus.",
                            w.describe(), kind="unsupported")
        if w.model == "i6300esb" and w.address.type != "pci":
            raise PlanError("i6300esb model of watchdog can go only on PCI bus", w.describe(),
                            kind="unsupported")
    if w.model == "diag288" and guest.domain.arch not in machines.S390:
        raise PlanError("diag288 model of watchdog is allowed for s390 and s390x only", w.describe(),
                        kind="unsupported")


def _check_rng(guest: Guest, r: Device) -> None:
    """An RNG."""
    rng.check_generic(guest, r)
    _validate_address(guest, r)
    rng.check_qemu(guest, r)


def _check_shmem(guest: Guest, shm: Device) -> None:
    """A shared memory device."""
    shmems.check_generic(shm)
    _validate_address(guest, shm)
    shmems.check_qemu(guest, shm)


def _check_redirdev(guest: Guest, rd: Device) -> None:
    """A USB redirector."""
    chardevs.check_generic(guest, rd)
    _validate_address(guest, rd)
    _validate_spicevmc(guest, rd)
    _check_emulator_has(guest, "usb-redir", rd)


def _check_tpm(guest: Guest, tpm: Device, host: Host) -> None:
    """A TPM: libvirt's generic checks, its address's, swtpm on ``host``, QEMU's."""
    model = tpm.model or ("tpm-spapr" if guest.domain.arch in machines.PPC64 else "tpm-tis")
    arm_virt = guest.machine.family == "arm-virt"
    tpm_mod.check_generic(tpm, model, arm_virt)
    _validate_address(guest, tpm)
    tpm_mod.check_swtpm(tpm, model, arm_virt, host.tpm)  # (before QEMU's back ends)
    emulator = guest.domain.emulator or machines.DEFAULT_EMULATORS.get(guest.domain.arch, "")
    backend = tpm.attrs.get("backend", "")
    # no TPM at all, or no swtpm for the back ends that run it: the back end is refused first
    message = f"The QEMU executable {emulator} does not support TPM backend type {backend}"
    if guest.domain.arch in NO_TPM_ARCHES:
        raise PlanError(message, tpm.describe(), kind="unsupported")
    if backend in tpm_mod.SWTPM_BACKENDS and not host.tpm().installed:
        raise HostError(message, tpm.describe())
    archs = TPM_MODEL_ARCHES.get(tpm.model or "")
    if archs is not None and guest.domain.arch not in archs:
        raise PlanError(f"The QEMU executable {emulator} does not support TPM model {tpm.model}",
                        tpm.describe(), kind="unsupported")


def _check_nvram(guest: Guest, nvram: Device) -> None:
    """A pSeries NVRAM device."""
    if guest.domain.arch not in machines.PPC64:
        raise PlanError("nvram device is only supported for PPC64", nvram.describe(), kind="unsupported")


def _check_pci_controller(c: Controller) -> None:
    """libvirt's generic checks of a PCI controller."""
    # (a root's address was collected with the others: an invalid one is refused there)
    row = controllers.lookup(c.model)
    if c.address is not None and row is not None and row.is_root:
        raise PlanError("pci-root and pcie-root controllers should not have an address",
                        c.describe(), kind="unsupported")
    if c.index is not None and c.index > 255:
        # planned first (even the buses up to it), refused now, as libvirt does
        raise PlanError(f"PCI controller index {c.index} too high, maximum is 255",
                        c.describe(), kind="unsupported")


def _check_controller(guest: Guest, c: Controller) -> None:
    """A controller: libvirt's generic checks of a PCI controller first, then its address's
    and its QEMU driver's (the models this QEMU has, the driver options only virtio-scsi
    takes, the machine's buses)."""
    if c.type == "pci":
        _check_pci_controller(c)
        if guest.machine.pci:
            _validate_pci_ranges(c)
    _validate_address(guest, c)
    if c.type == "scsi" and c.model in devices.SCSI_MODELS_QEMU_LACKS:
        raise PlanError(f"Unsupported controller model: {c.model}", c.describe(), kind="unsupported")
    if c.type == "scsi" and c.model in devices.SCSI_MODEL_DEVICES:
        qemu_device, name = devices.SCSI_MODEL_DEVICES[c.model]
        if qemu_device in guest.machine.lacks:
            raise PlanError(f"This QEMU doesn't support {name}", c.describe(), kind="unsupported")
    if not (c.type == "scsi" and c.model in devices.VIRTIO_SCSI_MODELS):
        for opt in devices.VIRTIO_SCSI_DRIVER_OPTIONS:
            value = c.attrs.get("driver_" + opt)
            if value is None or (opt != "ioeventfd" and not parsecheck.c_uint(value, 10)):
                continue  # (a number 0 is none)
            if opt == "iothread":
                raise PlanError("'iothread' is only supported for virtio-scsi controller",
                                c.describe(), kind="unsupported")
            raise PlanError(f"'{opt}' is only supported by virtio-scsi controller",
                            c.describe(), kind="unsupported")
    if c.type == "sata" and not guest.machine.sata_capable:
        raise PlanError("SATA is not supported with this QEMU binary", c.describe(),
                        kind="unsupported")
    if c.type == "ide" and not guest.machine.ide:
        raise PlanError("IDE controllers are unsupported for this QEMU binary or machine type",
                        c.describe(), kind="unsupported")
    disks.check_iothread(guest, c, "controller")
    if c.type == "pci" and "pcihole64" in c.attrs and guest.domain.arch not in machines.X86:
        raise PlanError("Setting the 64-bit PCI hole size is not supported for machine "
                        f"'{machines.canonical(guest.domain.arch, guest.domain.machine)}'", c.describe(),
                        kind="unsupported")
    if c.type == "scsi" and c.model == "ncr53c90":
        if c.index != 0:  # (None: one attached to a running guest, libvirt's -1)
            raise PlanError("ncr53c90 can only be used as first SCSI controller", c.describe(),
                            kind="unsupported")
        if not guest.machine.builtin_esp:
            raise PlanError("ncr53c90 SCSI controller is not a built-in for this machine",
                            c.describe(), kind="unsupported")
    if c.type == "ide" and c.index != 0:  # (None: as above)
        raise PlanError("Only a single IDE controller is supported for this machine type",
                        c.describe(), kind="unsupported")
    if c.type == "pci" and c.model == "pcie-root-port" and \
            (c.model_name is None or "model_name" in c.changed) and not guest.machine.pci:
        # (libvirt names the device of a root port only on machines it lays PCI out
        # for: not the ARM and RISC-V boards, but versatilepb)
        raise PlanError(f"Required option 'modelName' is not set for PCI controller with index "
                        f"'{c.index}', model '{c.model}' and modelName 'none'", c.describe(),
                        kind="internal")
    if c.type == "pci" and guest.machine.pci:
        _validate_pci_options(guest, c)
    elif c.type == "pci":
        _validate_unplanned_pci_options(guest, c)


def guest_audios(guest: Guest) -> list[audios.AudioFacts]:
    """The guest's audio backends after post-parse: those written, else the one libvirt adds."""
    return audios.default_audio([a.facts for a in guest.devices("audio") if isinstance(a.facts, audios.AudioFacts)],
                                [g.type for g in guest.domain.graphics_facts])


def _check_sound(guest: Guest, snd: Device, audio: list[audios.AudioFacts]) -> None:
    """A sound device (its address validated first): its audio backend, its model's QEMU devices."""
    sound = snd.facts if isinstance(snd.facts, sounds.SoundFacts) else sounds.SoundFacts()
    audios.check_id(sound.audio_id, audio, snd.describe())
    if snd.model == "usb":
        _check_emulator_has(guest, "usb-audio", snd)
    if snd.model == "ich9" and "ich9-intel-hda" in guest.machine.lacks:
        raise PlanError("The ich9-intel-hda audio controller is not supported in this QEMU binary",
                        snd.describe(), kind="unsupported")
    if devices.wanted_without_flags(snd):
        raise PlanError(f"sound card model '{snd.model}' is not supported by qemu", snd.describe(),
                        kind="internal")
    sounds.check_qemu(guest, snd, sound)


def _check_smartcard(guest: Guest, card: Device, attached: bool = False) -> None:
    """A smartcard (libvirt's generic checks, its address, then its QEMU driver's).  QEMU's
    driver takes one card, at CCID controller 0 slot 0: one ``attached`` to a running guest
    has no address (post-parse gives it at define only) unless written."""
    if card.address is not None and card.address.type != "ccid":
        raise PlanError("Controllers must use the 'ccid' address type", card.describe(),
                        kind="unsupported")
    if card.attrs.get("mode") == "passthrough":
        chardevs.check_generic(guest, card)
    _validate_address(guest, card)
    a = card.address
    if attached and (a is None or number(a.attrs.get("controller"), 0) or number(a.attrs.get("slot"), 0)):
        raise PlanError("this QEMU binary lacks multiple smartcard support", card.describe(),
                        kind="unsupported")
    _check_emulator_has(guest, SMARTCARD_DEVICES.get(card.attrs.get("mode") or "", ""), card)
    _validate_spicevmc(guest, card)


def _check_hub(guest: Guest, hub: Device) -> None:
    """A USB hub (its address validated first): the emulator's usb-hub."""
    _check_emulator_has(guest, "usb-hub", hub)


def _check_iommu(guest: Guest, iommu: Device) -> None:
    """An IOMMU (libvirt's generic checks, its address, then its QEMU driver's)."""
    _validate_iommu_generic(iommu)
    _validate_address(guest, iommu)
    _validate_iommu(guest, iommu)


def _check_attached_sound(guest: Guest, snd: Device) -> None:
    """A sound device attached to a running guest: its audio backend is one the guest has."""
    _validate_address(guest, snd)
    _check_sound(guest, snd, guest_audios(guest))


def _check_attached_smartcard(guest: Guest, card: Device) -> None:
    """A smartcard attached to a running guest (no CCID address unless written)."""
    _check_smartcard(guest, card, attached=True)


def _check_attached_audio(guest: Guest, dev: Device) -> None:
    """An audio backend attached to a running guest: its id, one the guest does not have,
    then QEMU's checks."""
    facts = dev.facts
    if not isinstance(facts, audios.AudioFacts):
        return
    if any(a.id == facts.id for a in guest_audios(guest)):
        raise PlanError(f"audio ID {facts.id} is used multiple times", dev.describe())
    if facts.type == "spice" and not guest.domain.spice:
        raise PlanError("Spice audio is not supported without spice graphics", dev.describe(),
                        kind="unsupported")


def _check_vsock(guest: Guest, vsock: Device) -> None:
    """A vsock."""
    cid = vsock.attrs.get("cid")
    if cid is not None and number(cid, 3) < 3:
        raise PlanError("guest CIDs must be >= 3", vsock.describe(), kind="unsupported")
    _validate_address(guest, vsock)
    if "vhost-vsock" in guest.machine.lacks:
        raise PlanError("vsock device is not supported with this QEMU binary", vsock.describe(),
                        kind="unsupported")


#: TABLE: the device checks of libvirt's validation of one device, by element, and whether
#: its address is validated before them (the kinds without generic checks of their own)
DEVICE_CHECKS: dict[str, tuple[Callable[[Guest, Device], None], bool]] = {
    "interface": (_check_interface, False), "hostdev": (_check_hostdev, False),
    "channel": (_check_channel, False), "console": (_check_console, False),
    "input": (_check_input, False), "filesystem": (_check_filesystem, False),
    "watchdog": (_check_watchdog, True), "rng": (_check_rng, False),
    "shmem": (_check_shmem, False), "redirdev": (_check_redirdev, False),
    "vsock": (_check_vsock, False), "nvram": (_check_nvram, True),
    "controller": (_check_controller, False), "hub": (_check_hub, True),
}


#: TABLE: the checks of a device of these kinds attached to a running guest, as libvirt
#: validates it against the guest (the kinds libvirt then says it cannot hot-plug)
ATTACHED_CHECKS: dict[str, Callable[[Guest, Device], None]] = {
    "sound": _check_attached_sound,
    "smartcard": _check_attached_smartcard,
    "iommu": _check_iommu,
    "audio": _check_attached_audio,
}


def check_device(guest: Guest, dev: Device, host: Host) -> None:
    """libvirt's validation of one device of ``guest`` as ``validate_late`` makes it (for a
    device attached to a running guest, which libvirt validates before anything else), on
    ``host``.  Disks, serial ports and memory devices have checks of their own (``disks``,
    :func:`check_serial`, ``memdevs``)."""
    if dev.tag == "tpm":
        _validate_unassigned(dev)
        _check_tpm(guest, dev, host)
        return
    if isinstance(dev, Controller) and dev.type == "pci":
        check_hotplugged_pci_controller(guest, dev)
        return
    if dev.tag in ATTACHED_CHECKS:
        _validate_unassigned(dev)
        ATTACHED_CHECKS[dev.tag](guest, dev)
        return
    checks = DEVICE_CHECKS.get(dev.tag)
    if checks is None:
        return
    _validate_unassigned(dev)
    if checks[1]:
        _validate_address(guest, dev)
    checks[0](guest, dev)
    if dev.tag == "interface":
        _check_interface_hostdev(guest, dev)


#: console target types of other hypervisors
CONSOLES_QEMU_LACKS = frozenset({"xen", "uml", "lxc", "openvz"})
#: the console target types of s390x (SCLP)
CONSOLES_S390 = frozenset({"sclp", "sclplm"})
#: the highest spapr-vio register
SPAPR_VIO_REG_MAX = 0xFFFFFFFF
#: the most x86 vCPUs without an IOMMU in extended interrupt mode (x2APIC ids)
X86_VCPUS_WITHOUT_EIM = 255
#: TABLE: features only pSeries guests may have, and what makes one count as given
#: (None: being there; else one of these attributes or child elements)
PSERIES_FEATURES: dict[str, tuple[str, ...] | None] = {
    "hpt": ("resizing", "maxpagesize"), "htm": None, "nested-hv": None, "ccf-assist": None,
    "cfpc": ("value",), "sbbc": ("value",), "ibs": ("value",)}
#: machine families whose QEMU has vmport
VMPORT_FAMILIES = frozenset({"i440fx", "q35", "isapc"})
#: the guest arches whose QEMU 7.2 has no vmcoreinfo device (libvirt refuses the feature on)
VMCOREINFO_LACKING = machines.PPC64 | machines.S390 | machines.MISC
#: the guest arches whose QEMU 7.2 has no TPM front end at all
NO_TPM_ARCHES = machines.S390 | machines.MISC
#: TABLE: <launchSecurity> types: how libvirt names each in its refusal, and the guest arches
#: whose QEMU 7.2 has it (whether the host runs it is ``hostcaps.Host.launch_security_runs``)
LAUNCH_SECURITY = {"sev": ("SEV", machines.X86), "s390-pv": ("S390 PV", machines.S390)}
MIB = 1024 * 1024


def _repeated(devs: Iterable[Device], key: Callable[[Device], Any]) -> tuple[Device, Device] | None:
    """The first device whose key (None: no key) an earlier device has, after that one."""
    seen: dict[Any, Device] = {}
    for d in devs:
        k = key(d)
        if k is None:
            continue
        if k in seen:
            return seen[k], d
        seen[k] = d
    return None


def _check_duplicate_hostdevs(devs: list[Device]) -> None:
    """The same host device twice (a PCI one by its host address, the others by what
    ``hostdevs`` reads of their source)."""
    keys: list[tuple[Device, tuple | None]] = []
    for h in devs:
        pci = _host_address(h)
        if pci is not None:
            key: tuple | None = ("pci",) + pci
        else:
            key = h.hostdev.identity if h.tag == "hostdev" and h.hostdev is not None else None
        keys.append((h, key))
    for i, (_, first) in enumerate(keys):
        if first is None:
            continue
        for h, second in keys[i + 1:]:
            if second is not None and hostdevs.same_source(first, second):
                raise PlanError("Hostdev already exists in the domain configuration", h.describe())


def _host_address(h: Device) -> tuple[int, ...] | None:
    """A PCI host device's host address (None for the other host devices)."""
    if not h.source or (h.tag != "interface" and h.type != "pci"):
        return None
    return tuple(number(h.source.get(k), 0, base=0) for k in ("domain", "bus", "slot", "function"))


def _validate_unassigned(d: Device) -> None:
    """libvirt's first generic check of each device, as it validates it."""
    if d.address is not None and d.address.type == "unassigned" and d.tag != "hostdev" \
            and d.parent is None:
        raise PlanError("address of type 'unassigned' is supported only for hostdevs",
                        d.describe(), kind="unsupported")


def check_serial(guest: Guest, ser: Device) -> None:
    """libvirt's checks of a ``<serial>``: its generic ones, its address, its QEMU driver's,
    its target type and model against the machine (also of a hot-plugged one)."""
    dom = guest.domain
    chardevs.check_generic(guest, ser)
    _validate_address(guest, ser)
    chardevs.check_qemu(guest, ser)
    target = devices.serial_target_type(ser, dom.arch in machines.X86, guest.machine.family)
    model = ser.attrs.get("target_model")
    wanted = devices.SERIAL_MODEL_TARGETS.get(model or "")  # (the target type a written model wants)
    if target == "spapr-vio-serial" and guest.machine.family != "pseries" and wanted in (None, target):
        # (found with the daemon: this one comes before the address checks, but after a
        # written model's own target type)
        raise PlanError(f"Serial device with target type '{target}' and target model "
                        f"'{model or 'spapr-vty'}' not compatible with "
                        "guest architecture or machine type", ser.describe(), kind="unsupported")
    need = SERIAL_ADDRESS_TYPES.get(target or "")
    if need is not None and ser.address is not None and ser.address.type != need:
        raise PlanError(f"Target type '{target}' requires address type '{need}'", ser.describe(),
                        kind="unsupported")
    if target in devices.SERIAL_TARGETS_WITHOUT_ADDRESS and ser.address is not None:
        raise PlanError(f"Target type '{target}' cannot have an associated address", ser.describe(),
                        kind="unsupported")
    if wanted is not None and wanted != target:
        raise PlanError(f"Target model '{model}' requires target type '{wanted}'", ser.describe(),
                        kind="unsupported")
    model = model or devices.SERIAL_TARGET_MODELS.get((target or "", guest.machine.family)) or \
        devices.SERIAL_TARGET_MODELS.get((target or "", ""))
    home = devices.SERIAL_MODEL_MACHINES.get(model or "")
    if home is not None and guest.machine.family not in home:
        raise PlanError(f"Serial device with target type '{target}' and target model '{model}' not "
                        "compatible with guest architecture or machine type", ser.describe(),
                        kind="unsupported")


def _validate_address(guest: Guest, d: Device) -> None:
    """What libvirt's QEMU driver checks of a device's address first when it validates the
    device (after libvirt's own checks of it)."""
    a = d.address
    if a is not None and a.is_pci and a.zpci is not None and not guest.machine.zpci:
        # (a device check: the defaults, the addresses and the domain's checks come first)
        raise PlanError("This QEMU binary doesn't support zPCI", d.describe(), kind="unsupported")
    if a is not None and a.type == "spapr-vio" and a.attrs.get("reg") is not None:
        reg = parsecheck.c_uint(a.attrs["reg"], 16, parsecheck.ULLONG_MAX) or 0
        if reg > SPAPR_VIO_REG_MAX:
            raise PlanError(f"spapr-vio reg='0x{reg:x}' exceeds maximum possible value "
                            f"(0x{SPAPR_VIO_REG_MAX:x})", d.describe(), kind="unsupported")
    if a is not None and a.type == "ccw" and not guest.machine.ccw:
        raise PlanError("cannot use CCW address type for device '<null>' using machine type "
                        f"'{machines.canonical(guest.domain.arch, guest.domain.machine)}'",
                        d.describe(), kind="unsupported")
    if a is not None and a.type == "drive" and d.tag != "disk":
        disks.check_scsi_drive_address(guest, d, disks.drive_numbers(d))
    if "acpi_index" in d.attrs and _final_address_type(guest, d) not in (None, "pci"):
        raise PlanError("ACPI index is only supported for PCI devices", d.describe(),
                        kind="unsupported")
    _validate_rom(guest, d)


#: disk buses whose disks libvirt's post-parse gives a drive address
_DRIVE_BUSES = frozenset({"ide", "fdc", "scsi", "sata"})


def _final_address_type(guest: Guest, d: Device) -> str | None:
    """The kind of address a device has when libvirt validates it: the one written (or
    planned), else the one libvirt's other passes give it (a drive address for IDE, floppy,
    SCSI and SATA disks and SCSI host devices, a USB port for USB devices); pciplan writes
    neither."""
    if d.address is not None:
        return d.address.type
    if d.tag == "disk" and d.bus in _DRIVE_BUSES:
        return "drive"
    if d.tag == "hostdev" and d.type == "scsi" and d.attrs.get("mode") != "capabilities":
        return "drive"  # (libvirt's post-parse gives a SCSI host device a drive address)
    if (d.tag == "hub" and d.type == "usb") or any(u is d for u in transports.usb_port_users(guest)):
        return "usb"
    return None


def _validate_rom(guest: Guest, d: Device) -> None:
    """QEMU's check of a device's ROM settings, after its address's."""
    if "rom" in d.attrs and _final_address_type(guest, d) not in (None, "pci", "unassigned"):
        raise PlanError("ROM tuning is only supported for PCI devices", d.describe(),
                        kind="unsupported")


#: the guest arches whose QEMU has a PIIX4 (or ICH9) power management device, whose
#: disable_s3/disable_s4 libvirt needs for <pm> (ppc64's and ppc's are built with PIIX4, as x86's)
PM_ARCHES = machines.X86 | machines.PPC64 | machines.PPC32


def _validate_pm(dom: Domain) -> None:
    """``<pm>``: ACPI S3/S4, on the arches of ``PM_ARCHES``."""
    if dom.arch not in PM_ARCHES:
        for state, name in (("S3", "suspend-to-mem"), ("S4", "suspend-to-disk")):
            if name in dom.pm:
                raise PlanError(f"setting ACPI {state} not supported", f"pm/{name}", kind="unsupported")


def _validate_features(guest: Guest) -> None:
    """libvirt's QEMU driver checks the features in its own order (that of
    ``parsecheck.FEATURES``): some belong to one architecture or machine."""
    dom, family = guest.domain, guest.machine.family
    x86, arm_virt = dom.arch in machines.X86, family == "arm-virt"

    def refuse(message: str) -> PlanError:
        return PlanError(message, "features", kind="unsupported")

    def elsewhere(name: str) -> PlanError:
        return refuse(f"The '{name}' feature is not supported for architecture '{dom.arch}' or "
                      f"machine type '{machines.canonical(dom.arch, dom.machine)}'")
    for name in parsecheck.FEATURES:
        attrs = dom.features.get(name)
        if attrs is None:
            continue
        if name == "ioapic" and attrs.get("driver") and not x86:
            raise elsewhere(name)
        if name in PSERIES_FEATURES and family != "pseries":
            given_by = PSERIES_FEATURES[name]
            if given_by is None or any(k in attrs for k in given_by):
                raise elsewhere(name)
        if name == "gic" and not arm_virt:
            raise elsewhere(name)
        if name == "vmport" and (not x86 or family not in VMPORT_FAMILIES):
            raise refuse("vmport is not available with this QEMU binary")
        if name == "vmcoreinfo" and attrs.get("state", "on") == "on" and dom.arch in VMCOREINFO_LACKING:
            raise refuse("vmcoreinfo is not available with this QEMU binary")
        if name == "apic" and "eoi" in attrs and not x86:
            raise refuse(f"The 'eoi' attribute of the 'apic' feature is not supported for "
                         f"architecture '{dom.arch}' or machine type "
                         f"'{machines.canonical(dom.arch, dom.machine)}'")
        if name == "pvspinlock" and not x86:
            raise elsewhere(name)
        if name == "hyperv" and not x86 and not arm_virt:
            raise refuse(f"Hyperv features are not supported for architecture '{dom.arch}' or "
                         f"machine type '{machines.canonical(dom.arch, dom.machine)}'")
        if name == "pmu" and attrs.get("state") == "off" and dom.arch in machines.PPC64:
            raise refuse(f"PMU is always enabled for architecture '{dom.arch}'")
        if name == "tcg" and dom.tb_cache is not None:
            if dom.virt_type != "qemu":
                raise refuse(f"TCG features are incompatible with domain type '{dom.virt_type}'")
            if dom.tb_cache % MIB:
                raise refuse("tb-cache size must be an integer multiple of MiB")
#: host device subsystems and the address kinds each may have, with libvirt's refusal
#: of any other (and its error class)
HOSTDEV_ADDRESS_TYPES = {
    "pci": (("pci", "unassigned"), "PCI host devices must use 'pci' or 'unassigned' address type",
            "internal"),
    "scsi": (("drive",), "SCSI host device must use 'drive' address type", "unsupported"),
    "usb": (("usb",), "USB host device must use 'usb' address type", "unsupported"),
}


def _check_hostdev_address(d: Device, subsys: str | None) -> None:
    """The address of a host device (or of a NIC's) of subsystem ``subsys``."""
    rule = HOSTDEV_ADDRESS_TYPES.get(subsys or "")
    if rule is not None and d.address is not None and d.address.type not in rule[0]:
        raise PlanError(rule[1], d.describe(), kind=rule[2])
#: serial port target types and the only address kind each takes (usb-serial is
#: checked when the port is parsed)
SERIAL_ADDRESS_TYPES = {"isa-serial": "isa", "isa-debug": "isa", "usb-serial": "usb",
                        "pci-serial": "pci", "spapr-vio-serial": "spapr-vio"}
#: the guest arches whose QEMU 7.2 has each TPM front end (tpm-crb is x86's alone,
#: pSeries has only its own, and the spapr-tpm-proxy is pSeries-only too)
TPM_MODEL_ARCHES = {"tpm-crb": machines.X86,
                    "tpm-tis": machines.X86 | {"aarch64", "armv7l", "riscv64"},
                    "tpm-spapr": machines.PPC64,
                    "spapr-tpm-proxy": machines.PPC64}


def _check_duplicate_drives(drives: list[Device]) -> None:
    """Two disks of one bus at one drive address (written, or derived from the target
    names: 'vda' on IDE is 'hda')."""
    seen: dict[tuple, Device] = {}
    for disk in drives:
        n = disks.drive_numbers(disk)
        if n is None:
            continue
        key = (disk.bus,) + n
        first = seen.get(key)
        if first is not None:
            raise PlanError(f"Found duplicate drive address for disk with target name "
                            f"'{first.target.get('dev', '')}' controller='{n[0]}' bus='{n[1]}' "
                            f"target='{n[2]}' unit='{n[3]}'", disk.describe(), kind="unsupported")
        seen[key] = disk


#: TABLE: libvirt's words when the emulator lacks a device it checks for (QEMU names)
LACKED_DEVICE_MESSAGES = {
    "usb-kbd": "usb keyboard is not supported by this QEMU binary",
    "usb-storage": "This QEMU doesn't support '-device usb-storage'",
    "usb-hub": "usb-hub not supported by QEMU binary",
    "usb-redir": "USB redirection is not supported by this version of QEMU",
    "ccid-card-emulated": "this QEMU binary lacks smartcard host mode support",
    "ccid-card-passthru": "this QEMU binary lacks smartcard passthrough mode support",
    "usb-audio": "usb-audio controller is not supported by this QEMU binary",
}
#: the QEMU device of each smartcard mode
SMARTCARD_DEVICES = {"host": "ccid-card-emulated", "host-certificates": "ccid-card-emulated",
                     "passthrough": "ccid-card-passthru"}


def _check_emulator_has(guest: Guest, qemu_device: str, dev: Device) -> None:
    """QEMU's refusal of a device its emulator lacks (``Machine.lacks``)."""
    if qemu_device in guest.machine.lacks:
        raise PlanError(LACKED_DEVICE_MESSAGES[qemu_device], dev.describe(), kind="unsupported")


def _validate_spicevmc(guest: Guest, dev: Device) -> None:
    if dev.type == "spicevmc" and not guest.domain.spice:
        raise PlanError("chardev 'spicevmc' not supported without spice graphics", dev.describe(),
                        kind="unsupported")


def _validate_panic(guest: Guest, panic: Device) -> None:
    dom = guest.domain
    what = panic.describe()
    model = panic.model  # (libvirt's default for the machine where none was given: defaults)
    if model == "pseries" and guest.machine.family != "pseries":
        raise PlanError("only pSeries guests support panic device of model 'pseries'", what,
                        kind="unsupported")
    if model == "s390" and dom.arch not in machines.S390:
        raise PlanError("only S390 guests support panic device of model 's390'", what, kind="unsupported")
    if model == "isa" and dom.arch not in machines.X86:
        raise PlanError("the QEMU binary does not support the ISA panic device", what, kind="unsupported")
    if model == "hyperv" and dom.arch not in machines.X86:
        raise PlanError("only i686 and x86_64 guests support panic device of model 'hyperv'", what,
                        kind="unsupported")
    a = panic.address
    if a is None:
        return
    if model == "isa" and a.type != "isa":
        raise PlanError("panic is supported only with ISA address type", what, kind="unsupported")
    if model in ("pseries", "hyperv", "s390"):
        raise PlanError(f"setting the panic device address is not supported for model '{model}'", what,
                        kind="unsupported")


#: the memory models libvirt checks as hot-pluggable (an SGX EPC section is not)
HOTPLUG_MEMORY_MODELS = frozenset({"dimm", "nvdimm", "virtio-pmem", "virtio-mem"})
#: TABLE: the address kind the virtio memory models take (besides none), and libvirt's
#: words for another (a DIMM's or an NVDIMM's address of any kind is replaced by a DIMM
#: slot before: libvirt's 'only 'dimm' addresses' is for hot-plug alone)
MEMORY_ADDRESS_TYPES = {
    "virtio-pmem": ("pci", "only 'pci' addresses are supported for the virtio-pmem device"),
    "virtio-mem": ("pci", "only 'pci' addresses are supported for the virtio-mem device"),
}

#: ...and a DIMM's or NVDIMM's when hot-plugged (a defined one's is replaced by a DIMM slot)
ATTACHED_DIMM_ADDRESS_TYPES = {
    model: ("dimm", "only 'dimm' addresses are supported for the pc-dimm device")
    for model in ("dimm", "nvdimm")}


def _validate_memory_hotplug(dom: Domain, mems: list[Device]) -> None:
    """libvirt's limits of ``<maxMemory>``: its slots and the space above the initial memory;
    of each memory device, in turn, :func:`check_memory_device` (before any device's own
    checks)."""
    sizes = dom.memory
    if sizes is None:
        return
    _check_memory_slots(sizes, len(mems))
    for mem in mems:
        check_memory_device(dom, mem, mems)
    _check_hotplug_space(sizes, sizes.devices)


def _check_memory_slots(sizes: parsecheck.MemorySizes, count: int) -> None:
    if count > sizes.slots:
        raise PlanError(f"memory device count '{count}' exceeds slots count '{sizes.slots}'",
                        "maxMemory", kind="unsupported")


def _check_hotplug_space(sizes: parsecheck.MemorySizes, devices_size: int) -> None:
    """The memory devices (``devices_size`` bytes) fit above the initial memory."""
    initial = sizes.numa or sizes.memory - sizes.devices
    if devices_size > sizes.maximum - initial:
        raise PlanError("memory device total size exceeds hotplug space", "maxMemory",
                        kind="unsupported")


def check_memory_device(dom: Domain, mem: Device, mems: list[Device]) -> None:
    """libvirt's hot-plug checks of one memory device among ``mems``: a virtio one's address
    kind, its NUMA node (needed when the guest has NUMA cells, but by virtio-pmem), its DIMM
    slot (within ``<maxMemory slots>``, and not another device's)."""
    a = mem.address
    if mem.model not in HOTPLUG_MEMORY_MODELS:
        return
    slots = dom.memory.slots if dom.memory is not None and dom.max_memory else 0
    rule = MEMORY_ADDRESS_TYPES.get(mem.model or "")
    if rule is not None and a is not None and a.type != rule[0]:
        raise PlanError(rule[1], mem.describe(), kind="unsupported")
    node = mem.facts.node if isinstance(mem.facts, memdevs.MemFacts) else None
    if node is None and dom.numa_cells and mem.model != "virtio-pmem":
        raise PlanError("target NUMA node needs to be specified for memory device",
                        mem.describe(), kind="unsupported")
    if mem.model in ("dimm", "nvdimm") and a is not None and a.type == "dimm":
        slot = parsecheck.c_uint(a.attrs.get("slot") or "0", 10) or 0
        if slot >= slots:
            raise PlanError(f"memory device slot '{slot}' exceeds slots count '{slots}'",
                            mem.describe(), kind="unsupported")
        base = parsecheck.c_uint(a.attrs.get("base") or "0", 16, parsecheck.ULLONG_MAX) or 0
        for other in mems:
            b = other.address
            if other is mem or b is None or b.type != "dimm":
                continue
            if parsecheck.c_uint(b.attrs.get("slot") or "0", 10) == slot:
                raise PlanError(f"memory device slot '{slot}' is already being used by another "
                                "memory device", mem.describe(), kind="unsupported")
            if base and parsecheck.c_uint(b.attrs.get("base") or "0", 16, parsecheck.ULLONG_MAX) == base:
                raise PlanError(f"memory device base '{base:#x}' is already being used by "
                                "another memory device", mem.describe(), kind="unsupported")


def check_memory_attach(guest: Guest, mem: Device) -> None:
    """libvirt's checks of a memory device hot-plugged into the running guest, after the
    device's own: its compatibility with the guest (``<maxMemory>`` defined and not
    exceeded), then ``qemuDomainDefValidateMemoryHotplug`` with the new device (its address,
    NUMA node and DIMM slot, then the slots and the space with the device counted in)."""
    dom = guest.domain
    mems = guest.devices("memory")
    if not dom.max_memory or dom.memory is None:
        raise PlanError("cannot use/hotplug a memory device when domain 'maxMemory' is not defined",
                        mem.describe(), kind="unsupported")
    sizes = dom.memory
    size = mem.facts.size if isinstance(mem.facts, memdevs.MemFacts) else 0
    # (the guest's memory, its devices' included, with the new one: in KiB, unaligned)
    if sizes.memory // memdevs.KIB + size > sizes.maximum // memdevs.KIB:
        raise PlanError(f"Attaching memory device with size '{size}' would exceed domain's maxMemory "
                        f"config size '{sizes.maximum // memdevs.KIB}'", mem.describe(), kind="unsupported")
    a = mem.address
    rule = ATTACHED_DIMM_ADDRESS_TYPES.get(mem.model or "")
    if rule is not None and a is not None and a.type != rule[0]:
        raise PlanError(rule[1], mem.describe(), kind="unsupported")
    check_memory_device(dom, mem, [*mems, mem])
    _check_memory_slots(sizes, len(mems) + 1)
    _check_hotplug_space(sizes, sizes.devices + size * memdevs.KIB)


#: machine families each IOMMU model works with (libvirt 9.0's words for them)
IOMMU_MACHINES: dict[str, tuple[frozenset[str], str]] = {
    "intel": (frozenset({"q35"}), "Q35 machines"),
    "virtio": (frozenset({"q35", "arm-virt"}), "Q35 and ARM Virt machines"),
    "smmuv3": (frozenset({"arm-virt"}), "ARM Virt machines"),
}


def _validate_iommu_generic(iommu: Device) -> None:
    """libvirt's own checks of an IOMMU: only model intel takes driver options; only
    virtio may have an address."""
    what = iommu.describe()
    if iommu.model != "intel" and any(name in iommu.attrs for name in devices.IOMMU_DRIVER_OPTIONS):
        raise PlanError(f"iommu model '{iommu.model}' doesn't support additional attributes", what)
    if iommu.model != "virtio" and iommu.address is not None:
        raise PlanError(f"iommu model '{iommu.model}' can't have address", what)


def _validate_iommu(guest: Guest, iommu: Device) -> None:
    """QEMU's checks of an IOMMU."""
    what = iommu.describe()
    allowed = IOMMU_MACHINES.get(iommu.model or "")
    if allowed is not None and guest.machine.family not in allowed[0]:
        raise PlanError(f"IOMMU device: '{iommu.model}' is only supported with {allowed[1]}", what,
                        kind="unsupported")
    if iommu.model == "virtio" and not guest.domain.acpi:
        raise PlanError("IOMMU device: 'virtio' requires ACPI", what, kind="unsupported")
    if iommu.model == "virtio" and iommu.address is not None and iommu.address.type != "pci":
        raise PlanError("IOMMU device: 'virtio' needs a PCI address", what, kind="unsupported")
    if iommu.attrs.get("eim") == "on" and iommu.attrs.get("intremap") != "on":
        raise PlanError("IOMMU eim requires interrupt remapping to be enabled", what, kind="unsupported")


def _validate_pci_ranges(c: Controller) -> None:
    """libvirt's generic checks of a PCI controller's <target> numbers, whatever its model."""
    what = c.describe  # (named only when refused)
    for opt, (low, high) in controllers.OPTION_RANGES.items():
        if opt in c.target:
            try:
                v = int(c.target[opt], 0)
            except ValueError:
                raise PlanError(f"Invalid value for attribute '{opt}' in element 'target': "
                                f"'{c.target[opt]}'", what) from None
            if not low <= v <= high:
                name = {"index": "target index"}.get(opt, opt)
                raise PlanError(f"PCI controller {name} '{v}' out of range - must be "
                                f"{low}-{high}", what, kind="unsupported")
    ti = c.target.get("index")
    if ti is not None and (int(ti, 0) == 0) != (c.index == 0):
        raise PlanError("Only the PCI controller with index 0 can have target index 0, "
                        "and vice versa", what, kind="unsupported")
    if c.index == 0 and "node" in c.target:
        raise PlanError("The PCI controller with index=0 can't be associated with a NUMA "
                        "node", what, kind="unsupported")


#: the arches whose QEMU has PIIX4's ACPI switch for hot-plug on the root bus (x86, and
#: ppc64's and ppc's, built with PIIX4): a pci-root's <target hotplug> needs it
PIIX4_ROOT_HOTPLUG_ARCHES = machines.X86 | machines.PPC64 | machines.PPC32


def _validate_pci_options(guest: Guest, c: Controller) -> None:
    """The QEMU driver's checks of a PCI controller's <model name> and <target> options
    (the ones the planner filled in included): the model name, then which options the
    model takes."""
    pseries = guest.machine.multiple_roots
    row = controllers.MODELS[c.model or "pci-root"]
    what = c.describe  # (named only when refused)
    phb = pseries and c.model == "pci-root"
    label = f"for PCI controller with index '{c.index}', model '{c.model}' and modelName " \
            f"'{c.model_name or 'none'}'"
    if c.model_name is not None:
        if row.is_root and not phb:
            raise PlanError(f"Option 'modelName' is not valid {label}", what, kind="unsupported")
        names = (controllers.PSERIES_PHB_MODEL_NAME,) if phb else row.model_names
        if c.model_name not in names:
            raise PlanError(f"Option 'modelName' has invalid value {label}", what, kind="unsupported")
    allowed = controllers.PSERIES_PHB_OPTIONS if phb else row.options
    for opt in c.target:
        if opt in controllers.TARGET_ATTRIBUTES and opt not in allowed:
            raise PlanError(f"Option '{controllers.OPTION_LABELS.get(opt, opt)}' is not valid "
                            f"{label}", what, kind="unsupported")
    if c.model == "pci-root" and "hotplug" in c.target and \
            guest.domain.arch not in PIIX4_ROOT_HOTPLUG_ARCHES:
        raise PlanError("setting the 'hotplug' property on a 'pci-root' device is not supported "
                        "by this QEMU binary", what, kind="unsupported")
    if c.model_name is not None and c.model_name in guest.machine.lacks:
        raise PlanError(f"The '{c.model_name}' device is not supported by this QEMU binary", what,
                        kind="unsupported")


#: the <target> options of a PCI controller in the order libvirt's QEMU driver checks them
_PCI_OPTION_ORDER = ("index", "busNr", "node", "chassisNr", "chassis", "port", "hotplug")
#: the options libvirt fills in for a PCI controller it plans (so requires in validation)
_REQUIRED_PCI_OPTIONS = {
    "pci-expander-bus": ("busNr",), "pcie-expander-bus": ("busNr",), "pci-bridge": ("chassisNr",),
    "pcie-root-port": ("chassis", "port"), "pcie-switch-downstream-port": ("chassis", "port"),
}


def _validate_unplanned_pci_options(guest: Guest, c: Controller) -> None:
    """On a machine without PCI to libvirt nothing fills in a PCI controller's model name
    and options (nor for one attached to a running guest: its index is -1 too): its QEMU
    driver refuses a controller without those it needs (a pci-bridge that reached
    validation without a slot, on an ARM board), in its order: the model name, the index,
    the options, the hot-plug switch, the device."""
    row = controllers.MODELS.get(c.model or "")
    if row is None:
        return
    pseries = guest.machine.family == "pseries"
    phb = pseries and c.model == "pci-root"  # (a PHB, with a model name or missing it)
    label = f"for PCI controller with index '{-1 if c.index is None else c.index}', model " \
            f"'{c.model}' and modelName '{c.model_name or 'none'}'"
    if (not row.is_root or phb) and c.model_name is None:
        raise PlanError(f"Required option 'modelName' is not set {label}", c.describe(), kind="internal")
    if row.is_root and not phb and c.model_name is not None:
        raise PlanError(f"Option 'modelName' is not valid {label}", c.describe(), kind="unsupported")
    names = (controllers.PSERIES_PHB_MODEL_NAME,) if phb else row.model_names
    if c.model_name is not None and c.model_name not in names:
        raise PlanError(f"Option 'modelName' has invalid value {label}", c.describe(), kind="unsupported")
    if not row.is_root and c.index == 0:  # (the first free index, for one written without: no root took it)
        raise PlanError(f"Index for '{c.model}' controllers must be > 0", c.describe(), kind="unsupported")
    if row.is_root and not phb and c.index != 0:
        raise PlanError(f"Index for '{c.model}' controllers must be 0", c.describe(), kind="unsupported")
    required = ("index",) if phb else _REQUIRED_PCI_OPTIONS.get(row.name, ())
    allowed = controllers.PSERIES_PHB_OPTIONS if phb else row.options
    for option in _PCI_OPTION_ORDER:
        if option in required and option not in c.target:
            raise PlanError(f"Required option '{controllers.OPTION_LABELS[option]}' is not set {label}",
                            c.describe(), kind="internal")
        if option in c.target and option not in allowed:
            raise PlanError(f"Option '{controllers.OPTION_LABELS[option]}' is not valid {label}",
                            c.describe(), kind="unsupported")
    if "hotplug" in c.target:
        if c.model == "pci-root" and guest.domain.arch not in PIIX4_ROOT_HOTPLUG_ARCHES:
            raise PlanError("setting the 'hotplug' property on a 'pci-root' device is not supported "
                            "by this QEMU binary", c.describe(), kind="unsupported")
        if row.name in PCIE_PORT_MODELS and PCIE_PORT_HOTPLUG_DEVICE in guest.machine.lacks:
            raise PlanError(f"setting the 'hotplug' property on a '{c.model_name}' device is not "
                            "supported by this QEMU binary", c.describe(), kind="unsupported")
    if c.model_name is not None and c.model_name in guest.machine.lacks:
        raise PlanError(f"The '{c.model_name}' device is not supported by this QEMU binary", c.describe(),
                        kind="unsupported")


#: the PCI controller models whose <target hotplug> QEMU's pcie-root-port device property is
#: (libvirt asks the emulator for the property on that device, whichever the model)
PCIE_PORT_MODELS = frozenset({"pcie-root-port", "pcie-switch-downstream-port"})
PCIE_PORT_HOTPLUG_DEVICE = "pcie-root-port"


def check_hotplugged_pci_controller(guest: Guest, c: Controller) -> None:
    """A PCI controller attached to a running guest, as libvirt 9.0 parses and validates
    it (before it says that no PCI controller can be hot-plugged): nothing fills in its
    index, model name or options, which define's address pass does, so its QEMU driver
    refuses one without those it needs."""
    _pci_controller_post_parse(guest, c)
    _check_pci_controller(c)
    _validate_address(guest, c)
    if c.model is None:
        raise PlanError("Unexpected enum value -1 for virDomainControllerModelPCI", c.describe(),
                        kind="internal")
    _validate_unplanned_pci_options(guest, c)


def _pci_controller_post_parse(guest: Guest, c: Controller) -> None:
    """What libvirt checks of one PCI controller as it fills in its defaults."""
    m = guest.machine
    what = c.describe()
    row = controllers.lookup(c.model)
    if c.model is None:
        return  # (refused as the PCI addresses are laid out: ``planner.assign``)
    if row is None:
        raise PlanError(f"Unknown PCI controller model '{c.model}'", what)
    if row.is_root and c.index != 0 and not m.multiple_roots:
        raise PlanError("pci-root and pcie-root controllers should have index 0", what)
    if c.model == "pci-expander-bus" and m.chipset != "i440fx":
        raise PlanError("pci-expander-bus controllers are only supported on 440fx-based machinetypes",
                        what, kind="unsupported")
    if c.model == "pcie-expander-bus" and m.family not in ("q35", "arm-virt"):
        raise PlanError("pcie-expander-bus controllers are not supported with this machine type",
                        what, kind="unsupported")
    node = c.target.get("node")
    if node is not None:
        try:
            n = int(node, 0)
        except ValueError:
            raise PlanError(f"Invalid NUMA node '{node}'", what) from None
        if n >= guest.domain.numa_cells:
            index = -1 if c.index is None else c.index  # (-1: attached to a running guest)
            raise PlanError(f"{c.model} with index {index} is configured for a NUMA node ({n}) not "
                            f"present in the domain's <cpu><numa> array ({guest.domain.numa_cells})",
                            what)


def _validate_pci_controller(guest: Guest, c: Controller) -> None:
    """What libvirt checks of one PCI controller once the domain is complete."""
    what = c.describe()
    row = controllers.lookup(c.model)
    if row is None:
        return  # (no model: refused as the PCI addresses are laid out)
    if c.index is not None and c.index > MAX_PLANNED_INDEX:
        # libvirt first lays out that many buses (its error then is usually the address
        # set's, e.g. no slot left for the root ports on q35) and checks the index after;
        # pciplan does too, up to a bound that keeps absurd indexes from costing seconds
        raise PlanError(f"PCI controller index {c.index} too high, maximum is 255", what,
                        kind="unsupported")
