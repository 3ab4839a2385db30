"""What libvirt 9.0 refuses of a ``<filesystem>``, in its order.

The parser reads the modes, the model and multidevs words, the <driver>'s type,
wrpolicy, format and virtio switches, virtiofs' queue and thread pool sizes, wants a
source, then a RAM filesystem's usage (:func:`check_parse`); validation (``validate_late``,
with the other filesystems) makes libvirt's generic checks (a target, boot order only for
virtiofs: :func:`check_generic`), then the address's, then its QEMU driver's (fmode/dmode
only when mapped, mount type only, the drivers QEMU has, what virtiofs does not support:
:func:`check_qemu`); at the end of the domain's own checks, no two virtiofs filesystems
with one target (:func:`validate_domain`).
Each order was checked against the libvirt 9.0 daemon with pairs of mistakes.

``xmlio`` reads what the checks need of each filesystem into a :class:`FsFacts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from . import parsecheck
from .errors import PlanError
from .records import Value

if TYPE_CHECKING:
    from .defaults import Guest
    from .domain import Device


class FsFacts(Value):
    """What validation needs of a ``<filesystem>`` beyond ``Device``'s fields."""

    #: the element's attributes, ``<driver>``'s, ``<source>``'s (None: no source)
    attrs: dict[str, str]
    driver: dict[str, str]
    source: dict[str, str] | None = None
    #: ``<target dir>``
    target: str | None = None
    children: frozenset[str] = frozenset()

    def __init__(self, attrs=..., driver=..., source=None, target=None, children=frozenset()) -> None:
        self.attrs = {} if attrs is ... else attrs
        self.driver = {} if driver is ... else driver
        self.source = source
        self.target = target
        self.children = children


def read(el: etree._Element, kids: dict) -> FsFacts:
    src, tgt, drv = kids.get("source"), kids.get("target"), kids.get("driver")
    return FsFacts(dict(el.attrib), dict(drv.attrib) if drv is not None else {},
                   dict(src.attrib) if src is not None else None,
                   tgt.get("dir") if tgt is not None else None, frozenset(kids))


_ON_OFF = frozenset({"on", "off"})
#: the words of a virtiofsd <binary>: (element, attributes, words), in libvirt's order
BINARY_WORDS = (("binary", ("xattr",), _ON_OFF),
                ("binary/lock", ("posix", "flock"), _ON_OFF),
                ("binary/cache", ("mode",), frozenset({"none", "always"})),
                ("binary/sandbox", ("mode",), frozenset({"namespace", "chroot"})))
#: where each filesystem type names its source
SOURCE_ATTRS = {"mount": ("dir", "socket"), "bind": ("dir",), "file": ("file",), "block": ("dev",),
                "template": ("name",), "volume": ("volume",)}
#: the drivers QEMU has no filesystem device for
DRIVERS_QEMU_LACKS = frozenset({"loop", "nbd", "ploop"})
MODE_MAX = 0o777
#: the words of a filesystem's multidevs, and of its <driver>'s type and wrpolicy
MULTIDEVS = frozenset({"default", "remap", "forbid", "warn"})
DRIVER_TYPES = frozenset({"default", "path", "handle", "loop", "nbd", "ploop", "virtiofs"})
WRPOLICIES = frozenset({"default", "immediate"})
#: the storage formats a filesystem's <driver format> may name (libvirt's storage file
#: formats but 'none')
FORMATS = frozenset({"raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd",
                     "ploop", "cow", "qcow", "qcow2", "qed", "vmdk"})
