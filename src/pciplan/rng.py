"""What libvirt 9.0 refuses of an ``<rng>``, in its order.

The parser wants a model, reads the rate, one back end and its model, and an EGD back
end's chardev type (:func:`check_parse`), all before the RNG's ACPI index and address; validation (``validate_late``, each RNG's address first) checks an
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
    """The parser's checks of an RNG after its model (there, and a word: ``parsecheck``'s
    tables), before its ACPI index and address: the rate, one back end, its model, an EGD
    back end's chardev type."""
    def refuse(message: str, kind: str = "xml", at: etree._Element = el) -> PlanError:
        return PlanError(message, parsecheck._what(what), at.sourceline, kind=kind)
    rate = kids.get("rate")
    if rate is not None and rate.get("bytes"):  # (a rate without bytes, or empty ones, is none)
        rate_bytes = parsecheck.c_uint(rate.get("bytes"), 10)
        if rate_bytes is None:
            raise refuse("invalid RNG rate bytes value")
        period = rate.get("period")  # (read only for a rate of some bytes: 0 is no rate)
        if rate_bytes and period is not None and parsecheck.c_uint(period, 10) is None:
            raise refuse("invalid RNG rate period value")
    if len(el.findall("backend")) != 1:
        raise refuse("only one RNG backend is supported")
    backend = kids["backend"]
    model = backend.get("model")
    if model is None:
        raise refuse("missing RNG device backend model", at=backend)
    if model not in parsecheck.RNG_BACKEND_MODELS:
        raise refuse(f"unknown RNG backend model '{model}'", "unsupported", backend)
    if model == "egd":
        btype = backend.get("type")
        if btype is None:
            raise refuse("missing EGD backend type")
        if btype not in parsecheck.CHARDEV_TYPES:
            raise refuse(f"unknown backend type '{btype}' for egd", kind="unsupported")
        chardevs.check_host_side(backend, btype, what)


def check_generic(guest: Guest, rng: Device) -> None:
    """libvirt's own checks of one RNG (before its address's): its EGD back end's chardev."""
    if isinstance(rng.facts, chardevs.ChrFacts) and rng.facts.type is not None:
        chardevs.check_generic(guest, rng)


#: TABLE: the QEMU devices an RNG model needs (``Machine.lacks``): virtio-rng, and for the
#: (non-)transitional models the emulator's transitional virtio-pci devices as well
RNG_MODEL_DEVICES = {"virtio": ("virtio-rng-pci",),
                     "virtio-transitional": ("virtio-rng-pci", "virtio-pci-transitional"),
                     "virtio-non-transitional": ("virtio-rng-pci", "virtio-pci-transitional")}


def check_qemu(guest: Guest, rng: Device) -> None:
    """QEMU's checks of one RNG (after its address's): its EGD back end's chardev, then
    the model the emulator has (its domain capabilities)."""
    if isinstance(rng.facts, chardevs.ChrFacts) and rng.facts.type is not None:
        chardevs.check_qemu(guest, rng)
    model = rng.model or "virtio"
    if any(d in guest.machine.lacks for d in RNG_MODEL_DEVICES.get(model, ())):
        raise PlanError(f"domain configuration does not support rng model '{model}'", rng.describe(),
                        kind="unsupported")
