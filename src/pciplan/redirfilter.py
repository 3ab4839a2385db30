"""What libvirt 9.0's parser refuses of a ``<redirfilter>`` (:func:`check_parse`): each
``<usbdev>`` rule in order, its ``class`` (a C int, base 0: -1 for any, else one byte),
``vendor`` and ``product`` (C ints), ``version`` (-1, or ``MAJOR.MINOR`` each below 100)
and ``allow`` (required, yes or no).  A second ``<redirfilter>`` is refused before any
is read (``parsecheck.SINGLE_DEVICES``).  Checked against the libvirt 9.0 daemon.
"""

from __future__ import annotations

from lxml import etree

from . import parsecheck
from .errors import PlanError

YES_NO = frozenset({"yes", "no"})
#: the largest major and minor USB version numbers
VERSION_PART_MAX = 99


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    for rule in el.iterfind("usbdev"):
        _check_rule(rule, what)


def _check_rule(rule: etree._Element, what: parsecheck.What) -> None:
    def refuse(message: str, kind: str = "xml") -> PlanError:
        return PlanError(message, parsecheck._what(what), rule.sourceline, kind=kind)
    usb_class = _int_attr(rule, "class", what)
    if usb_class is not None and usb_class != -1 and usb_class & ~0xFF:
        raise refuse(f"Invalid USB Class code 0x{usb_class & 0xFFFFFFFF:x}", "internal")
    _int_attr(rule, "vendor", what)
    _int_attr(rule, "product", what)
    version = rule.get("version")
    if version is not None and version != "-1" and not _version_ok(version):
        raise refuse(f"Cannot parse USB device version {version}")
    if rule.get("allow") is None:
        raise refuse("Missing required attribute 'allow' in element 'usbdev'")
    parsecheck._word(rule, "allow", YES_NO, what)


def _int_attr(el: etree._Element, attr: str, what: parsecheck.What) -> int | None:
    value = el.get(attr)
    if value is None:
        return None
    n = parsecheck.c_int(value, 0)
    if n is None:
        raise parsecheck._invalid(el, attr, value, what, "integer value")
    return n


def _strtoul_prefix(text: str) -> tuple[int, str] | None:
    """C's strtoul (base 10) on the start of ``text`` as libvirt's virStrToLong_ui reads
    it: (the number, what follows), None when there is no number or it does not fit."""
    s = text.lstrip(" \t\n\v\f\r")
    neg = s[:1] == "-"
    if s[:1] in ("-", "+"):
        s = s[1:]
    digits = len(s) - len(s.lstrip("0123456789"))
    if not digits:
        return None
    n = int(s[:digits])
    if neg:
        if n > 0xFFFFFFFF:
            return None
        n = -n & 0xFFFFFFFF
    elif n > 0xFFFFFFFF:
        return None
    return n, s[digits:]


def _version_ok(version: str) -> bool:
    """``MAJOR.MINOR``: a number, a dot, a number (all of the rest), each below 100."""
    major = _strtoul_prefix(version)
    if major is None or not major[1].startswith("."):
        return False
    minor = _strtoul_prefix(major[1][1:])
    if minor is None or minor[1]:
        return False
    return major[0] <= VERSION_PART_MAX and minor[0] <= VERSION_PART_MAX