#: what a virtiofs share may not have, in libvirt's order: (its refusal, is it there)
VIRTIOFS_UNSUPPORTED = (
    ("virtiofs does not support wrpolicy", lambda f: bool(f.driver.get("wrpolicy"))),
    ("virtiofs does not support model", lambda f: bool(f.attrs.get("model"))),
    ("virtiofs does not support format", lambda f: bool(f.driver.get("format"))),
    ("virtiofs does not support multidevs", lambda f: bool(f.attrs.get("multidevs"))),
)


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of a filesystem, in its order (its type and access mode are
    checked before, with every device's words)."""
    for name in ("fmode", "dmode"):
        v = el.get(name)
        if v is None:
            continue
        n = parsecheck.c_uint(v, 8)
        if n is None:
            raise parsecheck._invalid(el, name, v, what, "non-negative integer value")
        if n > MODE_MAX:
            raise PlanError(f"invalid {name}: '0{n:o}'", parsecheck._what(what), el.sourceline)
    parsecheck._word(el, "model", parsecheck.VIRTIO_MODELS, what)  # ('default' is not one)
    parsecheck._word(el, "multidevs", MULTIDEVS, what)
    ftype = el.get("type") or "mount"
    src = kids.get("source")
    drv = kids.get("driver")
    if drv is not None:
        parsecheck._word(drv, "type", DRIVER_TYPES, what)
        parsecheck._word(drv, "wrpolicy", WRPOLICIES, what)
        fmt = drv.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise PlanError(f"unknown driver format value '{fmt}'", parsecheck._what(what),
                            drv.sourceline, kind="unsupported")
        parsecheck.check_virtio_switches(drv, what)
    if drv is not None and drv.get("type") == "virtiofs":
        queue = drv.get("queue")
        if queue is not None and parsecheck.c_uint(queue, 10, parsecheck.ULLONG_MAX) is None:
            raise PlanError(f"cannot parse queue size '{queue}' for virtiofs", parsecheck._what(what),
                            drv.sourceline)
        pool = el.find("binary/thread_pool")
        if pool is not None and pool.get("size") is not None and \
                parsecheck.c_int(pool.get("size") or "", 10) is None:
            raise PlanError(f"cannot parse thread pool size '{pool.get('size')}' for virtiofs",
                            parsecheck._what(what), pool.sourceline)
        for path, attrs, words in BINARY_WORDS:
            holder = el.find(path)
            for attr in attrs if holder is not None else ():
                parsecheck._word(holder, attr, words, what)
    names = SOURCE_ATTRS.get(ftype, ())
    if names and not any(src is not None and src.get(n) for n in names + ("socket",)):
        tgt = kids.get("target")
        raise PlanError(f"missing source information for device {tgt.get('dir') or '' if tgt is not None else ''}",
                        parsecheck._what(what), el.sourceline)
    if ftype == "ram":
        usage = src.get("usage") if src is not None else None
        if usage is None:
            raise PlanError("missing 'usage' attribute for RAM filesystem", parsecheck._what(what),
                            el.sourceline)
        if parsecheck.c_uint(usage, 10, parsecheck.ULLONG_MAX) is None:
            raise PlanError(f"cannot parse usage '{usage}' for RAM filesystem", parsecheck._what(what),
                            el.sourceline)


def check_generic(fs: Device) -> None:
    """libvirt's own checks of one filesystem (before its address's and QEMU's)."""
    f = fs.facts if isinstance(fs.facts, FsFacts) else FsFacts()
    what = fs.describe()
    driver = f.driver.get("type")
    if not f.target:
        src = f.source or {}
        name = next((src[k] for k in ("dir", "socket", "file", "dev", "name", "volume") if src.get(k)),
                    "<null>")
        raise PlanError(f"missing target information for device {name}", what)
    if "boot" in fs.attrs and driver != "virtiofs":
        raise PlanError("boot order is only supported for virtiofs", what, kind="unsupported")


def validate_domain(fss: list[Device]) -> None:
    """libvirt's check of the filesystems together (with the domain's, after the NUMA's):
    no two virtiofs ones with one target (other drivers may share one)."""
    seen: set[str | None] = set()
    for fs in fss:
        f = fs.facts if isinstance(fs.facts, FsFacts) else FsFacts()
        if f.driver.get("type") != "virtiofs":
            continue
        if f.target in seen:
            raise PlanError(f"filesystem target '{f.target}' specified twice", fs.describe(),
                            kind="unsupported")
        seen.add(f.target)


def check_qemu(guest: Guest, fs: Device) -> None:
    """QEMU's checks of one filesystem (after its address's)."""
    f = fs.facts if isinstance(fs.facts, FsFacts) else FsFacts()
    what = fs.describe()

    def refuse(message: str, kind: str = "unsupported") -> PlanError:
        return PlanError(message, what, kind=kind)
    driver = f.driver.get("type")
    accessmode = f.attrs.get("accessmode") or "passthrough"
    if fs.type not in (None, "mount"):
        raise refuse("only supports mount filesystem type")
    if (f.attrs.get("fmode") or f.attrs.get("dmode")) and accessmode != "mapped":
        raise refuse("fmode and dmode must be used with accessmode=mapped")
    if driver == "handle" and accessmode != "passthrough":
        raise refuse("only supports passthrough accessmode")
    if driver in DRIVERS_QEMU_LACKS:
        raise refuse("Filesystem driver type not supported")
    if driver != "virtiofs":
        return
    external = bool((f.source or {}).get("socket"))  # (a virtiofsd of the user's own)
    if not external:
        if "readonly" in f.children:
            raise refuse("virtiofs does not yet support read-only mode")
        if accessmode != "passthrough":
            raise refuse("virtiofs only supports passthrough accessmode")
    for message, given in VIRTIOFS_UNSUPPORTED:
        if message.endswith("multidevs") and "vhost-user-fs" in guest.machine.lacks:
            raise refuse("virtiofs is not supported with this QEMU binary")  # (checked here)
        if given(f) and not (external and message.endswith("wrpolicy")):
            raise refuse(message)
    if f.attrs.get("fmode") or f.attrs.get("dmode"):
        raise refuse("virtiofs does not support fmode and dmode")
    if not guest.domain.shared_memory:
        raise refuse("'virtiofs' requires shared memory")
