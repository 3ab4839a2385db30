"""What libvirt 9.0's parser refuses of a ``<lease>`` (:func:`check_parse`), in its
order: a key (the text of the first ``<key>``, not empty), a lockspace (likewise: one
missing fails without a message of its own), a ``<target>`` with a ``path``, and
its ``offset`` (a decimal number of 64 bits).  Checked against the libvirt 9.0 daemon.
(Leases take no PCI address: pciplan reads nothing else of them.)
"""

from __future__ import annotations

from lxml import etree

from . import parsecheck
from .errors import UNKNOWN_CAUSE, PlanError


def _text(el: etree._Element | None) -> str:
    """XPath's string() of an element: all its text, that of its children included."""
    return "".join(el.itertext()) if el is not None else ""


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    def refuse(message: str, kind: str = "xml") -> PlanError:
        return PlanError(message, parsecheck._what(what), el.sourceline, kind=kind)
    if not _text(kids.get("key")):
        raise refuse("Missing 'key' element for lease")
    if not _text(kids.get("lockspace")):
        raise refuse(UNKNOWN_CAUSE, "internal")
    target = kids.get("target")
    if target is None:
        raise refuse("Missing 'target' element for lease")
    if target.get("path") is None:
        raise refuse("Missing 'path' attribute to 'target' element for lease")
    parsecheck._uint_attrs(target, ("offset",), 10, what, parsecheck.ULLONG_MAX)
