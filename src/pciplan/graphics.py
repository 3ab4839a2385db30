"""What libvirt 9.0 refuses of a ``<graphics>``, in its order.

* the parser (:func:`check_parse`), each type's attributes in the order it reads them:
  the ``<listen>`` elements of VNC, RDP and SPICE (the other types ignore them: their
  type, required, whether the graphics type takes it, the first one against the element's
  own ``listen``/``socket``, the attributes each listen type takes), the ports, VNC's
  ``websocket``, ``sharePolicy``, ``powerControl`` and ``<audio>``, SPICE's ``autoport``,
  ``defaultMode``, channels and the words of its children (``<image compression>``...),
  the password's expiry time and ``connected``, SDL's and desktop's ``fullscreen``,
  D-Bus's ``p2p``, ``<gl>`` and ``<audio>``;
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

import re
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
#: graphics types whose parser reads the ``<listen>`` elements (the others ignore them)
LISTEN_PARSED = frozenset({"vnc", "rdp", "spice"})
#: graphics types that take the listen types 'socket' and 'none'
SOCKET_TYPES = frozenset({"vnc", "spice"})
#: graphics types that take a port, and how libvirt names them in its refusal
PORT_TYPES = frozenset({"vnc", "rdp"})
SPICE_CHANNELS = frozenset({"main", "display", "inputs", "cursor", "playback", "record",
                            "smartcard", "usbredir"})
SPICE_CONNECTED = frozenset({"fail", "disconnect", "keep"})
SPICE_MODES = frozenset({"any", "secure", "insecure"})
VNC_SHARE_POLICIES = frozenset({"default", "allow-exclusive", "force-shared", "ignore"})
_YES_NO = frozenset({"yes", "no"})    # (parsecheck's words: it imports this module)
_ON_OFF = frozenset({"on", "off"})
#: SPICE's children read as one word each, in the parser's order: (child, attribute, words);
#: each is required once the child is there, and none takes 'default'
SPICE_CHILD_WORDS = (
    ("image", "compression", frozenset({"auto_glz", "auto_lz", "quic", "glz", "lz", "off"})),
    ("jpeg", "compression", frozenset({"auto", "never", "always"})),
    ("zlib", "compression", frozenset({"auto", "never", "always"})),
    ("playback", "compression", _ON_OFF),
    ("streaming", "mode", frozenset({"filter", "all", "off"})),
    ("clipboard", "copypaste", _YES_NO),
    ("filetransfer", "enable", _YES_NO),
    ("gl", "enable", _YES_NO),
    ("mouse", "mode", frozenset({"server", "client"})),
)
#: ``passwdValidTo``: YYYY-MM-DDTHH:MM:SS, each number as C's strtol reads it
_VALID_TO = re.compile(r"\s*([+-]?\d+)-\s*([+-]?\d+)-\s*([+-]?\d+)T\s*([+-]?\d+):\s*([+-]?\d+):"
                       r"\s*([+-]?\d+)", re.ASCII)


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of one graphics element, in its order (its type's word is
    checked before)."""
    def refuse(message: str, kind: str = "xml", line: int | None = None) -> PlanError:
        return PlanError(message, parsecheck._what(what), line or el.sourceline, kind=kind)
    gtype = el.get("type")
    if gtype in LISTEN_PARSED:
        _check_listens(el, gtype, what, refuse)
    if gtype in PORT_TYPES:
        port = el.get("port")
        if port is not None and parsecheck.c_int(port, 10) is None:
            raise refuse(f"cannot parse {gtype} port {port}", "internal")
    if gtype == "vnc":
        parsecheck.int_attr(el, "websocket", what)
        parsecheck._word(el, "sharePolicy", VNC_SHARE_POLICIES, what)
        parsecheck._word(el, "powerControl", _YES_NO, what)
        audios.check_reference(el.find("audio"), what)
        _check_auth(el, gtype, refuse)
    elif gtype == "spice":
        parsecheck.int_attr(el, "port", what)
        parsecheck.int_attr(el, "tlsPort", what)
        parsecheck._word(el, "autoport", _YES_NO, what)
        parsecheck._word(el, "defaultMode", SPICE_MODES, what)
        _check_auth(el, gtype, refuse)
        for channel in el.iterfind("channel"):
            parsecheck._word(channel, "name", SPICE_CHANNELS, what, required=True)
            parsecheck._word(channel, "mode", SPICE_MODES, what, required=True)
        for child, attr, words in SPICE_CHILD_WORDS:
            kid = el.find(child)
            if kid is not None:
                parsecheck._word(kid, attr, words, what, required=True)
    elif gtype in ("sdl", "desktop"):
        parsecheck._word(el, "fullscreen", _YES_NO, what)
        gl = el.find("gl")
        if gtype == "sdl" and gl is not None:
            parsecheck._word(gl, "enable", _YES_NO, what, required=True)
    elif gtype == "dbus":
        parsecheck._word(el, "p2p", _YES_NO, what)
        gl = el.find("gl")
        if gl is not None:
            parsecheck._word(gl, "enable", _YES_NO, what, required=True)
        audios.check_reference(el.find("audio"), what)


def _check_listens(el: etree._Element, gtype: str, what: parsecheck.What, refuse) -> None:
    """Each ``<listen>`` in turn: its type, whether the graphics type takes it, the first one
    against the element's own ``listen``/``socket``, the attributes the type takes (an
    empty one counts as left out)."""
    for i, listen in enumerate(c for c in el if c.tag == "listen"):
        parsecheck._word(listen, "type", LISTEN_TYPES, what, required=True)
        ltype = listen.get("type")
        if ltype in ("socket", "none") and gtype not in SOCKET_TYPES:
            raise refuse(f"listen type '{ltype}' is not available for graphics type '{gtype}'",
                         "unsupported")
        if i == 0:
            for compat, attr, own in (("listen", "address", "address"), ("socket", "socket", "socket")):
                mine, theirs = listen.get(attr), el.get(compat)
                if ltype == own and mine is not None and theirs is not None and mine != theirs:
                    raise refuse(f"graphics '{compat}' attribute '{theirs}' must match '{attr}' "
                                 f"attribute of first listen element (found '{mine}')", "unsupported")
        for attr in ("network", "socket"):
            if listen.get(attr) and ltype != attr:
                raise refuse(f"'{attr}' attribute is valid only for listen type '{attr}'",
                             line=listen.sourceline)


def _check_auth(el: etree._Element, gtype: str, refuse) -> None:
    """VNC's and SPICE's password attributes (read only with a ``passwd``)."""
    if el.get("passwd") is None:
        return
    valid_to = el.get("passwdValidTo")
    if valid_to is not None:
        m = _VALID_TO.fullmatch(valid_to)
        if m is None or any(parsecheck.c_int(n, 10) is None for n in m.groups()):
            raise refuse(f"cannot parse password validity time '{valid_to}', expect "
                         f"YYYY-MM-DDTHH:MM:SS", "internal")
    connected = el.get("connected")
    if connected is None:
        return
    if connected not in SPICE_CONNECTED:
        raise refuse(f"unknown connected value {connected}", "unsupported")
    if gtype == "vnc" and connected != "keep":
        raise refuse("VNC supports connected='keep' only", "unsupported")
