"""What libvirt 9.0 refuses of a ``<graphics>``, in its order.

* the parser (:func:`check_parse`): the ports of VNC and RDP, the ``<listen>`` elements
  (their type, the attributes each type takes, the first one against the element's own
  ``listen``/``socket``), which listen types RDP takes, VNC's ``<audio>``, VNC's and
  SPICE's ``connected``, SPICE's channel names, D-Bus's ``p2p``, ``<gl>`` and ``<audio>``;
* validation (:func:`validate`), after every other device (libvirt validates graphics
  last, before what spans devices), each graphics in document order: libvirt's own
  checks (a network listen names its network, VNC's audio is there, D-Bus p2p takes no
  address), then QEMU's (the types QEMU 7.2 has, what egl-headless pairs with, one
  OpenGL display, a SPICE TLS port where qemu.conf has TLS off, D-Bus's audio is a D-Bus
  one, VNC's password length).

Checked against the libvirt 9.0 daemon with pairs of mistakes.  (Graphics take no
PCI address: pciplan reads nothing else of them.)
"""

from __future__ import annotations

from typing import Callable

from lxml import etree

from . import audios, parsecheck
from .errors import HostError, PlanError
from .records import Value


class GraphicsFacts(Value):
    """What validation needs of one ``<graphics>``."""

    type: str | None
    #: the ``<listen>`` elements: (type, network), in order
    listens: tuple[tuple[str | None, str | None], ...] = ()
    #: SPICE's ``<gl enable='yes'>``
    gl: bool = False
    #: the attributes validation reads (passwd, p2p, address)
    attrs: tuple[tuple[str, str], ...] = ()
    #: the id of the audio a VNC or D-Bus display names (0: none)
    audio: int = 0
    #: SPICE keeps a TLS port after the parse (``tlsPort`` > 0, no ``autoport``)
    tls_port: bool = False

    def __init__(self, type, listens=(), gl=False, attrs=(), audio=0, tls_port=False) -> None:
        self.type = type
        self.listens = listens
        self.gl = gl
        self.attrs = attrs
        self.audio = audio
        self.tls_port = tls_port


def read(el: etree._Element) -> GraphicsFacts:
    gl = el.find("gl")
    return GraphicsFacts(
        el.get("type"),
        tuple((c.get("type"), c.get("network")) for c in el.iterfind("listen")),
        gl is not None and gl.get("enable") == "yes",
        tuple((k, v) for k, v in el.attrib.items() if k in CHECKED_ATTRS),
        _audio_id(el) if el.get("type") in AUDIO_TYPES else 0,
        el.get("type") == "spice" and el.get("autoport") != "yes"
        and (parsecheck.c_int(el.get("tlsPort") or "") or 0) > 0)


def _audio_id(el: etree._Element) -> int:
    audio = el.find("audio")
    return parsecheck.c_uint(audio.get("id") or "", 10) or 0 if audio is not None else 0


#: the graphics types whose ``<audio>`` libvirt reads
AUDIO_TYPES = frozenset({"vnc", "dbus"})


#: the graphics attributes validation reads
CHECKED_ATTRS = frozenset({"passwd", "p2p", "address"})
#: graphics types QEMU 7.2 has no display for
QEMU_LACKS = frozenset({"rdp", "desktop"})
#: graphics types whose listens are checked, and those egl-headless may go with
LISTENING_TYPES = frozenset({"vnc", "spice", "rdp"})
EGL_PARTNERS = frozenset({"egl-headless", "vnc", "spice"})
#: the listen types a SPICE TLS port is refused on when qemu.conf has TLS off
TLS_LISTENS = frozenset({"address", "network"})
#: the longest VNC password QEMU takes
VNC_PASSWD_LEN = 8


def validate(facts: list[GraphicsFacts], audio: list[audios.AudioFacts],
             spice_tls: Callable[[], bool]) -> None:
    """libvirt's checks of each graphics (its own, then its QEMU driver's), in order;
    ``audio``: the audio back ends after post-parse; ``spice_tls``: whether the host's
    qemu.conf turns SPICE's TLS on (asked only for a TLS port)."""
    egl = any(g.type == "egl-headless" for g in facts)
    for i, g in enumerate(facts, 1):
        what = f"graphics #{i}"
        attrs = dict(g.attrs)
        if g.type in LISTENING_TYPES and any(t == "network" and not net for t, net in g.listens):
            raise PlanError("'network' attribute is required for listen type 'network'", what)
        if g.type == "vnc":
            audios.check_id(g.audio, audio, what)
        if g.type == "dbus" and attrs.get("p2p") == "yes" and attrs.get("address"):
            raise PlanError("D-Bus p2p with an address is not supported", what)
        if g.type in QEMU_LACKS:
            raise PlanError(f"{g.type} graphics are not supported with this QEMU", what,
                            kind="unsupported")
        if egl and g.type not in EGL_PARTNERS:
            raise PlanError("graphics type 'egl-headless' is only supported with one of: 'vnc', "
                            "'spice' graphics types", what, kind="unsupported")
        if egl and g.type == "spice" and g.gl:
            raise PlanError("multiple OpenGL displays are not supported by QEMU", what,
                            kind="unsupported")
        # (a TLS port listens on an address: the first listen's, or the default one)
        if g.tls_port and (not g.listens or g.listens[0][0] in TLS_LISTENS) and not spice_tls():
            raise HostError("spice TLS port set in XML configuration, but TLS is disabled in qemu.conf",
                            what)
        if g.type == "dbus":
            audios.check_dbus_display(g.audio, audio, what)
        passwd = attrs.get("passwd")
        if g.type == "vnc" and passwd is not None and len(passwd.encode()) > VNC_PASSWD_LEN:
            raise PlanError(f"VNC password is {len(passwd.encode())} characters long, only "
                            f"{VNC_PASSWD_LEN} permitted", what, kind="unsupported")


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
    if gtype == "vnc":  # (D-Bus's after its other attributes)
        audios.check_reference(el.find("audio"), what)
    connected = el.get("connected") if el.get("passwd") is not None else None
    if gtype == "vnc" and connected is not None and connected != "keep":
        raise refuse("VNC supports connected='keep' only", "unsupported")
    if gtype == "spice":
        if connected is not None and connected not in SPICE_CONNECTED:
            raise refuse(f"unknown connected value {connected}", "unsupported")
        for channel in el.iterfind("channel"):
            parsecheck._word(channel, "name", SPICE_CHANNELS, what)
    if gtype == "dbus":
        parsecheck._word(el, "p2p", parsecheck.YES_NO, what)
        gl = el.find("gl")
        if gl is not None:
            if gl.get("enable") is None:
                raise refuse("Missing required attribute 'enable' in element 'gl'", line=gl.sourceline)
            parsecheck._word(gl, "enable", parsecheck.YES_NO, what)
        audios.check_reference(el.find("audio"), what)
