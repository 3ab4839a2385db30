"""What libvirt 9.0's parser refuses of a ``<graphics>``, in its order: the ports of VNC
and RDP, the ``<listen>`` elements (their type, the attributes each type takes, the
first one against the element's own ``listen``/``socket``), which listen types RDP
takes, VNC's and SPICE's ``connected`` and SPICE's channel names (:func:`check_parse`).
Checked against the libvirt 9.0 daemon with pairs of mistakes.  (Graphics take no
PCI address: pciplan reads nothing else of them.)
"""

from __future__ import annotations

from lxml import etree

from . import parsecheck
from .errors import PlanError

LISTEN_TYPES = frozenset({"none", "address", "network", "socket"})
#: graphics types that take a port, and how libvirt names them in its refusal
PORT_TYPES = frozenset({"vnc", "rdp"})
#: the listen types each graphics type takes (the others take any)
LISTEN_TYPES_OF = {"rdp": frozenset({"address", "network"})}
SPICE_CHANNELS = frozenset({"main", "display", "inputs", "cursor", "playback", "record",
                            "smartcard", "usbredir"})
SPICE_CONNECTED = frozenset({"fail", "disconnect", "keep"})


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of one graphics element (its type's word is checked before)."""
    def refuse(message: str, kind: str = "xml", line: int | None = None) -> PlanError:
        return PlanError(message, parsecheck._what(what), line or el.sourceline, kind=kind)
    gtype = el.get("type")
    listens = [c for c in el if c.tag == "listen"]
    for listen in listens:
        parsecheck._word(listen, "type", LISTEN_TYPES, what)
        ltype = listen.get("type")
        for attr in ("network", "socket"):
            if listen.get(attr) is not None and ltype != attr:
                raise refuse(f"'{attr}' attribute is valid only for listen type '{attr}'",
                             line=listen.sourceline)
    allowed = LISTEN_TYPES_OF.get(gtype or "")
    if allowed is not None:
        for listen in listens:
            ltype = listen.get("type")
            if ltype is not None and ltype not in allowed:
                raise refuse(f"listen type '{ltype}' is not available for graphics type '{gtype}'",
                             "unsupported")
    if listens:
        first = listens[0]
        listen = el.get("listen")
        if listen is not None and first.get("address") not in (None, listen):
            raise refuse(f"graphics 'listen' attribute '{listen}' must match 'address' attribute of "
                         f"first listen element (found '{first.get('address') or ''}')", "unsupported")
        socket = el.get("socket")
        if socket is not None and first.get("socket") not in (None, socket):
            raise refuse(f"graphics 'socket' attribute '{socket}' must match 'socket' attribute of "
                         f"first listen element (found '{first.get('socket') or ''}')", "unsupported")
    port = el.get("port")
    if port is not None and parsecheck.c_int(port, 10) is None:
        if gtype in PORT_TYPES:
            raise refuse(f"cannot parse {gtype} port {port}", "internal")
        if gtype == "spice":
            raise parsecheck._invalid(el, "port", port, what, "integer value")
    connected = el.get("connected") if el.get("passwd") is not None else None
    if gtype == "vnc" and connected is not None and connected != "keep":
        raise refuse("VNC supports connected='keep' only", "unsupported")
    if gtype == "spice":
        if connected is not None and connected not in SPICE_CONNECTED:
            raise refuse(f"unknown connected value {connected}", "unsupported")
        for channel in el.iterfind("channel"):
            parsecheck._word(channel, "name", SPICE_CHANNELS, what)
