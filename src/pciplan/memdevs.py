"""What libvirt 9.0 refuses of a ``<memory>`` device (DIMM, NVDIMM, virtio-pmem,
virtio-mem), in its order.

The parser wants a ``<target>``, reads its NUMA node and an NVDIMM's label size
(:func:`check_parse`); QEMU's post-parse aligns pSeries modules (:func:`post_parse`, before
the domain's memory sums them); validation (``validate_late``, with the other memory devices,
each one's address first) makes libvirt's generic checks (a path for NVDIMM and
virtio-pmem, discard, shared access, NUMA node, virtio-mem's block and requested sizes)
and QEMU's (the guest's NUMA nodes): :func:`check`.  Checked against the libvirt 9.0
daemon with pairs of mistakes.

``xmlio`` reads what the checks need of each device into a :class:`MemFacts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from . import machines, parsecheck, sources
from .errors import HostError, PlanError
from .records import Value

if TYPE_CHECKING:
    from .defaults import Guest
    from .domain import Device
    from .hostcaps import Host

KIB = 1024


class MemFacts(Value):
    """What validation needs of a ``<memory>`` device beyond ``Device``'s fields, sizes in KiB."""

    attrs: dict[str, str]
    path: bool = False
    node: int | None = None
    size: int = 0
    block: int | None = None
    requested: int | None = None
    label: int | None = None            # an NVDIMM's label size (None: not given)

    def __init__(self, attrs=..., path=False, node=None, size=0, block=None, requested=None,
                 label=None) -> None:
        self.attrs = {} if attrs is ... else attrs
        self.path = path
        self.label = label
        self.node = node
        self.size = size
        self.block = block
        self.requested = requested


