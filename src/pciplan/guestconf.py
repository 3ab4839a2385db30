"""The domain's own settings outside ``<devices>`` as libvirt 9.0 refuses them: its ids and
title, memory units, vCPUs, ``<cputune>``, ``<cpu>``, lifecycle actions, ``<clock>``
(``clock``), the boot loader and BIOS options, hugepages.

The parser's checks (``check_ids``, ``check_sizing``, ``check_cpu``, ``check_after_features``)
run in libvirt's order of reading the domain; ``post_parse``, ``validate_qemu`` (QEMU's
domain checks, before any device) and ``validate_generic`` (libvirt's own, after every
device) read the ``GuestFacts`` the parser left.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lxml import etree

from . import clock, machines, parsecheck, qemuns, sources
from .errors import UNKNOWN_CAUSE, HostError, PlanError
from .records import Row, Value

if TYPE_CHECKING:
    from .defaults import Guest
    from .disks import Storage
    from .domain import Domain
    from .hostcaps import Host

#: the actions libvirt knows for on_poweroff, on_reboot and on_crash
LIFECYCLE_ACTIONS = frozenset({"destroy", "restart", "rename-restart", "preserve",
                               "coredump-destroy", "coredump-restart"})
LIFECYCLE_EVENTS = ("on_poweroff", "on_reboot", "on_crash")
#: the actions libvirt knows for on_lockfailure (read after the others)
LOCKFAILURE_ACTIONS = frozenset({"default", "poweroff", "restart", "pause", "ignore"})
CPU_MODES = frozenset({"custom", "host-model", "host-passthrough", "maximum"})
CPU_MATCHES = frozenset({"minimum", "exact", "strict"})
CPU_CHECKS = frozenset({"default", "none", "partial", "full"})
#: <keywrap><cipher name>
KEYWRAP_CIPHERS = frozenset({"aes", "dea"})
#: <cpu><cache mode>
CPU_CACHE_MODES = frozenset({"emulate", "passthrough", "disable"})
#: <cpu><maxphysaddr mode>
MAXPHYSADDR_MODES = frozenset({"emulate", "passthrough"})
#: <vcpu placement> (and the default of <numatune>'s)
VCPU_PLACEMENTS = frozenset({"static", "auto"})
CPU_FALLBACKS = frozenset({"allow", "forbid"})
CPU_FEATURE_POLICIES = frozenset({"force", "require", "optional", "disable", "forbid"})
_PERIOD = (1000, 1000000)
_QUOTA = (1000, 17592186044415)
#: TABLE: <cputune>'s numbers in libvirt's order: how it names one it cannot read, whether
#: it may be negative, and the range its validation takes (a number of 0 or less is not
#: checked)
CPUTUNE_NUMBERS = (("shares", "shares", False, (2, 262144)), ("period", "period", False, _PERIOD),
                   ("quota", "quota", True, _QUOTA),
                   ("global_period", "global period", False, _PERIOD),
                   ("global_quota", "global quota", True, _QUOTA),
                   ("emulator_period", "emulator period", False, _PERIOD),
                   ("emulator_quota", "emulator quota", True, _QUOTA),
                   ("iothread_period", "iothread period", False, _PERIOD),
                   ("iothread_quota", "iothread quota", True, _QUOTA))
#: a NUMA cell's memory access modes ('default' is not written)
NUMA_MEMORY_ACCESS = frozenset({"shared", "private"})
YES_NO = frozenset({"yes", "no"})
MEMORY_SOURCES = frozenset({"file", "anonymous", "memfd"})
MEMORY_ALLOCATIONS = frozenset({"immediate", "ondemand"})
ACPI_TABLE_TYPES = frozenset({"slic"})
NUMATUNE_MODES = frozenset({"strict", "preferred", "interleave", "restrictive"})
NUMATUNE_PLACEMENTS = frozenset({"static", "auto"})
SECLABEL_TYPES = frozenset({"none", "dynamic", "static"})
LAUNCH_SECURITY_TYPES = frozenset({"sev", "s390-pv"})
#: TABLE: a <blkiotune><device>'s numbers, and how libvirt names one it cannot read
BLKIO_DEVICE_NUMBERS = (("weight", "weight"), ("read_iops_sec", "read iops sec"),
                        ("write_iops_sec", "write iops sec"), ("read_bytes_sec", "read bytes sec"),
                        ("write_bytes_sec", "write bytes sec"))
BOOTMENU_TIMEOUT_MAX = 65535
UINT_MAX = 0xFFFFFFFF
MIB = 1024 * 1024
REBOOT_TIMEOUT_MIN, REBOOT_TIMEOUT_MAX = -1, 65535
#: TABLE: the size units libvirt takes, in bytes
_UNIT_BYTES = {"b": 1, "bytes": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024 ** 2, "mb": 1000 ** 2,
               "mib": 1024 ** 2, "g": 1024 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4,
               "tb": 1000 ** 4, "tib": 1024 ** 4, "p": 1024 ** 5, "pb": 1000 ** 5, "pib": 1024 ** 5,
               "e": 1024 ** 6, "eb": 1000 ** 6, "eib": 1024 ** 6}
_SIZE_UNITS = frozenset(_UNIT_BYTES)


class VcpuState(Row):
    """One vCPU of ``<vcpus>``: online, hotpluggable ('yes', 'no', None: not said), its order
    (0: none)."""

    online: bool
    hotpluggable: str | None
    order: int


#: a vCPU <vcpus> does not name: offline, and nothing said of it
VCPU_UNNAMED = VcpuState(False, None, 0)


def _no_clock() -> clock.ClockFacts:
    """The clock facts of a guest without ``<clock>`` (in ``GuestFacts.__init__`` its
    ``clock`` argument hides the module)."""
    return clock.ClockFacts()


class GuestFacts(Value):
    """What the later stages need of the settings outside ``<devices>``."""

    clock: clock.ClockFacts
    os_type: str = "hvm"
    #: on_poweroff, on_reboot, on_crash as given
    lifecycle: dict[str, str]
    bootloader: bool = False
    min_guarantee: bool = False
    useserial: bool = False
    hugepages: bool = False
    #: the vCPUs online at boot, and <vcpus>'s vCPUs by id (None: no <vcpus>: the first
    #: vcpus_online are)
    vcpus_online: int = 1
    vcpu_states: dict[int, VcpuState] | None = None
    #: <hugepages>'s pages: (size in KiB, its NUMA nodes; None: every node the others leave)
    hugepage_pages: list[tuple[int, set[int] | None]]
    allocation: str | None = None
    memory_source: str | None = None
    #: <cputune>'s numbers that were given
    cputune: dict[str, int]
    bootmenu_timeout: int | None = None
    reboot_timeout: int | None = None
    cpu_mode: str = "custom"
    #: <cpu migratable> as written (None: not given)
    cpu_migratable: str | None = None
    #: the <cpu><model> name ('' when none)
    cpu_model: str = ""
    #: <cpu>'s features: name -> policy
    cpu_features: dict[str, str]
    #: SMM's TSEG size in bytes, when SMM is on and a size is given
    tseg: int | None = None
    #: <cpu><cache>'s and <cpu><maxphysaddr>'s attributes (None: not given)
    cpu_cache: dict[str, str] | None = None
    cpu_maxphysaddr: dict[str, str] | None = None
    #: the names of <sysinfo type='fwcfg'>'s entries
    fwcfg_names: list[str]
    genid: bool = False
    #: <cputune>'s <cachetune>s and <memorytune>s make resource control groups
    resctrl: bool = False
    #: the NUMA cells by id: whether each has vCPUs, its caches' levels (in order)
    numa_cpus: dict[int, bool]
    numa_caches: dict[int, list[int]]
    #: <numa><interconnects>: (kind, initiator, target, cache, access type) each
    interconnects: list[tuple[str, int, int, int, str]]
    #: <cpu><topology>'s sockets x dies x cores x threads (0: none)
    topology: int = 0
    #: its threads per core (0: no topology)
    threads: int = 0
    #: <blkiotune><device><path>s, <idmap> uid/gid maps (start, count)
    blkio_paths: list[str]
    uid_maps: list[tuple[int, int]]
    gid_maps: list[tuple[int, int]]
    #: <os firmware> ('' without), <os><firmware><feature>s are given, <os><nvram>'s attributes
    #: (with 'path', 'source' and 'slices' when it has them; None without one)
    firmware: str = ""
    firmware_features: bool = False
    #: <os><firmware>'s features: name -> enabled ('yes'/'no', the last one said)
    firmware_feature_states: dict[str, str]
    nvram: dict[str, str] | None = None
    #: a typed <nvram>'s storage source, for QEMU's storage checks (None: no such source)
    nvram_storage: Storage | None = None
    #: the thread pool bounds (min, max; -1: not given) of each <iothreadids><iothread>, then of
    #: <defaultiothread> (when it gives one)
    thread_pools: list[tuple[int, int]]

    #: <launchSecurity>'s type (None: none)
    launch_security: str | None = None
    #: <resource><fibrechannel appid> (None: none)
    fc_appid: str | None = None

    def __init__(self, clock=..., os_type='hvm', lifecycle=..., bootloader=False, min_guarantee=False, useserial=False, hugepages=False, vcpus_online=1, vcpu_states=None, hugepage_pages=..., allocation=None, memory_source=None, cputune=..., bootmenu_timeout=None, reboot_timeout=None, cpu_mode='custom', cpu_migratable=None, cpu_model='', cpu_features=..., tseg=None, cpu_cache=None, cpu_maxphysaddr=None, fwcfg_names=..., genid=False, resctrl=False, numa_cpus=..., numa_caches=..., interconnects=..., topology=0, threads=0, blkio_paths=..., uid_maps=..., gid_maps=..., firmware='', firmware_features=False, firmware_feature_states=..., nvram=None, nvram_storage=None, thread_pools=..., launch_security=None, fc_appid=None) -> None:
        self.clock = _no_clock() if clock is ... else clock
        self.os_type = os_type
        self.lifecycle = {} if lifecycle is ... else lifecycle
        self.bootloader = bootloader
        self.min_guarantee = min_guarantee
        self.useserial = useserial
        self.hugepages = hugepages
        self.vcpus_online = vcpus_online
        self.vcpu_states = vcpu_states
        self.hugepage_pages = [] if hugepage_pages is ... else hugepage_pages
        self.allocation = allocation
        self.memory_source = memory_source
        self.cputune = {} if cputune is ... else cputune
        self.bootmenu_timeout = bootmenu_timeout
        self.reboot_timeout = reboot_timeout
        self.cpu_mode = cpu_mode
        self.cpu_migratable = cpu_migratable
        self.cpu_model = cpu_model
        self.cpu_features = {} if cpu_features is ... else cpu_features
        self.tseg = tseg
        self.cpu_cache = cpu_cache
        self.cpu_maxphysaddr = cpu_maxphysaddr
        self.fwcfg_names = [] if fwcfg_names is ... else fwcfg_names
        self.genid = genid
        self.resctrl = resctrl
        self.numa_cpus = {} if numa_cpus is ... else numa_cpus
        self.numa_caches = {} if numa_caches is ... else numa_caches
        self.interconnects = [] if interconnects is ... else interconnects
        self.topology = topology
        self.threads = threads
        self.blkio_paths = [] if blkio_paths is ... else blkio_paths
        self.uid_maps = [] if uid_maps is ... else uid_maps
        self.gid_maps = [] if gid_maps is ... else gid_maps
        self.firmware = firmware
        self.firmware_features = firmware_features
        self.firmware_feature_states = {} if firmware_feature_states is ... else firmware_feature_states
        self.nvram = nvram
        self.nvram_storage = nvram_storage
        self.thread_pools = [] if thread_pools is ... else thread_pools
        self.launch_security = launch_security
        self.fc_appid = fc_appid


def _text(el: etree._Element | None) -> str | None:
    return None if el is None else (el.text or "")


def check_ids(root: etree._Element) -> None:
    """The uuid and genid, which libvirt reads first (before the os type), as its UUID
    parser does (``sources.uuid_ok``); an empty one is generated."""
    uuid = _string(root.find("uuid"))
    if uuid and not sources.uuid_ok(uuid):
        raise PlanError("malformed uuid element", "uuid", kind="internal")
    genids = root.findall("genid")
    if len(genids) > 1:
        raise PlanError("element 'genid' can only appear once", "genid")
    genid = _string(genids[0]) if genids else ""
    if genid and not sources.uuid_ok(genid):  # (blanks only are no empty genid)
        raise PlanError("malformed genid element", "genid", kind="internal")


def _string(el: etree._Element | None) -> str:
    """XPath's string() of an element: all its text, its children's included."""
    return "".join(el.itertext()) if el is not None else ""


def check_title(root: etree._Element) -> None:
    """The title and the security labels (read after the os type, before the memory)."""
    title = _text(root.find("title"))
    if title and "\n" in title:
        raise PlanError("Domain title can't contain newlines", "title")
    _check_seclabels(root.findall("seclabel"))


def _check_seclabels(labels: list[etree._Element]) -> None:
    """The domain's security labels (read before its memory): each's type and relabeling,
    its label when static; one label per model; a model for each when there are several
    (a lone label may leave it to the host's default, but for a static one or a base label)."""
    models: list[str | None] = []
    for label in labels:
        ltype = label.get("type")
        if ltype is not None and ltype not in SECLABEL_TYPES:
            raise PlanError(f"Invalid value for attribute 'type' in element 'seclabel': '{ltype}'.",
                            "seclabel", label.sourceline)
        relabel = label.get("relabel")
        if relabel is not None and relabel not in YES_NO:
            raise PlanError(f"Invalid value for attribute 'relabel' in element 'seclabel': '{relabel}'.",
                            "seclabel", label.sourceline)
        if ltype == "dynamic" and relabel == "no":
            raise PlanError("dynamic label type must use resource relabeling", "seclabel",
                            label.sourceline, kind="unsupported")
        if ltype == "none" and relabel == "yes":
            raise PlanError("resource relabeling is not compatible with 'none' label type", "seclabel",
                            label.sourceline, kind="unsupported")
        model = label.get("model")
        if model != "none" and ltype == "static" and not label.findtext("label"):
            raise PlanError("security label is missing", "seclabel", label.sourceline)
        if model in models:
            raise PlanError(f"seclabel for model {model or '(null)'} is already provided", "seclabel",
                            label.sourceline)
        models.append(model)
    if len(labels) == 1 and models[0] is None:
        ltype = labels[0].get("type")
        if ltype != "none" and (ltype != "dynamic" or labels[0].findtext("baselabel")):
            raise PlanError("missing security model in domain seclabel", "seclabel",
                            labels[0].sourceline)
    if len(labels) > 1 and None in models:
        raise PlanError("missing security model when using multiple labels", "seclabel")


def check_sizing(root: etree._Element) -> None:
    """The memory sizes, each's number then its unit (read before ``<memoryBacking>``'s
    access mode)."""
    for tag in ("memory", "maxMemory", "currentMemory"):
        el = root.find(tag)
        if el is None:
            continue
        if el.text is not None and _c_number(el.text, False) is None:
            raise PlanError(f"Invalid value '{el.text}' for element or attribute './{tag}[1]'", tag,
                            el.sourceline)
        unit = el.get("unit")
        if unit and unit.lower() not in _SIZE_UNITS:  # ('' is KiB)
            raise PlanError(f"unknown suffix '{unit}'", tag, el.sourceline)
        slots = el.get("slots") if tag == "maxMemory" else None
        if slots and parsecheck.c_uint(slots, 10) is None:  # ('' is none)
            raise PlanError("Failed to parse memory slot count", tag, el.sourceline)
    source = root.find("memoryBacking/source")
    stype = source.get("type") if source is not None else None
    if stype and stype not in MEMORY_SOURCES:
        raise PlanError(f"unknown memoryBacking/source/type '{stype}'", "memoryBacking",
                        source.sourceline, kind="unsupported")


def check_allocation(root: etree._Element) -> None:
    """``<memoryBacking><allocation>`` (read after its access mode)."""
    alloc = root.find("memoryBacking/allocation")
    if alloc is None:
        return
    mode = alloc.get("mode")
    if mode and mode not in MEMORY_ALLOCATIONS:
        raise PlanError(f"unknown memoryBacking/allocation/mode '{mode}'", "memoryBacking",
                        alloc.sourceline, kind="unsupported")
    threads = alloc.get("threads")
    if threads is not None and _c_number(threads, False) is None:
        raise PlanError("Failed to parse memory allocation threads", "memoryBacking", alloc.sourceline)


def check_hugepages(root: etree._Element, facts: GuestFacts) -> None:
    """``<hugepages>``'s pages (read after the allocation): each with a size that is not 0,
    and a nodeset, when given, of at least one node."""
    for page in root.iterfind("memoryBacking/hugepages/page"):
        size, unit = page.get("size"), page.get("unit")
        if not size:
            raise PlanError("missing element or attribute './@size'", "memoryBacking", page.sourceline)
        n = _c_number(size, False)
        if n is None:
            raise PlanError(f"Invalid value '{size}' for element or attribute './@size'",
                            "memoryBacking", page.sourceline)
        if unit and unit.lower() not in _SIZE_UNITS:
            raise PlanError(f"unknown suffix '{unit}'", "memoryBacking", page.sourceline)
        kib = -(-n * _UNIT_BYTES[(unit or "KiB").lower()] // 1024)
        if not kib:
            raise PlanError("hugepage size can't be zero", "memoryBacking", page.sourceline)
        nodes = None
        nodeset = page.get("nodeset")
        if nodeset is not None:
            nodes = bitmap(nodeset)
            if nodes is None:
                raise PlanError(f"Failed to parse bitmap '{nodeset}'", "memoryBacking", page.sourceline)
            if not nodes:
                raise PlanError(f"Invalid value of 'nodeset': {nodeset}", "memoryBacking",
                                page.sourceline, kind="unsupported")
        facts.hugepage_pages.append((kib, nodes))


def _integer(text: str | None) -> int | None:
    s = (text or "").strip()
    return int(s) if re.fullmatch(r"[+-]?[0-9]+", s) else None


def _c_number(text: str | None, signed: bool) -> int | None:
    """A number as C's strtoull/strtoll read all of it (blanks before, a sign), else None."""
    s = (text or "").lstrip(" \t\n\v\f\r")
    if not re.fullmatch(r"[+-]?[0-9]+", s) or (not signed and s.startswith("-")):
        return None
    return int(s)


def check_cpu(root: etree._Element, facts: GuestFacts) -> None:
    """``<vcpu>``, ``<cputune>`` and ``<cpu>`` (with its NUMA cells' vCPUs), read after the
    memory and before ``<features>``."""
    check_allocation(root)
    check_hugepages(root, facts)
    _check_blkiotune(root, facts)
    _check_memtune(root)
    vcpu = root.find("vcpu")
    maximum = online = 1
    if vcpu is not None:
        maximum = parsecheck.c_ui("".join(vcpu.itertext()), 10)  # (-1 is 4294967295)
        if maximum is None:
            raise PlanError("maximum vcpus count must be an integer", "vcpu", vcpu.sourceline)
        online = maximum
        current = vcpu.get("current")
        if current is not None:
            n = parsecheck.c_uint(current, 10)
            if n is None:
                raise PlanError(f"Invalid value for attribute 'current' in element 'vcpu': '{current}'. "
                                "Expected non-negative integer value", "vcpu", vcpu.sourceline)
            online = n
        placement = vcpu.get("placement")
        if placement is not None and placement not in VCPU_PLACEMENTS:
            raise PlanError(f"Invalid value for attribute 'placement' in element 'vcpu': '{placement}'.",
                            "vcpu", vcpu.sourceline)
        cpuset = vcpu.get("cpuset") if placement != "auto" else None  # (auto: not read)
        if cpuset is not None:
            ids = bitmap(cpuset)
            if ids is None:
                raise PlanError(f"Failed to parse bitmap '{cpuset}'", "vcpu", vcpu.sourceline)
            if not ids:
                raise PlanError(f"Invalid value of 'cpuset': {cpuset}", "vcpu", vcpu.sourceline,
                                kind="unsupported")
    _check_vcpus(root, maximum, online, facts)
    iothreads = _check_iothreads(root, facts)
    # (libvirt reads './cputune/X' over every <cputune>: a number from the first that has it)
    if root.find("cputune") is not None:
        for tag, name, signed, _ in CPUTUNE_NUMBERS:
            el = root.find("cputune/" + tag)
            if el is None:
                continue
            n = _c_number(el.text, signed)
            if n is None:
                raise PlanError(f"can't parse cputune {name} value", "cputune", el.sourceline)
            facts.cputune[tag] = n
        _check_pins(root, maximum, iothreads)
        _check_scheds(root, maximum, iothreads)
        scheds = root.findall("cputune/emulatorsched")
        if len(scheds) > 1:
            raise PlanError("only one emulatorsched is supported", "cputune", scheds[1].sourceline)
        if scheds:
            _check_scheduler(scheds[0])
        facts.resctrl = bool(_check_resctrl(root, maximum))
    cpu = root.find("cpu")
    if cpu is not None:
        _check_cpu(cpu, facts)
    _check_numa_vcpus(root, vcpu, facts)
    _check_numatune(root)
    resources = root.findall("resource")
    if len(resources) > 1:
        raise PlanError("only one resource element is supported", "resource")
    if resources:
        facts.fc_appid = _check_resource(resources[0])


def _check_resource(resource: etree._Element) -> str | None:
    """``<resource>``: its partition's text or a Fibre Channel ``appid`` (the first that has
    one) must be there (libvirt fails without saying why); the appid, checked later."""
    partition = resource.find("partition")
    fc = resource.find("fibrechannel[@appid]")
    appid = fc.get("appid") if fc is not None else None
    if not appid and not (partition is not None and "".join(partition.itertext())):
        raise PlanError(UNKNOWN_CAUSE, "resource", resource.sourceline, kind="internal")
    return appid or None


def _check_pins(root: etree._Element, vcpus: int, iothreads: set[int]) -> None:
    """``<cputune>``'s pinnings (read after its numbers): the vCPUs' (one a vCPU the guest
    has; others are ignored), the emulator's (once), the I/O threads' (one a thread the
    guest has), each to a list of host CPUs that is not empty."""
    pinned: set[int] = set()
    for pin in root.iterfind("cputune/vcpupin"):
        vid = _uint_attr(pin, "vcpu", "cputune", required=True)
        if vid >= vcpus:
            continue
        cpuset = pin.get("cpuset")
        if cpuset is None:
            raise PlanError("missing cpuset for vcpupin", "cputune", pin.sourceline, kind="internal")
        if vid in pinned:
            raise PlanError(f"duplicate vcpupin for vcpu '{_c_int32(vid)}'", "cputune", pin.sourceline,
                            kind="internal")
        _check_cpuset(pin, cpuset)
        pinned.add(vid)
    pins = root.findall("cputune/emulatorpin")
    if len(pins) > 1:
        raise PlanError("only one emulatorpin is supported", "cputune", pins[1].sourceline)
    for pin in pins:
        cpuset = pin.get("cpuset")
        if cpuset is None:
            raise PlanError("missing cpuset for emulatorpin", "cputune", pin.sourceline, kind="internal")
        _check_cpuset(pin, cpuset)
    pinned.clear()
    for pin in root.iterfind("cputune/iothreadpin"):
        tid = _uint_attr(pin, "iothread", "cputune", required=True, nonzero=True)
        if tid not in iothreads:
            raise PlanError(f"Cannot find 'iothread' : {tid}", "cputune", pin.sourceline,
                            kind="unsupported")
        cpuset = pin.get("cpuset")
        if cpuset is None:
            raise PlanError("missing cpuset for iothreadpin", "cputune", pin.sourceline, kind="internal")
        _check_cpuset(pin, cpuset)
        if tid in pinned:
            raise PlanError(f"duplicate iothreadpin for same iothread '{tid}'", "cputune",
                            pin.sourceline, kind="internal")
        pinned.add(tid)


def _check_cpuset(el: etree._Element, cpuset: str) -> None:
    """A pinning's host CPUs: a list libvirt reads, of one CPU at least."""
    ids = bitmap(cpuset)
    if ids is None:
        raise PlanError(f"Failed to parse bitmap '{cpuset}'", "cputune", el.sourceline)
    if not ids:
        raise PlanError(f"Invalid value of 'cpuset': {cpuset}", "cputune", el.sourceline,
                        kind="unsupported")


def _uint_attr(el: etree._Element, attr: str, where: str, required: bool = False,
               nonzero: bool = False) -> int | None:
    """An attribute libvirt reads as a non-negative number (base 10), or None when left out."""
    text = el.get(attr)
    if text is None:
        if required:
            raise PlanError(f"Missing required attribute '{attr}' in element '{el.tag}'", where,
                            el.sourceline)
        return None
    n = _c_number(text, False)
    if n is None or n > UINT_MAX:
        raise PlanError(f"Invalid value for attribute '{attr}' in element '{el.tag}': '{text}'. "
                        "Expected non-negative integer value", where, el.sourceline)
    if nonzero and n == 0:
        raise PlanError(f"Invalid value for attribute '{attr}' in element '{el.tag}': Zero is not "
                        "permitted", where, el.sourceline)
    return n


#: the CPUs a libvirt CPU list may name
CPUMASK_LEN = 16384
ULLONG_MAX = (1 << 64) - 1
CACHE_TYPES = frozenset({"both", "code", "data"})
#: the cache level a <cachetune>'s <monitor> watches
MONITOR_CACHE_LEVEL = 3
MEMORY_BANDWIDTH_MAX = 100


class _ResctrlGroup(Value):
    """A resource control group of ``<cachetune>``/``<memorytune>``: its vCPUs, its caches'
    (level, type, id), its memory bandwidth nodes, its monitors (kind, vCPUs)."""

    vcpus: frozenset[int]
    caches: set[tuple[int, str, int]]
    bandwidths: set[int]
    monitors: list[tuple[str, frozenset[int]]]

    def __init__(self, vcpus, caches=..., bandwidths=..., monitors=...) -> None:
        self.vcpus = vcpus
        self.caches = set() if caches is ... else caches
        self.bandwidths = set() if bandwidths is ... else bandwidths
        self.monitors = [] if monitors is ... else monitors


def _check_resctrl(root: etree._Element, vcpus: int) -> int:
    """``<cputune>``'s <cachetune>s then <memorytune>s (read last): each a group of vCPUs
    (those beyond <vcpu> dropped; a group left without any is ignored), apart from other
    groups' or the same; a cachetune's caches without collisions, a memorytune's nodes once
    each (a memorytune of a cachetune's vCPUs adds to its group); their monitors. The
    number of groups made."""
    groups: list[_ResctrlGroup] = []
    for el in root.iterfind("cputune/cachetune"):
        ids = _resctrl_vcpus(el, vcpus)
        if not ids:
            continue
        if _resctrl_match(groups, ids) is not None:
            raise PlanError("Identical vcpus in cachetunes found", "cputune", el.sourceline)
        group = _ResctrlGroup(ids)
        caches = el.findall("cache")
        for cache in caches:
            _check_cache_alloc(cache, group)
        _check_monitors(el, "cache", group, vcpus)
        if group.monitors or caches:
            groups.append(group)
    for el in root.iterfind("cputune/memorytune"):
        ids = _resctrl_vcpus(el, vcpus)
        if not ids:
            continue
        nodes = el.findall("node")
        match = _resctrl_match(groups, ids)
        group = match or _ResctrlGroup(ids)
        for node in nodes:
            nid = _uint_attr(node, "id", "cputune", required=True)
            bandwidth = _uint_attr(node, "bandwidth", "cputune", required=True)
            if bandwidth > MEMORY_BANDWIDTH_MAX:
                raise PlanError("Memory Bandwidth value exceeding 100 is invalid.", "cputune",
                                node.sourceline)
            if nid in group.bandwidths:
                raise PlanError(f"Memory Bandwidth already defined for node {nid}", "cputune",
                                node.sourceline)
            group.bandwidths.add(nid)
        monitors = len(group.monitors)
        _check_monitors(el, "membw", group, vcpus)
        if match is None and (len(group.monitors) > monitors or nodes):
            groups.append(group)
    return len(groups)


def _resctrl_vcpus(el: etree._Element, vcpus: int) -> frozenset[int]:
    """A <cachetune>'s, <memorytune>'s or <monitor>'s vCPUs that the guest has."""
    text = el.get("vcpus")
    if text is None:
        raise PlanError(f"Missing {el.tag} attribute 'vcpus'", "cputune", el.sourceline)
    ids = bitmap(text)
    if ids is None or any(n >= CPUMASK_LEN for n in ids):
        raise PlanError(f"Invalid {el.tag} attribute 'vcpus' value '{text}'", "cputune", el.sourceline)
    return frozenset(n for n in ids if n < vcpus)


def _resctrl_match(groups: list[_ResctrlGroup], ids: frozenset[int]) -> _ResctrlGroup | None:
    """The group of exactly these vCPUs, if any; an earlier group sharing only some of them
    is refused."""
    for group in groups:
        if group.vcpus == ids:
            return group
        if group.vcpus & ids:
            raise PlanError("Overlapping vcpus in resctrls", "cputune")
    return None


def _check_cache_alloc(cache: etree._Element, group: _ResctrlGroup) -> None:
    """A <cachetune>'s <cache>: its id, level, type and size, not colliding with the group's
    others (a 'both' allocation takes the cache whole)."""
    cid = _uint_attr(cache, "id", "cputune", required=True)
    level = _uint_attr(cache, "level", "cputune", required=True)
    parsecheck._word(cache, "type", CACHE_TYPES, "cputune", required=True)
    ctype = cache.get("type")
    size = cache.get("size") or ""
    if not size:
        raise PlanError("missing element or attribute './@size'", "cputune", cache.sourceline)
    scaled_size(cache, "./@size", ULLONG_MAX, "cputune", size)
    taken = {t for lvl, t, i in group.caches if (lvl, i) == (level, cid)}
    if "both" in taken or ctype in taken or (ctype == "both" and taken):
        raise PlanError(f"Colliding cache allocations for cache level '{level}' id '{cid}', type "
                        f"'{ctype}'", "cputune", cache.sourceline)
    group.caches.add((level, ctype, cid))


def _check_monitors(el: etree._Element, kind: str, group: _ResctrlGroup, vcpus: int) -> None:
    """A <cachetune>'s or <memorytune>'s <monitor>s: (a cache monitor's level 3) vCPUs of
    the group, not the same as another monitor's of its kind, overlapping others only
    where one of them watches the whole group (and the group allocates something)."""
    for mon in el.iterfind("monitor"):
        if kind == "cache":
            level = _uint_attr(mon, "level", "cputune", required=True)
            if level != MONITOR_CACHE_LEVEL:
                raise PlanError(f"Invalid monitor cache level '{_c_int32(level)}'", "cputune",
                                mon.sourceline)
        ids = _resctrl_vcpus(mon, vcpus)
        if not ids:
            raise PlanError("vcpus is empty", "cputune", mon.sourceline)
        if not ids <= group.vcpus:
            raise PlanError("Monitor vcpus conflicts with allocation", "cputune", mon.sourceline)
        whole = ids == group.vcpus
        empty_alloc = not group.caches and not group.bandwidths
        overlap_any = overlap_apart = False
        for their_kind, theirs in group.monitors:
            if theirs == ids:
                if their_kind != kind:
                    continue
                raise PlanError("Identical vcpus found in same type monitors", "cputune",
                                mon.sourceline)
            overlap_any = overlap_any or bool(theirs & ids)
            if not whole and theirs != group.vcpus and theirs & ids:
                overlap_apart = True
        if overlap_apart or (empty_alloc and overlap_any):
            raise PlanError("vcpus overlaps in resctrl groups", "cputune", mon.sourceline)
        group.monitors.append((kind, ids))


#: the scheduling policies of <vcpusched>, <iothreadsched> and <emulatorsched>, and those
#: that need a priority
SCHEDULERS = frozenset({"batch", "idle", "fifo", "rr"})
REALTIME_SCHEDULERS = frozenset({"fifo", "rr"})


def _check_scheds(root: etree._Element, vcpus: int, iothreads: set[int]) -> None:
    """``<cputune>``'s schedulers (read after the pinnings): the vCPUs, then the I/O threads,
    each a thread the guest has, given one scheduler at most."""
    for tag, attr in (("vcpusched", "vcpus"), ("iothreadsched", "iothreads")):
        taken: set[int] = set()
        for el in root.iterfind("cputune/" + tag):
            text = el.get(attr)
            if text is None:
                raise PlanError(f"Missing attribute '{attr}' in element '{tag}'", "cputune",
                                el.sourceline)
            ids = bitmap(text)
            if ids is None:
                raise PlanError(f"Failed to parse bitmap '{text}'", "cputune", el.sourceline)
            if not ids:
                raise PlanError(f"'{attr}' scheduler bitmap '{text}' is empty", "cputune",
                                el.sourceline, kind="unsupported")
            _check_scheduler(el)
            for n in sorted(ids):
                if tag == "vcpusched" and n >= vcpus:
                    raise PlanError(f"vCPU '{n}' is not present in domain definition", "cputune",
                                    el.sourceline, kind="unsupported")
                if tag == "iothreadsched" and n not in iothreads:
                    raise PlanError(f"Cannot find 'iothread' : {n}", "cputune", el.sourceline,
                                    kind="unsupported")
                if n in taken:
                    raise PlanError(f"'{tag}' attributes '{attr}' must not overlap", "cputune",
                                    el.sourceline)
                taken.add(n)


def _check_scheduler(el: etree._Element) -> None:
    """A scheduler element's policy, and its priority when real-time."""
    tag, policy = el.tag, el.get("scheduler")
    if policy is None:
        raise PlanError(f"Missing required attribute 'scheduler' in element '{tag}'", "cputune",
                        el.sourceline)
    if policy not in SCHEDULERS:
        raise PlanError(f"Invalid value for attribute 'scheduler' in element '{tag}': '{policy}'.",
                        "cputune", el.sourceline)
    if policy in REALTIME_SCHEDULERS:
        priority = el.get("priority")
        if priority is None:
            raise PlanError(f"Missing required attribute 'priority' in element '{tag}'", "cputune",
                            el.sourceline)
        n = _c_number(priority, True)
        if n is None or not -2 ** 31 <= n < 2 ** 31:
            raise PlanError(f"Invalid value for attribute 'priority' in element '{tag}': '{priority}'. "
                            "Expected integer value", "cputune", el.sourceline)


def _check_vcpus(root: etree._Element, maximum: int, online: int, facts: GuestFacts) -> None:
    """``<vcpus>`` (read after ``<vcpu>``): each vCPU's id, state, hotpluggability and order;
    without it, the first ``current`` vCPUs are online, and no more than ``<vcpu>``."""
    entries = root.findall("vcpus/vcpu")
    if not entries:
        if online > maximum:
            vcpu = root.find("vcpu")
            raise PlanError("maximum vCPU count must not be less than current vCPU count", "vcpu",
                            vcpu.sourceline if vcpu is not None else None, kind="unsupported")
        facts.vcpus_online = online
        return
    states: dict[int, VcpuState] = {}
    for el in entries:
        vid = el.get("id")
        if vid is None:
            raise PlanError("Missing required attribute 'id' in element 'vcpu'", "vcpus", el.sourceline)
        n = _c_number(vid, False)
        if n is None or n > UINT_MAX:
            raise PlanError(f"Invalid value for attribute 'id' in element 'vcpu': '{vid}'. Expected "
                            "non-negative integer value", "vcpus", el.sourceline)
        if n >= maximum:
            raise PlanError(f"vcpu id '{n}' is out of range of maximum vcpu count", "vcpus",
                            el.sourceline)
        enabled, hotpluggable, order = el.get("enabled"), el.get("hotpluggable"), el.get("order")
        if enabled is None:
            raise PlanError("Missing required attribute 'enabled' in element 'vcpu'", "vcpus",
                            el.sourceline)
        for attr, value in (("enabled", enabled), ("hotpluggable", hotpluggable)):
            if value is not None and value not in YES_NO:
                raise PlanError(f"Invalid value for attribute '{attr}' in element 'vcpu': '{value}'.",
                                "vcpus", el.sourceline)
        rank = _c_number(order, False) if order is not None else 0
        if rank is None or rank > UINT_MAX:
            raise PlanError(f"Invalid value for attribute 'order' in element 'vcpu': '{order}'. "
                            "Expected non-negative integer value", "vcpus", el.sourceline)
        states[n] = VcpuState(enabled == "yes", hotpluggable, rank)
    facts.vcpu_states = states
    facts.vcpus_online = sum(s.online for s in states.values())


def _check_numatune(root: etree._Element) -> None:
    """``<numatune>`` (read after the NUMA cells): its first ``<memory>`` (mode, placement,
    nodeset; a placement left out or 'default' is static with a nodeset or under a static
    ``<vcpu>``, else auto), then the ``<memnode>`` elements."""
    tunes = root.findall("numatune")
    if len(tunes) > 1:
        raise PlanError("only one numatune is supported", "numatune", tunes[1].sourceline)
    if not tunes:
        return
    mem = tunes[0].find("memory")
    vcpu = root.find("vcpu")
    vcpu_static = vcpu is None or vcpu.get("placement") != "auto"
    mode = None
    # (libvirt keeps a memory policy only when something is said: a <memory> attribute, or
    # no <memory> under an auto <vcpu>)
    placement = None if vcpu_static else "auto"
    if mem is not None:
        mode, written, nodeset = mem.get("mode"), mem.get("placement"), mem.get("nodeset")
        if mode is not None and mode not in NUMATUNE_MODES:
            raise PlanError(f"Unsupported NUMA memory tuning mode '{mode}'", "numatune", mem.sourceline,
                            kind="unsupported")
        if written is not None and written not in NUMATUNE_PLACEMENTS and written != "default":
            raise PlanError(f"Unsupported NUMA memory placement mode '{written}'", "numatune",
                            mem.sourceline, kind="unsupported")
        if nodeset is not None:
            _check_nodeset(nodeset, mem)
        placement = None
        if mode is not None or written is not None or nodeset is not None:
            placement = written if written in NUMATUNE_PLACEMENTS else \
                "static" if nodeset is not None or vcpu_static else "auto"
        if placement == "static" and nodeset is None:
            raise PlanError("nodeset for NUMA memory tuning must be set if 'placement' is 'static'",
                            "numatune", mem.sourceline, kind="unsupported")
    memnodes = tunes[0].findall("memnode")
    if not memnodes:
        return
    if placement == "auto":
        raise PlanError("Per-node binding is not compatible with automatic NUMA placement.", "numatune",
                        kind="unsupported")
    cells = len(root.findall("cpu/numa[1]/cell"))
    if not cells:
        raise PlanError("Element 'memnode' is invalid without any guest NUMA cells", "numatune",
                        memnodes[0].sourceline)
    seen: set[int] = set()
    for node in memnodes:
        text = node.get("cellid")
        if text is None:
            raise PlanError("Missing required attribute 'cellid' in element 'memnode'", "numatune",
                            node.sourceline)
        cellid = parsecheck.c_uint(text, 10)
        if cellid is None:
            raise PlanError(f"Invalid value for attribute 'cellid' in element 'memnode': '{text}'. "
                            "Expected non-negative integer value", "numatune", node.sourceline)
        if cellid >= cells:
            raise PlanError("Argument 'cellid' in memnode element must correspond to existing guest's "
                            "NUMA cell", "numatune", node.sourceline)
        if cellid in seen:
            raise PlanError(f"Multiple memnode elements with cellid {cellid}", "numatune",
                            node.sourceline)
        seen.add(cellid)
        node_mode = node.get("mode")
        if node_mode is not None and node_mode not in NUMATUNE_MODES:
            raise PlanError(f"Invalid value for attribute 'mode' in element 'memnode': '{node_mode}'.",
                            "numatune", node.sourceline)
        if mode == "restrictive" and (node_mode or "strict") != "restrictive":
            raise PlanError("'restrictive' mode is required in memnode element when mode is "
                            "'restrictive' in memory element", "numatune", node.sourceline)
        if node.get("nodeset") is None:
            raise PlanError("Missing required nodeset attribute in memnode element", "numatune",
                            node.sourceline)
        _check_nodeset(node.get("nodeset") or "", node)


def _check_nodeset(nodeset: str, el: etree._Element) -> None:
    """A <numatune> nodeset: a list of host nodes, not empty."""
    nodes = bitmap(nodeset)
    if nodes is None:
        raise PlanError(f"Failed to parse bitmap '{nodeset}'", "numatune", el.sourceline)
    if not nodes:
        raise PlanError(f"Invalid value of 'nodeset': {nodeset}", "numatune", el.sourceline,
                        kind="unsupported")


def _check_blkiotune(root: etree._Element, facts: GuestFacts) -> None:
    for dev in root.iterfind("blkiotune/device"):
        path = dev.findtext("path")
        if not path:
            raise PlanError("missing per-device path", "blkiotune", dev.sourceline, kind="unsupported")
        for tag, name in BLKIO_DEVICE_NUMBERS:
            el = dev.find(tag)
            if el is not None and _c_number(el.text, True) is None:  # (-1 wraps around)
                raise PlanError(f"could not parse {name} {el.text or ''}", "blkiotune", el.sourceline,
                                kind="unsupported")
        facts.blkio_paths.append(path)


#: the most a memory limit may be, in KiB (libvirt's 'unlimited'), and any other size, in bytes
MEMORY_PARAM_UNLIMITED = (1 << 53) - 1
LLONG_MAX = (1 << 63) - 1
#: TABLE: <memtune>'s sizes in libvirt's order, and whether each is a limit
MEMTUNE_SIZES = (("hard_limit", True), ("soft_limit", True), ("min_guarantee", False),
                 ("swap_hard_limit", True))


def _unit_scale(suffix: str) -> int | None:
    """What a size unit multiplies by, as libvirt's virScaleInteger reads it (None: unknown)."""
    low = suffix.lower()
    if low in ("b", "byte", "bytes"):
        return 1
    if low[1:] in ("", "ib"):
        base = 1024
    elif low[1:] == "b":
        base = 1000
    else:
        return None
    power = "kmgtpe".find(low[0])
    return base ** (power + 1) if power >= 0 else None


def scaled_size(el: etree._Element, path: str, limit: int, where: str,
                 text: str | None = None, default_scale: int = 1024) -> int | None:
    """An element's size in bytes (its text, or ``text``; KiB, or ``default_scale``, unless its
    unit says otherwise) as libvirt's virParseScaledValue reads it, at most ``limit``; None
    when it is empty."""
    text = "".join(el.itertext()) if text is None else text
    if not text:
        return None
    n = _c_number(text, False)
    if n is None or n >= 1 << 64:
        raise PlanError(f"Invalid value '{text}' for element or attribute '{path}'", where, el.sourceline)
    suffix = el.get("unit") or ""
    scale = _unit_scale(suffix) if suffix else default_scale
    if scale is None:
        raise PlanError(f"unknown suffix '{suffix}'", where, el.sourceline)
    if n and n > limit // scale:
        raise PlanError(f"value too large: {n}{suffix}", where, el.sourceline)
    return n * scale


def _check_memtune(root: etree._Element) -> None:
    """``<memtune>``'s sizes (read after ``<blkiotune>``): numbers with known units, limits
    up to 'unlimited'; libvirt does not compare them with each other."""
    for tag, is_limit in MEMTUNE_SIZES:
        el = root.find(f"memtune/{tag}")
        if el is None:
            continue
        path = f"./memtune/{tag}[1]"
        size = scaled_size(el, path, MEMORY_PARAM_UNLIMITED << 10 if is_limit else LLONG_MAX,
                            "memtune")
        if not is_limit and size is not None and -(-size // 1024) >= -(-LLONG_MAX // 1024):
            raise PlanError("size value too large", "memtune", el.sourceline)


def _check_iothreads(root: etree._Element, facts: GuestFacts) -> set[int]:
    """``<iothreads>`` and ``<iothreadids>``: the I/O thread ids (those written, and as many
    more as the count asks, numbered from 1 where free); their thread pools go to ``facts``."""
    count = root.find("iothreads")
    text = "".join(count.itertext()) if count is not None else ""
    total = parsecheck.c_uint(text, 10) if text else 0  # (an empty one is none)
    if total is None:
        raise PlanError(f"invalid iothreads count '{text}'", "iothreads", count.sourceline)
    default = root.find("defaultiothread")
    default_pool = _thread_pool(default, "defaultiothread") if default is not None else (-1, -1)
    seen: set[int] = set()
    for t in root.iterfind("iothreadids/iothread"):
        n = _uint_attr(t, "id", "iothreadids", required=True, nonzero=True)
        facts.thread_pools.append(_thread_pool(t, "iothreadids"))
        if n in seen:
            raise PlanError(f"duplicate iothread id '{n}' found", "iothreadids", t.sourceline)
        seen.add(n)
    if default_pool != (-1, -1):  # (a <defaultiothread> without bounds is dropped)
        facts.thread_pools.append(default_pool)
    free = (n for n in range(1, total + 1) if n not in seen)
    return seen | {next(free) for _ in range(min(total, 1 << 16) - len(seen))} if total > len(seen) \
        else seen


def _thread_pool(el: etree._Element, where: str) -> tuple[int, int]:
    """An I/O thread's (or the default one's) thread pool bounds: C ints, not negative
    (-1: not given)."""
    low, high = (parsecheck.int_attr(el, attr, where, nonnegative=True)
                 for attr in ("thread_pool_min", "thread_pool_max"))
    return -1 if low is None else low, -1 if high is None else high


def _check_cpu(cpu: etree._Element, facts: GuestFacts) -> None:
    mode = cpu.get("mode")
    if mode is not None and mode not in CPU_MODES:
        raise PlanError(f"Invalid mode attribute '{mode}'", "cpu", cpu.sourceline, kind="unsupported")
    mode = facts.cpu_mode = mode or "custom"
    facts.cpu_migratable = cpu.get("migratable")
    if facts.cpu_migratable is not None and facts.cpu_migratable not in ("on", "off"):
        raise PlanError(f"Invalid value for attribute 'migratable' in element 'cpu': "
                        f"'{facts.cpu_migratable}'.", "cpu", cpu.sourceline)
    if "migratable" in cpu.attrib and mode not in ("host-passthrough", "maximum"):
        raise PlanError("Attribute migratable is only allowed for 'host-passthrough' / 'maximum' CPU mode",
                        "cpu", cpu.sourceline, kind="unsupported")
    match = cpu.get("match")
    if match is not None and match not in CPU_MATCHES:
        raise PlanError(f"Invalid value for attribute 'match' in element 'cpu': '{match}'.", "cpu",
                        cpu.sourceline)
    check = cpu.get("check")
    if check is not None and check not in CPU_CHECKS:
        raise PlanError(f"Invalid value for attribute 'check' in element 'cpu': '{check}'.", "cpu",
                        cpu.sourceline)
    model = cpu.find("model")
    if model is not None:
        fallback = model.get("fallback")
        if fallback and fallback not in CPU_FALLBACKS:  # (an empty one is none)
            raise PlanError("Invalid fallback attribute", "cpu", model.sourceline, kind="unsupported")
        vendor_id = model.get("vendor_id")
        if vendor_id is not None and len(vendor_id) != 12:
            raise PlanError("vendor_id must be exactly 12 characters long", "cpu", model.sourceline)
    has_model = model is not None and bool((model.text or "").strip())
    facts.cpu_model = (model.text or "").strip() if has_model and model is not None else ""
    if cpu.find("vendor") is not None and not has_model:
        raise PlanError("CPU vendor specified without CPU model", "cpu", cpu.sourceline)
    topology = cpu.find("topology")
    if topology is not None:
        _check_topology(topology)
    features = cpu.findall("feature")
    if features and mode == "custom" and not has_model:
        raise PlanError("Non-empty feature list specified without CPU model", "cpu", cpu.sourceline)
    seen: set[str] = set()
    for f in features:
        facts.cpu_features[f.get("name") or ""] = f.get("policy") or "require"
        policy = f.get("policy")
        if policy is not None and policy not in CPU_FEATURE_POLICIES:
            raise PlanError("Invalid CPU feature policy", "cpu", f.sourceline, kind="unsupported")
        name = f.get("name")
        if not name:
            raise PlanError("Invalid CPU feature name", "cpu", f.sourceline)
        if name in seen:
            raise PlanError(f"CPU feature '{name}' specified more than once", "cpu", f.sourceline)
        seen.add(name)
    caches = cpu.findall("cache")
    if len(caches) > 1:
        raise PlanError("at most one CPU cache element may be specified", "cpu", caches[1].sourceline)
    if caches:
        level = parsecheck.int_attr(caches[0], "level", "cpu", nonnegative=True)
        if level is not None and level not in (1, 2, 3):
            raise PlanError("invalid CPU cache level, must be in range [1,3]", "cpu",
                            caches[0].sourceline)
        parsecheck._word(caches[0], "mode", CPU_CACHE_MODES, "cpu", required=True)
        facts.cpu_cache = dict(caches[0].attrib)
    addr = cpu.find("maxphysaddr")
    if addr is not None:
        mode_ = addr.get("mode")
        if mode_ is None:
            raise PlanError("Missing required attribute 'mode' in element 'maxphysaddr'", "cpu",
                            addr.sourceline)
        if mode_ not in MAXPHYSADDR_MODES:
            raise PlanError(f"Invalid value for attribute 'mode' in element 'maxphysaddr': '{mode_}'.",
                            "cpu", addr.sourceline)
        parsecheck.int_attr(addr, "bits", "cpu", nonnegative=True)
        facts.cpu_maxphysaddr = dict(addr.attrib)


_BLANKS = " \t\n\v\f\r"
_DIGITS = re.compile(r"[0-9]+")
_SIGNED_DIGITS = re.compile(r"[+-]?[0-9]+")
#: the widest range bitmap() spells out (a wider one counts by its two ends)
_BITMAP_RANGE = 100000


def bitmap(text: str) -> set[int] | None:
    """A libvirt CPU or node list ('0-3,^2,5') as virBitmapParse reads it, or None when it
    cannot be read: blanks around items and around '-', each item a C int written with a
    digit first (a range's end may have a sign), a trailing ',' passes."""
    out: set[int] = set()
    i, n = 0, len(text)

    def blanks(j: int) -> int:
        while j < n and text[j] in _BLANKS:
            j += 1
        return j

    def number(j: int, signed: bool) -> tuple[int, int] | None:
        k = blanks(j) if signed else j
        m = (_SIGNED_DIGITS if signed else _DIGITS).match(text, k)
        if m is None or not -2 ** 31 <= int(m.group()) < 2 ** 31:
            return None
        return int(m.group()), m.end()

    i = blanks(i)
    if i == n:
        return None
    while i < n:
        neg = text[i] == "^"
        i += neg
        first = number(i, False)
        if first is None:
            return None
        low, i = first
        i = blanks(i)
        high = low
        if i < n and text[i] == "-":
            if neg:
                return None
            last = number(blanks(i + 1), True)
            if last is None or last[0] < low:
                return None
            high, i = last
            i = blanks(i)
        ids = set(range(low, high + 1)) if high - low < _BITMAP_RANGE else {low, high}
        out = out - ids if neg else out | ids
        if i < n and text[i] == ",":
            i = blanks(i + 1)
        elif i < n:
            return None
    return out


#: <cpu><topology>'s attributes in libvirt's order, and whether each is required
TOPOLOGY_ATTRS = (("sockets", True), ("dies", False), ("cores", True), ("threads", True))


def _check_topology(topology: etree._Element) -> None:
    """``<cpu><topology>``: sockets, dies, cores and threads, each a C unsigned int other
    than 0, all but dies required."""
    for attr, required in TOPOLOGY_ATTRS:
        _uint_attr(topology, attr, "cpu/topology", required=required, nonzero=True)


def _check_numa_vcpus(root: etree._Element, vcpu: etree._Element | None,
                      facts: GuestFacts) -> None:
    """The NUMA cells' vCPUs: no more of them, and no higher id, than <vcpu> allows (without
    cells, the highest id is 0: no vCPU at all is refused so)."""
    # (libvirt's XPath './cpu/numa[1]/cell': the cells of the first <numa> of every <cpu>)
    numas = root.findall("cpu/numa[1]")
    cells = [cell for numa in numas for cell in numa.iterchildren("cell")]
    if numas and not cells:
        raise PlanError("NUMA topology defined without NUMA cells", "cpu/numa", numas[0].sourceline)
    count, top = 0, 0
    seen: dict[int, set[int]] = {}
    for i, cell in enumerate(cells):
        text = cell.get("id")
        cid = parsecheck.c_uint(text, 10) if text is not None else i
        if cid is None:
            raise PlanError(f"Invalid value for attribute 'id' in element 'cell': '{text}'. Expected "
                            "non-negative integer value", "cpu/numa", cell.sourceline)
        if cid >= len(cells):
            raise PlanError("Exactly one 'cell' element per guest NUMA cell allowed, non-contiguous "
                            "ranges or ranges not starting from 0 are not allowed", "cpu/numa",
                            cell.sourceline)
        if cid in seen:
            raise PlanError(f"Duplicate NUMA cell info for cell id '{cid}'", "cpu/numa", cell.sourceline)
        cpus = cell.get("cpus")
        ids = bitmap(cpus) if cpus is not None else set()
        if ids is None:
            raise PlanError(f"Failed to parse bitmap '{cpus}'", "cpu/numa", cell.sourceline, kind="internal")
        for other, their in seen.items():
            if ids & their:
                raise PlanError(f"NUMA cells {cid} and {other} have overlapping vCPU ids", "cpu/numa",
                                cell.sourceline, kind="unsupported")
        seen[cid] = ids
        _check_cell_memory(cell)
        _check_cell_distances(cell, cid, len(cells))
        facts.numa_caches[cid] = _check_cell_caches(cell, cid)
        facts.numa_cpus[cid] = bool(ids)
        count += len(ids)
        top = max([top, *ids])
    if cells:
        facts.interconnects = _check_interconnects(numas)
    maximum = _c_number(vcpu.text, False) if vcpu is not None else 1
    maximum = 1 if maximum is None else maximum
    if count > maximum:
        raise PlanError("Number of CPUs in <numa> exceeds the <vcpu> count", "cpu/numa", kind="internal")
    if top >= maximum:
        raise PlanError("CPU IDs in <numa> exceed the <vcpu> count", "cpu/numa", kind="internal")


def _check_cell_memory(cell: etree._Element) -> None:
    """A NUMA cell's memory (its size, its access mode, whether it is discarded), read after
    its vCPUs."""
    size = cell.get("memory")
    if not size:
        raise PlanError("missing element or attribute './@memory'", "cpu/numa", cell.sourceline)
    if _c_number(size, False) is None:
        raise PlanError(f"Invalid value '{size}' for element or attribute './@memory'", "cpu/numa",
                        cell.sourceline)
    unit = cell.get("unit")
    if unit and unit.lower() not in _SIZE_UNITS:
        raise PlanError(f"unknown suffix '{unit}'", "cpu/numa", cell.sourceline)
    for attr, words in (("memAccess", NUMA_MEMORY_ACCESS), ("discard", YES_NO)):
        value = cell.get(attr)
        if value is not None and value not in words:
            raise PlanError(f"Invalid value for attribute '{attr}' in element 'cell': '{value}'.",
                            "cpu/numa", cell.sourceline)


#: a NUMA distance: a cell's to itself, the least and the most
LOCAL_DISTANCE, UNREACHABLE = 10, 255
#: TABLE: a NUMA cell's <cache>: its attributes' words
NUMA_CACHE_WORDS = {"associativity": frozenset({"none", "direct", "full"}),
                    "policy": frozenset({"none", "writeback", "writethrough"})}
#: <interconnects>' access types
INTERCONNECT_ACCESS = frozenset({"access", "read", "write"})


def _c_int32(n: int) -> int:
    """An unsigned number as C's %d prints it."""
    return n - (1 << 32) if n >= 1 << 31 else n


def _check_cell_distances(cell: etree._Element, cid: int, cells: int) -> None:
    """A NUMA cell's <distances> (read after its memory): each sibling a cell the guest has,
    at a distance of 10 (itself) or 11 to 255 (another)."""
    distances = cell.find("distances")
    if distances is None:
        return
    siblings = distances.findall("sibling")
    if not siblings:
        raise PlanError("NUMA distances defined without siblings", "cpu/numa", distances.sourceline)
    for sib in siblings:
        sid = _uint_attr(sib, "id", "cpu/numa", required=True)
        if sid >= cells:
            raise PlanError(f"'sibling_id {_c_int32(sid)}' does not refer to a valid cell within NUMA "
                            f"'cell id {cid}'", "cpu/numa", sib.sourceline)
        value = _uint_attr(sib, "value", "cpu/numa", required=True)
        if not LOCAL_DISTANCE <= value <= UNREACHABLE or (sid == cid) != (value == LOCAL_DISTANCE):
            raise PlanError(f"'value {_c_int32(value)}' is invalid for 'sibling id {sid}' under NUMA "
                            f"'cell id {cid}'", "cpu/numa", sib.sourceline)


def _scaled(el: etree._Element, attr: str, path: str) -> None:
    """A required number of <el attr=...> libvirt reads as a size (its unit not read)."""
    text = el.get(attr) if el is not None else None
    if not text:
        raise PlanError(f"missing element or attribute '{path}'", "cpu/numa",
                        el.sourceline if el is not None else None)
    if _c_number(text, False) is None:
        raise PlanError(f"Invalid value '{text}' for element or attribute '{path}'", "cpu/numa",
                        el.sourceline)


def _check_cell_caches(cell: etree._Element, cid: int) -> list[int]:
    """A NUMA cell's memory-side <cache>s (read after its distances): a level that is not 0,
    an associativity, a policy, a size and a line; their levels."""
    levels = []
    for cache in cell.iterfind("cache"):
        level = cache.get("level")
        if level is None:
            raise PlanError(f"Missing 'level' attribute in cache element for NUMA node {cid}",
                            "cpu/numa", cache.sourceline)
        n = _c_number(level, False)
        if not n or n > UINT_MAX:
            raise PlanError(f"Invalid 'level' attribute in cache element for NUMA node {cid}",
                            "cpu/numa", cache.sourceline)
        for attr, words in NUMA_CACHE_WORDS.items():
            value = cache.get(attr)
            if value is None and attr == "associativity":
                raise PlanError(f"Missing 'associativity' attribute in cache element for NUMA node "
                                f"{cid}", "cpu/numa", cache.sourceline)
            if value not in words:  # (a policy left out is printed so)
                raise PlanError(f"Invalid cache {attr} '{value if value is not None else '(null)'}'",
                                "cpu/numa", cache.sourceline)
        _scaled(cache.find("size"), "value", "./size/@value")
        _scaled(cache.find("line"), "value", "./line/@value")
        levels.append(n)
    return levels


def _check_interconnects(numas: list[etree._Element]) -> list[tuple[str, int, int, int, str]]:
    """<numa><interconnects>' latencies and bandwidths (read after the cells; those of the
    first <interconnects> of each <cpu>'s first <numa>): a value, an initiator, a target, a
    cache level, an access type."""
    links = []
    groups = [g for g in (numa.find("interconnects") for numa in numas) if g is not None]
    for el in (el for group in groups for el in group):
        if el.tag == "latency":
            text = el.get("value")
            if text is None:
                raise PlanError("Missing required attribute 'value' in element 'latency'", "cpu/numa",
                                el.sourceline)
            if _c_number(text, False) is None or _c_number(text, False) >= 1 << 64:
                raise PlanError(f"Invalid value for attribute 'value' in element 'latency': '{text}'. "
                                "Expected non-negative integer value", "cpu/numa", el.sourceline)
        elif el.tag == "bandwidth":
            _scaled(el, "value", "./@value")
            unit = el.get("unit")
            if unit and unit.lower() not in _SIZE_UNITS:
                raise PlanError(f"unknown suffix '{unit}'", "cpu/numa", el.sourceline)
        else:
            continue
        initiator = _uint_attr(el, "initiator", "cpu/numa", required=True)
        target = _uint_attr(el, "target", "cpu/numa", required=True)
        cache = _uint_attr(el, "cache", "cpu/numa") or 0
        access = el.get("type")
        if access is None:
            raise PlanError(f"Missing required attribute 'type' in element '{el.tag}'", "cpu/numa",
                            el.sourceline)
        if access not in INTERCONNECT_ACCESS:
            raise PlanError(f"Invalid value for attribute 'type' in element '{el.tag}': '{access}'.",
                            "cpu/numa", el.sourceline)
        links.append((el.tag, initiator, target, cache, access))
    return links


def check_after_features(root: etree._Element, facts: GuestFacts) -> None:
    """The lifecycle actions, then ``<clock>`` (read after ``<features>``, before ``<os>``)."""
    for event in LIFECYCLE_EVENTS:
        el = root.find(event)
        if el is None:
            continue
        action = el.text or ""
        if action and action not in LIFECYCLE_ACTIONS:  # ('' is none)
            raise PlanError(f"unknown {event} action: {action}", event, el.sourceline,
                            kind="unsupported")
        facts.lifecycle[event] = action
    el = root.find("on_lockfailure")
    if el is not None and el.text and el.text not in LOCKFAILURE_ACTIONS:
        raise PlanError(f"unknown on_lockfailure action: {el.text}", "on_lockfailure", el.sourceline,
                        kind="unsupported")
    for tag in ("suspend-to-mem", "suspend-to-disk"):
        el = root.find(f"pm/{tag}")
        enabled = el.get("enabled") if el is not None else None
        if enabled is not None and enabled not in ("yes", "no"):
            raise PlanError(f"Invalid value for attribute 'enabled' in element '{tag}': '{enabled}'.",
                            "pm", el.sourceline)
    events: set[str] = set()
    for event in root.iterfind("perf/event"):
        name = event.get("name") or ""
        if name in events:
            raise PlanError(f"perf event '{name}' was already specified", "perf", event.sourceline)
        events.add(name)
    facts.clock = clock.check(root.find("clock"))


def check_after_devices(root: etree._Element) -> None:
    """What libvirt's parser reads after the devices: the launch security, the ID maps, the
    sysinfo, the key wrapping, the QEMU namespace."""
    ls = root.find("launchSecurity")
    ltype = ls.get("type") if ls is not None else None
    if ltype is not None and ltype not in LAUNCH_SECURITY_TYPES:
        raise PlanError(f"Invalid value for attribute 'type' in element 'launchSecurity': '{ltype}'.",
                        "launchSecurity", ls.sourceline)
    for tag in ("uid", "gid"):  # (each map's three numbers, which must be there)
        for m in root.iterfind(f"idmap/{tag}"):
            if any(not m.get(a) or parsecheck.c_uint(m.get(a), 10) is None
                   for a in ("start", "target", "count")):
                raise PlanError("invalid idmap start/target/count settings", "idmap", m.sourceline)
    _check_sysinfo(root)
    ciphers: set[str] = set()
    for cipher in root.iterfind("keywrap/cipher"):  # (a name and a state each, one per name)
        parsecheck._word(cipher, "name", KEYWRAP_CIPHERS, "keywrap", required=True)
        parsecheck._word(cipher, "state", parsecheck.ON_OFF, "keywrap", required=True)
        name = cipher.get("name") or ""
        if name in ciphers:
            raise PlanError("A domain definition can have no more than one cipher node with name "
                            f"{name}", "keywrap", cipher.sourceline, kind="internal")
        ciphers.add(name)
    qemuns.check(root)  # (the QEMU driver's namespace: parsed last)


#: the kinds of <sysinfo>
SYSINFO_TYPES = frozenset({"smbios", "fwcfg"})


def _check_sysinfo(root: etree._Element) -> None:
    """<sysinfo>: a type of ``SYSINFO_TYPES``; SMBIOS's BIOS date and system UUID (the
    domain's, when it has one), fw_cfg entries with a name and a value."""
    for info in root.iterfind("sysinfo"):
        parsecheck._word(info, "type", SYSINFO_TYPES, "sysinfo", required=True)
        if info.get("type") == "fwcfg":
            _check_fwcfg_entries(info)
            continue
        date = info.find("bios/entry[@name='date']")
        if date is not None and date.text is not None:
            m = re.fullmatch(r"([0-9]{1,2})/([0-9]{1,2})/[0-9]{1,4}", date.text)
            if m is None or not 1 <= int(m.group(1)) <= 12 or not 1 <= int(m.group(2)) <= 31:
                raise PlanError("Invalid BIOS 'date' format", "sysinfo", date.sourceline)
        uuid = info.find("system/entry[@name='uuid']")
        if uuid is not None and uuid.text is not None:
            if not sources.uuid_ok(uuid.text):
                raise PlanError("malformed <sysinfo> uuid element", "sysinfo", uuid.sourceline)
            domain_uuid = _string(root.find("uuid"))
            if domain_uuid and sources.uuid_text(domain_uuid) != sources.uuid_text(uuid.text):
                raise PlanError("UUID mismatch between <uuid> and <sysinfo>", "sysinfo", uuid.sourceline)


def _check_fwcfg_entries(info: etree._Element) -> None:
    """A fw_cfg <sysinfo>'s entries: each a name and a value (or a file)."""
    for entry in info.iterfind("entry"):
        if not entry.get("name"):
            raise PlanError("Firmware entry is missing 'name' attribute", "sysinfo", entry.sourceline)
        if not entry.text and not entry.get("file"):
            raise PlanError("Firmware entry must have either value or 'file' attribute", "sysinfo",
                            entry.sourceline)


def check_acpi_tables(os_el: etree._Element) -> None:
    """``<os><acpi>``'s tables (read after the loader, before the boot devices)."""
    tables = os_el.findall("acpi/table")
    if len(tables) > 1:
        raise PlanError("Only one acpi table is supported", "os/acpi", tables[1].sourceline)
    for table in tables:
        ttype = table.get("type")
        if not ttype:
            raise PlanError("Missing acpi table type", "os/acpi", table.sourceline)
        if ttype not in ACPI_TABLE_TYPES:
            raise PlanError(f"Unknown acpi table type: {ttype}", "os/acpi", table.sourceline)


def read(root: etree._Element, facts: GuestFacts) -> GuestFacts:
    """The rest of the facts, which no parser check needs."""
    facts.bootloader = bool(root.findtext("bootloader") or root.findtext("bootloader_args"))
    facts.min_guarantee = root.find("memtune/min_guarantee") is not None
    facts.genid = root.find("genid") is not None
    facts.os_type = root.findtext("os/type") or "hvm"
    facts.launch_security = root.xpath("string(launchSecurity/@type)") or None
    topology = root.find("cpu/topology")
    if topology is not None:
        facts.topology = 1
        for attr in ("sockets", "dies", "cores", "threads"):
            facts.topology *= _c_number(topology.get(attr) or "1", False) or 0
        facts.threads = _c_number(topology.get("threads") or "1", False) or 0
    facts.useserial = root.find("os/bios[@useserial='yes']") is not None
    smm = root.find("features/smm")
    tseg = root.find("features/smm/tseg")
    if smm is not None and smm.get("state", "on") == "on" and tseg is not None and tseg.text:
        facts.tseg = (_c_number(tseg.text, False) or 0) * _UNIT_BYTES[(tseg.get("unit") or "MiB").lower()]
    backing = root.find("memoryBacking")
    if backing is not None:
        facts.hugepages = backing.find("hugepages") is not None
        alloc = backing.find("allocation")
        facts.allocation = alloc.get("mode") if alloc is not None else None
        source = backing.find("source")
        facts.memory_source = source.get("type") if source is not None else None
    menu = root.find("os/bootmenu")
    if menu is not None and menu.get("enable") == "yes" and menu.get("timeout") is not None:
        facts.bootmenu_timeout = _integer(menu.get("timeout"))
    bios = root.find("os/bios")
    if bios is not None and bios.get("rebootTimeout") is not None:
        facts.reboot_timeout = _integer(bios.get("rebootTimeout"))
    for tag, maps in (("uid", facts.uid_maps), ("gid", facts.gid_maps)):
        for m in root.iterfind(f"idmap/{tag}"):
            start, count = _c_number(m.get("start"), False), _c_number(m.get("count"), False)
            maps.append((start or 0, count or 0))
    facts.fwcfg_names = [e.get("name") or "" for e in root.iterfind("sysinfo[@type='fwcfg']/entry")]
    os_el = root.find("os")
    if os_el is not None:
        facts.firmware = os_el.get("firmware") or ""
        facts.firmware_features = os_el.find("firmware/feature") is not None
        facts.firmware_feature_states = {f.get("name") or "": f.get("enabled") or ""
                                         for f in os_el.iterfind("firmware/feature")}
        nvram = os_el.find("nvram")
        if nvram is not None:
            facts.nvram = dict(nvram.attrib)
            if (nvram.text or "").strip():
                facts.nvram["path"] = nvram.text.strip()
            source = os_el.find("nvram/source")  # (libvirt's: the first of any <nvram>)
            if source is not None:
                facts.nvram["source"] = ""
            # (libvirt reads the source of a typed <nvram> only, and of its slices only one
            # of type 'storage')
            if source is not None and "type" in facts.nvram:
                from . import disks  # (disks imports parsecheck, which imports this module)

                # (its format is raw, its encryption engine unset when not named)
                facts.nvram_storage = disks.storage_layer(facts.nvram["type"], "raw", False, source,
                                                          engine=None)
                if sources.storage_slice(source) is not None:
                    facts.nvram["slices"] = ""
                if source.find("reservations") is not None:
                    facts.nvram["reservations"] = ""
    return facts


def post_parse_start(facts: GuestFacts | None) -> None:
    """What QEMU's post-parse of the domain checks first, before it adds the machine's
    default controllers (so before the check of the PCI root's model): a boot loader (QEMU
    has none)."""
    if facts is not None and facts.bootloader:
        raise PlanError("bootloader is not supported by QEMU", "bootloader", kind="unsupported")


def post_parse_machine(dom: Domain, host: Host | None) -> None:
    """QEMU's post-parse gives a domain without ``machine=`` the emulator's preferred machine
    among those of its accelerator (``ACCELERATED_VIRT_TYPES``): KVM's are none for an arch
    the host cannot run natively."""
    if not dom.machine_omitted or dom.virt_type not in ACCELERATED_VIRT_TYPES:
        return
    reason = f"could not get preferred machine for {dom.emulator} type={dom.virt_type}"
    if dom.virt_type == "hvf":
        raise PlanError(reason, "os/type")
    if host is not None and not host.kvm_runs(dom.arch):
        raise HostError(reason, "os/type")


def post_parse(facts: GuestFacts, family: str) -> None:
    """QEMU's post-parse of the domain, before any device's (after ``post_parse_start`` and
    the machine's default devices): the vCPUs, SVE's vector lengths, SMM's TSEG (q35's, in
    whole MiB)."""
    _post_parse_vcpus(facts)
    features = facts.cpu_features
    if features.get("sve") in ("disable", "forbid") and \
            any(name.startswith("sve") and name != "sve" for name in features):
        raise PlanError("SVE disabled, but SVE vector lengths provided", "cpu", kind="unsupported")
    if facts.tseg is not None:
        if family != "q35":
            raise PlanError("SMM TSEG is only supported with q35 machine type", "features",
                            kind="unsupported")
        if facts.tseg % MIB:
            raise PlanError("SMM TSEG size must be divisible by 1 MiB", "features", kind="unsupported")


def post_parse_os(facts: GuestFacts) -> None:
    """libvirt's post-parse of the firmware (after the memory's): keys enrolled imply secure
    boot."""
    states = facts.firmware_feature_states
    if states.get("enrolled-keys") == "yes" and states.get("secure-boot") == "no":
        raise PlanError("firmware feature 'enrolled-keys' cannot be enabled when firmware feature "
                        "'secure-boot' is disabled", "os/firmware")


def _post_parse_vcpus(facts: GuestFacts) -> None:
    """QEMU's rules of the vCPUs' states: vCPU 0 online, first and not hotpluggable; an order
    for all online vCPUs or none; vCPUs that are not hotpluggable first, in ascending order."""
    states = facts.vcpu_states
    if states is None:
        if not facts.vcpus_online:
            raise PlanError("vcpu 0 can't be offline", "vcpu", kind="unsupported")
        return
    first = states.get(0, VCPU_UNNAMED)
    if not first.online:
        raise PlanError("vcpu 0 can't be offline", "vcpus", kind="unsupported")
    if first.hotpluggable == "yes":
        raise PlanError("vcpu0 can't be hotpluggable", "vcpus", kind="unsupported")
    if first.order not in (0, 1):
        raise PlanError("vcpu0 must be enabled first", "vcpus", kind="unsupported")
    ordered = first.order != 0
    for vid in sorted(states):  # (the others are offline, said nothing of)
        if not vid:
            continue
        vcpu, prev = states[vid], states.get(vid - 1, VCPU_UNNAMED)
        if vcpu.online and (vcpu.order != 0) != ordered:
            raise PlanError("all vcpus must have either set or unset order", "vcpus", kind="unsupported")
        if vcpu.hotpluggable == "no":
            if prev.hotpluggable == "yes":
                raise PlanError("online non-hotpluggable vcpus need to be ordered prior to hotplugable "
                                "vcpus", "vcpus", kind="unsupported")
            if prev.order > vcpu.order:
                raise PlanError("online non-hotpluggable vcpus must be ordered in ascending order",
                                "vcpus", kind="unsupported")


#: the domain types QEMU runs (libvirt reads the others, then refuses them)
QEMU_VIRT_TYPES = frozenset({"qemu", "kvm"})
#: the domain types with an accelerator of their own, and so a machine list of their own
#: (every other domain type takes TCG's); HVF's is empty on Linux
ACCELERATED_VIRT_TYPES = frozenset({"kvm", "hvf"})


def validate_os_type(dom: Domain, facts: GuestFacts) -> None:
    """QEMU's very first domain check: its guests are all hvm (before the emulator's arch)."""
    if facts.os_type != "hvm":
        emulator = dom.emulator or machines.DEFAULT_EMULATORS.get(dom.arch, "")
        raise PlanError(f"Emulator '{emulator}' does not support os type '{facts.os_type}'", "os/type",
                        kind="unsupported")


def validate_virt_type(dom: Domain, host: Host) -> None:
    """QEMU's check of the domain type (after the emulator's arch, before its machine name):
    one QEMU has, and KVM only for an arch the host runs natively."""
    emulator = dom.emulator or machines.DEFAULT_EMULATORS.get(dom.arch, "")
    if dom.virt_type not in QEMU_VIRT_TYPES:
        raise PlanError(f"Emulator '{emulator}' does not support virt type '{dom.virt_type}'", "domain",
                        kind="unsupported")
    if dom.virt_type == "kvm" and not host.kvm_runs(dom.arch):
        raise HostError(f"Emulator '{emulator}' does not support virt type 'kvm'", "domain")


def validate_first(dom: Domain, facts: GuestFacts, host: Host) -> None:
    """QEMU's first domain checks: the os type (QEMU's guests are all hvm), the domain type,
    min_guarantee."""
    validate_os_type(dom, facts)
    validate_virt_type(dom, host)
    if facts.min_guarantee:
        raise PlanError("Parameter 'min_guarantee' not supported by QEMU.", "memtune",
                        kind="unsupported")


def _has_serial(dom: Domain) -> bool:
    """Whether the guest has a serial port once libvirt's post-parse made the first console
    one when it is a serial console (no target type is one) and the guest has none (a
    virtio or SCLP console is no serial port)."""
    if any(d.tag == "serial" for d in dom.devices):
        return True
    console = next((d for d in dom.devices if d.tag == "console"), None)
    return console is not None and console.target.get("type") in (None, "serial")


def validate_qemu(guest: Guest, facts: GuestFacts) -> None:
    """QEMU's domain checks after the firmware's: the BIOS serial console, the lifecycle
    actions, the CPU (the memory hot-plug limits follow, then :func:`validate_timers`)."""
    dom = guest.domain
    if facts.genid and dom.arch not in machines.X86:
        raise PlanError("this QEMU does not support the 'genid' capability", "genid", kind="unsupported")
    if facts.useserial:
        if dom.arch not in machines.X86:
            raise PlanError("BIOS serial console only supported on x86 architectures", "os/bios",
                            kind="unsupported")
        if not _has_serial(dom):
            raise PlanError("need at least one serial port to use BIOS serial output", "os/bios")
    life = facts.lifecycle
    if "rename-restart" in life.values():
        raise PlanError("qemu driver doesn't support the 'rename-restart' action for "
                        "'on_reboot'/'on_poweroff'/'on_crash'", "lifecycle", kind="unsupported")
    if "preserve" in (life.get("on_reboot"), life.get("on_poweroff")):
        raise PlanError("qemu driver doesn't support the 'preserve' action for "
                        "'on_reboot'/'on_poweroff'", "lifecycle", kind="unsupported")
    if life.get("on_reboot") == "destroy" and life.get("on_poweroff") == "restart":
        raise PlanError("qemu driver doesn't support 'onReboot' set to 'destroy and 'onPoweroff' "
                        "set to 'reboot'", "lifecycle", kind="unsupported")
    _validate_cpu(facts, dom.arch, dom.emulator)


def validate_timers(dom: Domain, facts: GuestFacts) -> None:
    """QEMU's checks of the clock's timers (after the memory hot-plug limits, before <pm>)."""
    clock.validate(facts.clock, dom.virt_type, dom.arch, dom.machine)


def _validate_cpu(facts: GuestFacts, arch: str, emulator: str | None) -> None:
    """QEMU's checks of <cpu>: the physical address bits, then the cache (x86's both), then
    what the mode needs of the binary."""
    addr = facts.cpu_maxphysaddr
    if addr is not None:
        if arch not in machines.X86:
            raise PlanError("CPU maximum physical address bits specification is not supported for "
                            f"'{arch}' architecture", "cpu", kind="unsupported")
        mode = addr.get("mode")
        if mode == "passthrough" and "bits" in addr:
            raise PlanError("CPU maximum physical address bits number specification cannot be used "
                            "with mode='passthrough'", "cpu", kind="unsupported")
        if mode == "emulate" and "bits" not in addr:
            raise PlanError("if using CPU maximum physical address mode='emulate', bits= must be "
                            "specified too", "cpu", kind="unsupported")
    cache = facts.cpu_cache
    if cache is not None:
        if arch not in machines.X86:
            raise PlanError(f"CPU cache specification is not supported for '{arch}' architecture",
                            "cpu", kind="unsupported")
        mode = cache.get("mode")
        if mode == "emulate" and cache.get("level") != "3":
            raise PlanError("CPU cache mode 'emulate' can only be used with level='3'", "cpu",
                            kind="unsupported")
        if mode == "passthrough" and facts.cpu_mode not in ("host-passthrough", "maximum"):
            raise PlanError("CPU cache mode 'passthrough' can only be used with 'host-passthrough' / "
                            "'maximum' CPUs", "cpu", kind="unsupported")
        if mode in ("passthrough", "disable") and "level" in cache:
            raise PlanError(f"unsupported CPU cache level for mode '{mode}'", "cpu", kind="unsupported")
    if emulator not in machines.EMULATOR_MACHINES:  # (one pciplan does not know: no guess)
        return
    if (facts.cpu_mode == "host-passthrough" and facts.cpu_migratable == "on"
            and emulator not in machines.CPU_MIGRATABLE_EMULATORS):
        raise PlanError("Migratable attribute for host-passthrough CPU is not supported by this "
                        "QEMU binary", "cpu", kind="unsupported")
    if facts.cpu_mode == "maximum" and emulator not in machines.CPU_MAX_EMULATORS:
        raise PlanError("maximum CPU is not supported by QEMU binary", "cpu", kind="unsupported")


def validate_resctrl(dom: Domain, facts: GuestFacts) -> None:
    """QEMU's check of cache and memory bandwidth tuning (after the vCPUs', before the
    features')."""
    if facts.resctrl and dom.virt_type != "kvm":
        raise PlanError("cachetune is only supported for KVM domains", "cputune", kind="unsupported")


def validate_after_features(facts: GuestFacts) -> None:
    """QEMU's checks after the features': hugepages need memory allocated up front from a
    file; fw_cfg entries of the guest's own are named opt/..., but for QEMU's and OVMF's."""
    if facts.hugepages:
        if facts.allocation == "ondemand":
            raise PlanError("hugepages are not allowed with memory allocation ondemand",
                            "memoryBacking", kind="unsupported")
        if facts.memory_source == "anonymous":
            raise PlanError("hugepages are not allowed with anonymous memory source", "memoryBacking",
                            kind="unsupported")
    for name in facts.fwcfg_names:
        if not name.startswith("opt/"):
            raise PlanError("Invalid firmware name", "sysinfo", kind="unsupported")
        if name.startswith(("opt/ovmf/", "opt/org.qemu/")):
            raise PlanError("That firmware name is reserved", "sysinfo", kind="unsupported")


#: the storage types an NVRAM store cannot have (a file, a block device, a network source)
NVRAM_UNSUPPORTED_TYPES = frozenset({"dir", "volume", "nvme", "vhostuser"})


def validate_nvram(facts: GuestFacts) -> None:
    """QEMU's checks of the NVRAM store (after secure boot's): a file, a block device or a
    network source, whole, then the storage checks of a disk's layer."""
    nvram = facts.nvram
    if nvram is None:
        return
    ntype = nvram.get("type")
    if ntype in NVRAM_UNSUPPORTED_TYPES:
        raise PlanError(f"unsupported nvram disk type '{ntype}'", "os/nvram", kind="unsupported")
    if "slices" in nvram:
        raise PlanError("slices are not supported with NVRAM", "os/nvram", kind="unsupported")
    if "reservations" in nvram:
        raise PlanError("persistent reservations are not supported with NVRAM", "os/nvram",
                        kind="unsupported")
    if facts.nvram_storage is not None:
        from . import disks

        disks.check_storage(facts.nvram_storage, "os/nvram")


def _validate_hugepages(pages: list[tuple[int, set[int] | None]], cells: int) -> None:
    """libvirt's checks of the hugepages: one page size without a nodeset at most (without
    NUMA cells, a nodeset of node 0 alone is none), nodesets apart, and of nodes the
    guest has."""
    if not cells:  # (post-parse)
        pages = [(size, None if nodes is not None and nodes <= {0} else nodes) for size, nodes in pages]
    for i, (size, nodes) in enumerate(pages):
        for other, their in pages[:i]:
            if nodes is not None and their is not None and nodes & their:
                raise PlanError(f"nodeset attribute of hugepages of sizes {size} and {other} intersect",
                                "memoryBacking")
            if nodes is None and their is None:
                raise PlanError(f"two master hugepages detected: {size} and {other}", "memoryBacking")
        if nodes is not None and max(nodes) >= cells:
            missing = min(n for n in nodes if n >= cells)
            raise PlanError(f"hugepages: node {missing} not found", "memoryBacking")


def _validate_os(dom: Domain, facts: GuestFacts) -> None:
    """libvirt's checks of the firmware: what autoselection leaves to it, a loader without a
    path, what a stateless loader has no use for, and which loaders keep an NVRAM."""
    loader = dom.loader
    nvram = facts.nvram
    has_nvram = nvram is not None and bool({"path", "type", "source"} & set(nvram))
    if dom.firmware_auto:
        if loader is not None:
            # firmware autoselection takes no loader but secure='yes' (a path implies a type)
            for attr, given in (("readonly", "readonly" in loader),
                                ("type", "type" in loader or "path" in loader),
                                ("secure", loader.get("secure") not in (None, "yes"))):
                if given:
                    raise PlanError(f"loader attribute '{attr}' cannot be specified when firmware "
                                    "autoselection is enabled", "os/loader", kind="internal")
        if nvram is not None and "template" in nvram:
            raise PlanError("nvram attribute 'template' cannot be specified when firmware "
                            "autoselection is enabled", "os/nvram")
        if facts.firmware == "bios" and has_nvram:
            raise PlanError("firmware type 'bios' does not support nvram", "os/nvram")
    else:
        if facts.firmware_features:
            raise PlanError("cannot use feature-based firmware autoselection when firmware "
                            "autoselection is disabled", "os/firmware")
        if (loader is not None or nvram is not None) and "path" not in (loader or {}):
            raise PlanError("no loader path specified and firmware auto selection disabled",
                            "os/loader")
    stateless = loader.get("stateless") if loader is not None else None
    if stateless == "yes" and nvram is not None:
        if "template" in nvram:
            raise PlanError("NVRAM template is not permitted when loader is stateless", "os/nvram")
        if has_nvram:
            raise PlanError("NVRAM is not permitted when loader is stateless", "os/nvram")
    if stateless == "no":  # (a loader that keeps its variables: pflash, and EFI when chosen)
        if not dom.firmware_auto:
            if loader.get("type") != "pflash":
                raise PlanError("Only pflash loader type permits NVRAM", "os/loader")
        elif facts.firmware != "efi":
            raise PlanError("Only EFI firmware permits NVRAM", "os/loader")


def validate_generic(dom: Domain, facts: GuestFacts) -> None:
    """libvirt's own domain checks, after every device: lifecycle actions, the firmware,
    <cputune>'s ranges, the boot menu's and the BIOS's timeouts."""
    if facts.topology > UINT_MAX:
        raise PlanError(f"cpu topology results in more than {UINT_MAX} cpus", "cpu/topology",
                        kind="unsupported")
    for event in ("on_poweroff", "on_reboot"):
        action = facts.lifecycle.get(event, "")
        if action.startswith("coredump-"):
            raise PlanError(f"Lifecycle event '{event[3:]}' doesn't support '{action}' action", event,
                            kind="unsupported")
    _validate_hugepages(facts.hugepage_pages, dom.numa_cells)
    _validate_os(dom, facts)
    for tag, _, _, (low, high) in CPUTUNE_NUMBERS:
        n = facts.cputune.get(tag, 0)
        if n > 0 and not low <= n <= high:
            raise PlanError(f"Value of cputune '{tag}' must be in range [{low}, {high}]", "cputune",
                            kind="unsupported")
    t = facts.bootmenu_timeout
    if t is not None and not 0 <= t <= BOOTMENU_TIMEOUT_MAX:
        raise PlanError(f"invalid value for boot menu timeout, must be in range [0,{BOOTMENU_TIMEOUT_MAX}]",
                        "os/bootmenu", kind="unsupported")
    t = facts.reboot_timeout
    if t is not None and not REBOOT_TIMEOUT_MIN <= t <= REBOOT_TIMEOUT_MAX:
        raise PlanError("invalid value for rebootTimeout, must be in range "
                        f"[{REBOOT_TIMEOUT_MIN},{REBOOT_TIMEOUT_MAX}]", "os/bios", kind="unsupported")


#: the length of a Fibre Channel application ID
APPID_LENGTH = (1, 128)


def validate_resource(facts: GuestFacts) -> None:
    """libvirt's first domain check, after the devices': a Fibre Channel appid is printable
    ASCII of 1 to 128 characters."""
    appid = facts.fc_appid
    if appid is None:
        return
    if not parsecheck.printable(appid):
        raise PlanError("Fibre Channel 'appid' is not a printable string", "resource/fibrechannel")
    low, high = APPID_LENGTH
    if not low <= len(appid) <= high:
        raise PlanError(f"Fibre Channel 'appid' string length must be between [{low}, {high}]",
                        "resource/fibrechannel")


def validate_tunables(facts: GuestFacts) -> None:
    """libvirt's last domain checks: each <blkiotune> device once, the ID maps of a container,
    the guest NUMA's caches and interconnects."""
    seen: set[str] = set()
    for path in facts.blkio_paths:
        if path in seen:
            raise PlanError(f"duplicate blkio device path '{path}'", "blkiotune", kind="unsupported")
        seen.add(path)
    if bool(facts.uid_maps) != bool(facts.gid_maps):
        raise PlanError("uid and gid should be mapped both", "idmap", kind="unsupported")
    if facts.uid_maps and not (any(start == 0 for start, _ in facts.uid_maps) and
                               any(start == 0 for start, _ in facts.gid_maps)):
        raise PlanError("You must map the root user of container", "idmap", kind="unsupported")
    _validate_numa(facts)


def validate_iothreads(facts: GuestFacts) -> None:
    """libvirt's very last domain check (after the filesystems'): each I/O thread's pool,
    then the default one's, has a maximum above 0 and a minimum not above it (an absent
    bound is -1: a minimum without a maximum is refused)."""
    for low, high in facts.thread_pools:
        if high == 0:
            raise PlanError("thread_pool_max must be a positive integer", "iothreadids", kind="unsupported")
        if low > high:
            raise PlanError("thread_pool_min must be smaller or equal to thread_pool_max", "iothreadids",
                            kind="unsupported")


def _validate_numa(facts: GuestFacts) -> None:
    """libvirt's checks of the guest NUMA (after the ID maps'): each cell's cache levels 1 to
    3 and once each; each interconnect between cells the guest has, from one with vCPUs, to
    a cache the target has, given once and one way."""
    for levels in facts.numa_caches.values():
        for i, level in enumerate(levels):
            if level > 3:
                raise PlanError("Ain't nobody heard of that much cache level", "cpu/numa")
            if level in levels[:i]:
                raise PlanError(f"Cache level '{level}' already defined", "cpu/numa")
    links = facts.interconnects
    cells = len(facts.numa_cpus)
    for i, (kind, initiator, target, cache, access) in enumerate(links):
        if initiator >= cells:
            raise PlanError("'initiator' refers to a non-existent NUMA node", "cpu/numa")
        if target >= cells:
            raise PlanError("'target' refers to a non-existent NUMA node", "cpu/numa")
        if not facts.numa_cpus.get(initiator):
            raise PlanError("NUMA nodes without CPUs can't be initiator", "cpu/numa")
        if cache and cache not in facts.numa_caches.get(target, []):
            raise PlanError("'cache' refers to a non-existent NUMA node cache", "cpu/numa")
        for other in links[:i]:
            if other == links[i]:
                raise PlanError("Duplicate info for NUMA latencies", "cpu/numa")
            if initiator != target and (other[1], other[2]) == (target, initiator):
                raise PlanError("Link already defined", "cpu/numa")
