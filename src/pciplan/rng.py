"""What libvirt 9.0 refuses of an ``<rng>``, in its order.

The parser wants a model, reads the rate and an EGD back end's chardev type
(:func:`check_parse`); validation (``validate_late``, each RNG's address first) checks an
EGD back end's chardev as any other (``chardevs``: its source, then QEMU's SPICE and
reconnect checks).  Checked against the libvirt 9.0 daemon with pairs of mistakes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from . import chardevs, parsecheck
from .errors import PlanError

if TYPE_CHECKING:
    from .defaults import Guest
    from .domain import Device


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of an RNG (its model's word and back ends are checked before)."""
    def refuse(message: str, kind: str = "xml") -> PlanError:
        return PlanError(message, parsecheck._what(what), el.sourceline, kind=kind)
    if el.get("model") is None:
        raise refuse("missing RNG device model")
    rate = kids.get("rate")
    if rate is not None and rate.get("bytes") is not None:  # (a rate without bytes is none)
        if parsecheck.c_uint(rate.get("bytes") or "", 10) is None:
            raise refuse("invalid RNG rate bytes value")
        period = rate.get("period")
        if period is not None and parsecheck.c_uint(period, 10) is None:
            raise refuse("invalid RNG rate period value")
    backend = kids.get("backend")
    if backend is not None and backend.get("model") == "egd":
        btype = backend.get("type")
        if btype is None:
            raise refuse("missing EGD backend type")
        if btype not in parsecheck.CHARDEV_TYPES:
            raise refuse(f"unknown backend type '{btype}' for egd", kind="unsupported")


def check_generic(guest: Guest, rng: Device) -> None:
    """libvirt's own checks of one RNG (before its address's): its EGD back end's chardev."""
    if isinstance(rng.facts, chardevs.ChrFacts) and rng.facts.type is not None:
        chardevs.check_generic(guest, rng)


def check_qemu(guest: Guest, rng: Device) -> None:
    """QEMU's checks of one RNG (after its address's): its EGD back end's chardev."""
    if isinstance(rng.facts, chardevs.ChrFacts) and rng.facts.type is not None:
        chardevs.check_qemu(guest, rng)