def _kib(el: etree._Element | None) -> int | None:
    return None if el is None else -(-parsecheck.size_bytes(el) // KIB)  # (rounded up, as libvirt)


def read(el: etree._Element, kids: dict) -> MemFacts:
    t = kids.get("target")
    src = kids.get("source")
    f = MemFacts(dict(el.attrib), path=src is not None and bool((src.findtext("path") or "").strip()))
    if t is not None:
        node = t.findtext("node")   # (-0 is node 0; the parser refused what is no node)
        f.node = parsecheck.c_int(node, 10) if node else None
        f.size = _kib(t.find("size")) or 0
        f.block, f.requested = _kib(t.find("block")), _kib(t.find("requested"))
        f.label = _kib(t.find("label/size"))  # (the parser wants one of 128 KiB or more)
    return f


#: TABLE: the memory device models libvirt asks the emulator for, the guest arches whose
#: QEMU 7.2 binary has each (asked of the libvirt 9.0 daemon for every arch pciplan
#: knows: RISC-V and s390x have none, pSeries no virtio ones, ARM no virtio-pmem), and
#: libvirt's words for the others
SGX_LACKING = "sgx epc isn't supported by this QEMU binary"
EMULATOR_MEMORY_MODELS: dict[str, tuple[frozenset[str], str]] = {
    "dimm": (machines.X86 | machines.ARM | machines.PPC64,
             "memory hotplug isn't supported by this QEMU binary"),
    "nvdimm": (machines.X86 | machines.ARM | machines.PPC64, "nvdimm isn't supported by this QEMU binary"),
    "virtio-pmem": (machines.X86, "virtio-pmem isn't supported by this QEMU binary"),
    "virtio-mem": (machines.X86 | machines.ARM, "virtio-mem isn't supported by this QEMU binary"),
    "sgx-epc": (machines.X86, SGX_LACKING),
}
#: the smallest NVDIMM label (KiB)
LABEL_MIN = 128
#: the smallest virtio-mem block (KiB): the host's transparent huge page
VIRTIO_MEM_BLOCK_MIN = 2048


#: the size pSeries memory modules are aligned to (KiB)
PPC64_MODULE_ALIGN = 256 * 1024


def post_parse(guest: Guest) -> None:
    """QEMU's post-parse of each memory device on ppc64 (libvirt defines with ABI updates):
    a DIMM's size rounded up to 256 MiB, an NVDIMM's guest area (its size less the label)
    down (refused below 256 MiB); the domain's memory then weighs the new sizes."""
    dom = guest.domain
    if dom.arch not in machines.PPC64:
        return
    mems = guest.devices("memory")
    for mem in mems:
        align_ppc64(mem)
    if dom.memory is not None and mems:
        dom.memory = dom.memory._replace(devices=sum(
            m.facts.size * KIB for m in mems if isinstance(m.facts, MemFacts)))


def align_ppc64(mem: Device) -> None:
    """One pSeries memory module's size as QEMU's post-parse aligns it (see post_parse)."""
    f = mem.facts if isinstance(mem.facts, MemFacts) else None
    if f is None:
        return
    if mem.model == "nvdimm":
        area = f.size - (f.label or 0)
        if area < PPC64_MODULE_ALIGN:
            raise PlanError("minimum target size for the NVDIMM must be 256MB plus the label size",
                            mem.describe())
        f.size = area // PPC64_MODULE_ALIGN * PPC64_MODULE_ALIGN + (f.label or 0)
    else:
        f.size = -(-f.size // PPC64_MODULE_ALIGN) * PPC64_MODULE_ALIGN


#: a memory device's access modes ('default' is refused)
ACCESS_MODES = frozenset({"shared", "private"})
#: the <source> sizes and node masks each model's parser reads, in its order
SOURCE_READS = {"dimm": ("pagesize", "nodemask"), "virtio-mem": ("pagesize", "nodemask"),
                "nvdimm": ("alignsize",), "sgx-epc": ("nodemask",)}
#: the <target> sizes each model's parser reads after <size>, in its order
TARGET_SIZES = {"nvdimm": ("label/size",), "virtio-mem": ("block", "requested")}


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of a memory device, in its order: the access and discard words,
    an NVDIMM's UUID, the source's sizes and node mask, the target (its node, then its sizes:
    each a number with a known unit, as virDomainParseMemory reads it; the size is required),
    an NVDIMM's label."""
    def refuse(message: str, kind: str = "xml") -> PlanError:
        return PlanError(message, parsecheck._what(what), el.sourceline, kind=kind)
    model = el.get("model") or ""
    parsecheck._word(el, "access", ACCESS_MODES, what)
    parsecheck._word(el, "discard", parsecheck.YES_NO, what)
    uuid = el.find("uuid")
    text = "".join(uuid.itertext()) if model == "nvdimm" and uuid is not None else ""
    if text and not sources.uuid_ok(text):
        raise refuse("malformed uuid element", "internal")
    src = kids.get("source")
    for name in SOURCE_READS.get(model, ()) if src is not None else ():
        if name == "nodemask":
            _check_nodemask(src, refuse)
        else:
            _size_kib(src, name, what)
    t = kids.get("target")
    if t is None:
        raise refuse("missing <target> element for <memory> device")
    node = t.find("node")
    text = "".join(node.itertext()) if node is not None else ""
    n = parsecheck.c_int(text, 10) if text else 0
    if n is None or n < 0:
        raise refuse("invalid value of memory device node")
    size = _size_kib(t, "size", what, required=True) or 0
    sizes = {name: _size_kib(t, name, what) for name in TARGET_SIZES.get(model, ())}
    if model == "nvdimm":
        label = sizes["label/size"] or 0
        if label and label < LABEL_MIN:
            raise refuse("nvdimm label must be at least 128KiB")
        if label >= size:
            raise refuse("label size must be smaller than NVDIMM size")


def _size_kib(parent: etree._Element, name: str, what: parsecheck.What,
              required: bool = False) -> int | None:
    """libvirt's virDomainParseMemory of ``./name``: KiB, rounded up; None when left out."""
    from . import guestconf  # (at call time: guestconf's imports come back here)
    el = parent.find(name)
    path = f"./{name}"
    size = guestconf.scaled_size(el, path, guestconf.LLONG_MAX, parsecheck._what(what)) \
        if el is not None else None
    if size is None:
        if required:
            raise PlanError(f"missing element or attribute '{path}'", parsecheck._what(what),
                            parent.sourceline)
        return None
    kib = -(-size // KIB)
    if kib >= -(-guestconf.LLONG_MAX // KIB):
        raise PlanError("size value too large", parsecheck._what(what), el.sourceline, kind="internal")
    return kib


def _check_nodemask(src: etree._Element, refuse) -> None:
    from . import guestconf
    mask = src.find("nodemask")
    text = "".join(mask.itertext()) if mask is not None else ""
    if not text:
        return
    nodes = guestconf.bitmap(text)
    if nodes is None:
        raise refuse(f"Failed to parse bitmap '{text}'", "internal")
    if not nodes:
        raise refuse(f"Invalid value of 'nodemask': {text}", "unsupported")


def check(guest: Guest, mem: Device, host: Host) -> None:
    """libvirt's validation of one memory device: its generic checks, then QEMU's (the
    emulator has the model; for SGX's EPC, ``host``'s CPU has SGX)."""
    f = mem.facts if isinstance(mem.facts, MemFacts) else MemFacts()
    what = mem.describe()
    model = mem.model

    def refuse(message: str, kind: str = "unsupported") -> PlanError:
        return PlanError(message, what, kind=kind)
    cells = guest.domain.numa_cells
    if f.node is not None and not cells:
        raise refuse("can't add memory backend as guest has no NUMA nodes configured", kind="xml")
    if f.node is not None and f.node >= cells:
        raise refuse(f"can't add memory backend for guest node '{f.node}' as the guest has only "
                     f"'{cells}' NUMA nodes configured", kind="xml")
    if model in ("nvdimm", "virtio-pmem") and not f.path:
        raise refuse(f"path is required for model '{model}'", kind="xml")
    if model == "nvdimm" and f.attrs.get("discard") == "yes":
        raise refuse("discard is not supported for nvdimms")
    ppc64 = guest.domain.arch in machines.PPC64
    if model == "nvdimm" and ppc64 and not f.label:
        raise refuse("label size is required for NVDIMM device")
    if model == "nvdimm" and not ppc64 and "uuid" in mem.attrs:
        raise refuse("UUID is not supported for NVDIMM device")
    if model == "virtio-pmem":
        if f.attrs.get("discard") == "yes":
            raise refuse("discard is not supported for model 'virtio-pmem'")
        if f.attrs.get("access") == "private":
            raise refuse("shared access mode required for virtio-pmem device")
        if f.node is not None:
            raise refuse("virtio-pmem does not support NUMA nodes")
    if model == "virtio-mem":
        if not f.block or f.block & (f.block - 1):  # (none, or 0, is no power of two either)
            raise refuse("block size must be a power of two", kind="xml")
        if f.block < VIRTIO_MEM_BLOCK_MIN:
            raise refuse(f"block size too small, must be at least {VIRTIO_MEM_BLOCK_MIN}KiB", kind="xml")
        if f.requested is not None:
            if f.requested > f.size:
                raise refuse(f"requested size must be smaller than or equal to @size ({f.size}KiB)",
                             kind="xml")
            if f.requested % f.block:
                raise refuse("requested size must be an integer multiple of block size", kind="xml")
    arch = guest.domain.arch
    having = EMULATOR_MEMORY_MODELS.get(model or "")
    if having is not None and arch in machines.ARCHES and arch not in having[0]:
        raise refuse(having[1])
    if model == "sgx-epc" and not host.sgx_runs():  # (QEMU asks the host's CPU)
        raise HostError(SGX_LACKING, mem.describe())


#: TABLE: the 64-bit CPU models of QEMU 7.2's aarch64 binary (``-cpu help``; the others are
#: 32-bit ARM cores), and the CPU modes that give the guest a 64-bit CPU
AARCH64_CPU_MODELS = frozenset({"a64fx", "cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72",
                                "cortex-a76", "neoverse-n1", "max", "host"})
AARCH64_CPU_MODES = frozenset({"host-passthrough", "host-model", "maximum"})
#: TABLE: QEMU 7.2's words when a DIMM or NVDIMM is hot-plugged into a machine that cannot take
#: it, by machine kind: (no memory hot-plug at all, no NVDIMM enabled)
QEMU_MEMORY_HOTPLUG_REFUSALS = {
    "x86": ("memory hotplug is not enabled: missing acpi device or acpi disabled",
            "nvdimm is not enabled: missing 'nvdimm' in '-M'"),
    "arm-virt": ("memory hotplug is not enabled: missing acpi-ged device",
                 "nvdimm is not enabled: add 'nvdimm=on' to '-M'"),
}


def _arm_cpu_is_64bit(guest: Guest) -> bool:
    dom = guest.domain
    conf = dom.conf
    if dom.arch != "aarch64":
        return False
    if conf is None:
        return dom.virt_type == "kvm"
    if conf.cpu_mode in AARCH64_CPU_MODES or conf.cpu_model in AARCH64_CPU_MODELS:
        return True
    # without a model QEMU's virt board takes a 32-bit Cortex-A15 under TCG; a KVM guest
    # that runs has the host's
    return not conf.cpu_model and dom.virt_type == "kvm"


def check_hotplug(guest: Guest, mem: Device) -> None:
    """QEMU's refusals of a DIMM or NVDIMM hot-plugged into the running guest.

    A PC plugs memory through its ACPI device, ARM's virt board through the ACPI generic
    event device, which QEMU 7.2 makes only for a 64-bit CPU with ACPI (and the firmware
    libvirt requires with it on aarch64).  An NVDIMM also needs the machine's NVDIMM
    support, which libvirt turns on only for a guest started with one.  pSeries takes both.
    Checked against guests started by the libvirt 9.0 daemon (tests/test_attach.py)."""
    if mem.model not in ("dimm", "nvdimm"):
        return
    dom = guest.domain
    kind = "x86" if dom.arch in machines.X86 else guest.machine.family
    refusals = QEMU_MEMORY_HOTPLUG_REFUSALS.get(kind)
    if refusals is None:
        return
    able = dom.acpi if kind == "x86" else dom.acpi and _arm_cpu_is_64bit(guest)
    message = None
    if not able:
        message = refusals[0]
    elif mem.model == "nvdimm" and not any(m.model == "nvdimm" for m in guest.devices("memory")):
        message = refusals[1]
    if message is not None:
        raise PlanError(f"unable to execute QEMU command 'device_add': {message}", mem.describe(),
                        kind="internal")
