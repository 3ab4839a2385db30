"""The QEMU driver's own XML namespace: what its parser refuses, last of a domain.

``<qemu:commandline>`` (each ``<qemu:arg>`` has a value; each ``<qemu:env>`` a name that
starts with a letter or '_' and holds only letters, digits and '_'), ``<qemu:override>``
(each ``<qemu:device>`` an alias, each of its frontend ``<qemu:property>`` a name other than
``id``, a type and a value of that type) and ``<qemu:capabilities>`` (each ``<qemu:add>`` and
``<qemu:del>`` a capability), in that order.  Elements are found by the namespace URI,
whatever prefix the document gives it.  pciplan adds no argument of its own: the
namespace changes no PCI address.  Checked against the libvirt 9.0 daemon.
"""

from __future__ import annotations

import re

from lxml import etree

from .errors import PlanError

NS = "http://libvirt.org/schemas/domain/qemu/1.0"
#: a <qemu:property>'s types ('remove' takes no value)
PROPERTY_TYPES = frozenset({"string", "signed", "unsigned", "bool", "remove"})
_ENV_NAME = re.compile(r"[A-Za-z0-9_]*")
_SIGNED = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_UNSIGNED = re.compile(r"[ \t\n\v\f\r]*\+?[0-9]+")


def _q(path: str) -> str:
    """An lxml path with every step in the QEMU namespace."""
    return "/".join(f"{{{NS}}}{step}" for step in path.split("/"))


def check(root: etree._Element) -> None:
    """The namespace's parser, on the domain element ``root``."""
    where = "qemu:commandline"
    for arg in root.iterfind(_q("commandline/arg")):
        if arg.get("value") is None:
            raise PlanError("No qemu command-line argument specified", where, arg.sourceline,
                            kind="internal")
    for env in root.iterfind(_q("commandline/env")):
        name = env.get("name")
        if name is None:
            raise PlanError("No qemu environment name specified", where, env.sourceline, kind="internal")
        if not (name[:1].isascii() and name[:1].isalpha() or name[:1] == "_"):
            raise PlanError("Invalid environment name, it must begin with a letter or underscore", where,
                            env.sourceline, kind="internal")
        if _ENV_NAME.fullmatch(name) is None:
            raise PlanError("Invalid environment name, it must contain only alphanumerics and underscore",
                            where, env.sourceline, kind="internal")
    for device in root.iterfind(_q("override/device")):
        if device.get("alias") is None:
            raise PlanError("missing 'alias' attribute for qemu:device", "qemu:override", device.sourceline)
        for prop in device.iterfind(_q("frontend/property")):
            _check_property(prop)
    for tag in ("add", "del"):
        for cap in root.iterfind(_q(f"capabilities/{tag}")):
            if cap.get("capability") is None:
                raise PlanError("missing capability name", "qemu:capabilities", cap.sourceline,
                                kind="internal")


def _check_property(prop: etree._Element) -> None:
    def refuse(message: str) -> PlanError:
        return PlanError(message, "qemu:override", prop.sourceline)
    name = prop.get("name")
    if name is None:
        raise refuse("missing 'name' attribute for qemu:property")
    if name == "id":
        raise refuse("property with name 'id' can't be overridden")
    ptype = prop.get("type")
    if ptype is None:
        raise refuse("Missing required attribute 'type' in element 'property'")
    if ptype not in PROPERTY_TYPES:
        raise refuse(f"Invalid value for attribute 'type' in element 'property': '{ptype}'.")
    value = prop.get("value")
    if value is None:
        if ptype != "remove":
            raise refuse("missing 'value' attribute for 'qemu:property'")
        return
    if ptype == "remove":
        raise refuse("setting 'value' attribute of 'qemu:property' doesn't make sense with 'remove' type")
    ok = {"string": lambda v: True,
          "signed": lambda v: _SIGNED.fullmatch(v) is not None and -2 ** 63 <= int(v) < 2 ** 63,
          "unsigned": lambda v: _UNSIGNED.fullmatch(v) is not None and int(v) < 2 ** 64,
          "bool": lambda v: v in ("true", "false")}[ptype]
    if not ok(value):
        raise refuse(f"invalid value '{value}' of 'value' attribute of 'qemu:property'")
