"""What libvirt 9.0 refuses of a ``<shmem>`` (an ivshmem device), in its order.

* the parser (:func:`check_parse`): the model, the name, the role (not read for the old
  'ivshmem' model), the size (a number and a unit), ``<msi>`` (only with a ``<server>``);
* post-parse (:func:`post_parse`, after the serial ports', before the consoles'): the
  doorbell model needs a server, the plain one none; a doorbell takes no size;
* validation (:func:`check`): libvirt's own checks of the name first, then QEMU's
  (its binary lacks the old 'ivshmem' model).

Each order was checked against the libvirt 9.0 daemon with pairs of mistakes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from . import parsecheck
from .errors import PlanError

if TYPE_CHECKING:
    from .defaults import Guest
    from .domain import Device

MODELS = frozenset({"ivshmem", "ivshmem-plain", "ivshmem-doorbell"})
#: a role must be named ('default' is not a word the parser takes)
ROLES = frozenset({"master", "peer"})
#: the names a shared memory object may not have
RESERVED_NAMES = (".", "..")
ULLONG_MAX = 0xFFFFFFFFFFFFFFFF
_SIZE_PATH = "./size[1]"


def unit_scale(unit: str) -> int | None:
    """libvirt's virScaleInteger: the bytes of one ``unit`` (none: bytes), None if unknown."""
    u = unit.lower()
    if not u or u in ("b", "byte", "bytes"):
        return 1
    if len(u) == 1 or u[1:] == "ib":
        base = 1024
    elif u[1:] == "b":
        base = 1000
    else:
        return None
    power = "kmgtpe".find(u[0]) + 1
    return base ** power if power else None


def size(el: etree._Element) -> int:
    """The shared memory's size in bytes (0: none given); the parser refused an unreadable one."""
    s = el.find("size")
    if s is None:
        return 0
    n = parsecheck.c_uint(s.xpath("string()"), 10, ULLONG_MAX)
    return (n or 0) * (unit_scale(s.get("unit") or "") or 1)


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of a ``<shmem>``."""
    def refuse(message: str, line: int | None, kind: str = "xml") -> PlanError:
        return PlanError(message, parsecheck._what(what), line, kind=kind)
    model = kids.get("model")
    if model is not None:
        parsecheck._word(model, "type", MODELS, what)
    if el.get("name") is None:
        raise refuse("shmem element must contain 'name' attribute", el.sourceline)
    if (model.get("type") if model is not None else None) not in (None, "ivshmem"):
        parsecheck._word(el, "role", ROLES, what)
    s = el.find("size")
    text = s.xpath("string()") if s is not None else ""
    if text:
        n = parsecheck.c_uint(text, 10, ULLONG_MAX)
        if n is None:
            raise refuse(f"Invalid value '{text}' for element or attribute '{_SIZE_PATH}'", s.sourceline)
        unit = s.get("unit") or ""
        scale = unit_scale(unit)
        if scale is None:
            raise refuse(f"unknown suffix '{unit}'", s.sourceline)
        if n and n > ULLONG_MAX // scale:
            raise refuse(f"numerical overflow: value too large: {n}{unit}", s.sourceline)
    msi = kids.get("msi")
    if msi is not None:
        parsecheck._uint_attrs(msi, ("vectors",), 0, what)
        parsecheck._word(msi, "ioeventfd", parsecheck.ON_OFF, what)
        if "server" not in kids:
            raise refuse("msi option is only supported with a server", msi.sourceline)


def post_parse(guest: Guest) -> None:
    """The QEMU driver's post-parse of each shmem (the old model aside): the server a
    model needs or cannot have, and no size for a doorbell."""
    for shm in guest.devices("shmem"):
        model = shm.model or "ivshmem"
        if model == "ivshmem":
            continue
        server = "server" in shm.attrs
        if not server and model == "ivshmem-doorbell":
            raise PlanError(f"shmem model '{model}' is supported only with server option enabled",
                            shm.describe(), kind="unsupported")
        if server and model == "ivshmem-plain":
            raise PlanError(f"shmem model '{model}' is supported only with server option disabled",
                            shm.describe(), kind="unsupported")
        if server and shm.ref is not None and size(shm.ref):
            raise PlanError(f"shmem model '{model}' does not support size setting", shm.describe(),
                            kind="unsupported")


def check_generic(shm: Device) -> None:
    """libvirt's own check of a shmem: its name (before its address's and QEMU's)."""
    name = shm.attrs.get("name", "")
    if "/" in name:
        raise PlanError("shmem name cannot include '/' character", shm.describe(), kind="unsupported")
    if name in RESERVED_NAMES:
        raise PlanError(f"shmem name cannot be equal to '{name}'", shm.describe(), kind="unsupported")


def check_qemu(guest: Guest, shm: Device) -> None:
    """QEMU's check of a shmem (after its address's): the model QEMU has."""
    model = shm.model or "ivshmem"
    if model == "ivshmem":
        raise PlanError("ivshmem device is not supported with this QEMU binary", shm.describe(),
                        kind="unsupported")
    if model in guest.machine.lacks:
        raise PlanError(f"shmem model '{model}' is not supported by this QEMU binary", shm.describe(),
                        kind="unsupported")
