"""What libvirt 9.0 refuses of a character device's host side (``<serial>``, ``<console>``,
``<channel>``, ``<parallel>``, and the chardevs of smartcards, redirdevs and RNGs), in
its order.

* the parser (:func:`check_parse`): how many ``<source>``, ``<log>`` and ``<protocol>``
  elements, a source's mode, a guestfwd channel's address;
* post-parse: ISA serial ports (:func:`post_parse_serials`: at most 4, each port once),
  then, after every device's, the first console alone may be a serial one
  (:func:`post_parse_consoles`);
* validation, each device in its kind's turn: libvirt's generic checks first
  (:func:`check_generic`: the path, host, service or channel each type needs,
  reconnecting only when connecting), then the device's address's, then QEMU's checks
  of the source (:func:`check_qemu`: SPICE chardevs need SPICE graphics, a reconnect
  needs a timeout) before QEMU's of the target.

Each order was checked against the libvirt 9.0 daemon with pairs of mistakes.
``xmlio`` reads what the checks need of each device into a :class:`ChrFacts`.
"""

from __future__ import annotations

import re

from typing import TYPE_CHECKING

from lxml import etree

from . import devices, machines, parsecheck, sources
from .domain import Device
from .errors import PlanError
from .records import Value

if TYPE_CHECKING:
    from .defaults import Guest


class ChrFacts(Value):
    """What validation needs of a character device beyond ``Device``'s fields."""

    #: the host side's type (``type`` of the element; an RNG's ``<backend type>``)
    type: str | None = None
    #: the ``<source>`` elements' attributes, in order
    sources: tuple[dict[str, str], ...] = ()
    #: the attributes of the first source's ``<reconnect>``, None without one
    reconnect: dict[str, str] | None = None
    #: the ``<protocol>``'s attributes, None without one
    protocol: dict[str, str] | None = None

    def __init__(self, type=None, sources=(), reconnect=None, protocol=None) -> None:
        self.type = type
        self.sources = sources
        self.reconnect = reconnect
        self.protocol = protocol


def _facts(holder: etree._Element, ctype: str | None) -> ChrFacts:
    sources = [s for s in holder if s.tag == "source"]
    rec = sources[0].find("reconnect") if sources else None
    protocol = holder.find("protocol")
    return ChrFacts(ctype, tuple(dict(s.attrib) for s in sources),
                    dict(rec.attrib) if rec is not None else None,
                    dict(protocol.attrib) if protocol is not None else None)


def read(el: etree._Element, kids: dict) -> ChrFacts:
    if el.tag == "rng":
        backend = kids.get("backend")
        if backend is None or backend.get("model") != "egd":
            return ChrFacts()
        return _facts(backend, backend.get("type"))
    return _facts(el, el.get("type"))


#: SPICE chardevs, which need SPICE graphics
SPICE_TYPES = frozenset({"spicevmc", "spiceport"})
#: chardev types whose source is a path
PATH_TYPES = frozenset({"dev", "file", "pipe"})
#: the characters of a spiceport channel name
CHANNEL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
SOURCE_MODES = frozenset({"bind", "connect"})
#: chardev types whose source has a mode
MODE_TYPES = frozenset({"tcp", "udp", "unix"})
#: chardev types whose source may reconnect
RECONNECT_TYPES = frozenset({"tcp", "unix"})
#: where the QEMU driver (qemu:///system) puts the sockets of virtio channels it names
CHANNEL_TARGET_DIR = "/var/lib/libvirt/qemu/channel/target"
#: the most ISA serial ports
ISA_SERIAL_PORTS = 4
CHR_TAGS = frozenset({"serial", "console", "channel", "parallel"})


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of a character device's host side."""
    def refuse(message: str, line: int | None = None, kind: str = "xml") -> PlanError:
        return PlanError(message, parsecheck._what(what), line or el.sourceline, kind=kind)
    ctype = el.get("type") or "pty"
    target = kids.get("target")
    if el.tag == "channel" and target is not None and target.get("type") == "guestfwd":
        address = target.get("address")
        if not address:
            raise refuse("guestfwd channel does not define a target address", target.sourceline)
        import socket  # (only for a guestfwd channel)

        try:  # (a numeric address, as libvirt parses it: '10.0.2' is 10.0.0.2)
            family = socket.getaddrinfo(address, None, flags=socket.AI_NUMERICHOST)[0][0]
        except (socket.gaierror, UnicodeError) as err:
            reason = err.strerror if isinstance(err, socket.gaierror) else "Name or service not known"
            raise refuse(f"Cannot parse socket address '{address}': {reason}", target.sourceline) from None
        if family != socket.AF_INET:
            raise refuse("guestfwd channel only supports IPv4 addresses", target.sourceline,
                         kind="unsupported")
        port = target.get("port")
        if port is None:
            raise refuse("Missing required attribute 'port' in element 'target'", target.sourceline)
        parsecheck._uint_attrs(target, ("port",), 10, what)
    check_host_side(el, ctype, what, seclabels=True)
    if ctype == "spicevmc" and (el.tag != "channel" or target is None or
                                target.get("type") not in ("virtio", None)):
        raise refuse("spicevmc device type only supports virtio", kind="unsupported")


#: a TCP chardev's protocols
TCP_PROTOCOLS = frozenset({"raw", "telnet", "telnets", "tls"})
#: the words of a qemu-vdagent source's children: (child, attribute, words), each required
VDAGENT_WORDS = (("clipboard", "copypaste", frozenset({"yes", "no"})),
                 ("mouse", "mode", frozenset({"server", "client"})))


def check_host_side(el: etree._Element, ctype: str, what: parsecheck.What,
                    seclabels: bool = False) -> None:
    """libvirt's parse of a chardev's host side (``el``: a serial, channel...; a smartcard's,
    a redirector's, an RNG's or a TPM's back end), in its order: how many ``<source>``
    (two only for UDP), the source of the type (a file's append switch; a socket's mode,
    TLS and reconnect; qemu-vdagent's clipboard and mouse), its seclabels (``seclabels``:
    only a port's), then one ``<log>`` (its append switch) and one ``<protocol>`` (a TCP
    one's type)."""
    def refuse(message: str, at: etree._Element, kind: str = "xml") -> PlanError:
        return PlanError(message, parsecheck._what(what), at.sourceline, kind=kind)
    found = [c for c in el if c.tag == "source"]
    if len(found) > 1 and ctype != "udp":
        raise refuse("only one source element is allowed for character device", el)
    if len(found) > 2:
        raise refuse("only two source elements are allowed for character device", el)
    if found:
        if ctype == "file":
            parsecheck._word(found[0], "append", parsecheck.ON_OFF, what)
        elif ctype in MODE_TYPES:
            for src in found:
                check_source_parse(src, ctype, what)
        elif ctype == "qemu-vdagent":
            for child, attr, words in VDAGENT_WORDS:
                kid = found[0].find(child)
                if kid is not None:
                    parsecheck._word(kid, attr, words, what, required=True)
        if seclabels:
            sources.check_seclabels(found[0], what)
    logs = [c for c in el if c.tag == "log"]
    if len(logs) == 1:
        parsecheck._word(logs[0], "append", parsecheck.ON_OFF, what)
    elif len(logs) > 1:
        raise refuse("only one log element is allowed for character device", el)
    protocols = [c for c in el if c.tag == "protocol"]
    if len(protocols) == 1 and ctype == "tcp":
        ptype = protocols[0].get("type")
        if ptype is not None and ptype not in TCP_PROTOCOLS:
            raise refuse(f"Unknown protocol '{ptype}'", protocols[0], "unsupported")
    elif len(protocols) > 1:
        raise refuse("only one protocol element is allowed for character device", el)


def check_source_parse(src: etree._Element, ctype: str, what: parsecheck.What) -> None:
    """The parser's checks of one ``<source>`` of a TCP, UDP or UNIX chardev: its mode,
    a TCP one's TLS switch, and a ``<reconnect>`` (enabled: with its timeout)."""
    parsecheck._word(src, "mode", SOURCE_MODES, what)
    if ctype == "tcp":
        parsecheck._word(src, "tls", parsecheck.YES_NO, what)
    rec = src.find("reconnect") if ctype in RECONNECT_TYPES else None
    if rec is not None:
        check_reconnect_parse(rec, what)


def check_reconnect_parse(rec: etree._Element, what: parsecheck.What) -> None:
    """A ``<reconnect>`` (of a chardev's source, a vhost-user disk's): a switch, and when
    enabled a timeout (a number)."""
    parsecheck._word(rec, "enabled", parsecheck.YES_NO, what)
    if rec.get("enabled") == "yes":
        timeout = rec.get("timeout")
        if timeout is None:
            raise PlanError("Missing required attribute 'timeout' in element 'reconnect'",
                            parsecheck._what(what), rec.sourceline)
        if parsecheck.c_uint(timeout, 10) is None:
            raise parsecheck._invalid(rec, "timeout", timeout, what, "non-negative integer value")


def check_device_source_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of the chardev of a smartcard or a USB redirector (and a
    host-certificates smartcard's certificates and database)."""
    ctype = el.get("type")
    if el.tag == "smartcard" and el.get("mode") == "host-certificates":
        if len(el.findall("certificate")) != 3:
            raise PlanError("host-certificates mode needs exactly three certificates", what, el.sourceline)
        database = el.find("database")
        path = database.text if database is not None else None
        if database is not None and not path:  # (libvirt fails there without saying why)
            raise PlanError("An error occurred, but the cause is unknown", what, database.sourceline,
                            kind="internal")
        if database is not None and not path.startswith("/"):
            raise PlanError(f"expecting absolute path: {path}", what, database.sourceline)
    if el.tag == "smartcard" and el.get("mode") == "passthrough":
        if ctype is None:
            raise PlanError("passthrough mode requires a character device type attribute", what,
                            el.sourceline)
        if ctype not in parsecheck.CHARDEV_TYPES:
            raise PlanError(f"unknown type presented to host for character device: {ctype}", what,
                            el.sourceline, kind="unsupported")
    if ctype is not None and (el.tag != "smartcard" or el.get("mode") == "passthrough"):
        check_host_side(el, ctype, what)


def _listens(dev: Device, f: ChrFacts, src: dict[str, str]) -> bool:
    """Does the chardev listen (bind)?  A UNIX one of a serial, console, channel or
    parallel port without a path does too: libvirt's post-parse of QEMU guests gives it
    one of its own (after dropping the path of a virtio channel that is one it made)."""
    if src.get("mode", "connect") != "connect":
        return True
    if f.type != "unix" or dev.tag not in CHR_TAGS:
        return False
    path = src.get("path")
    if path and dev.tag == "channel" and dev.target.get("type") == "virtio":
        name = dev.target.get("name") or "(null)"
        if re.search(f"^{re.escape(CHANNEL_TARGET_DIR)}/([^/]+\\.)|(domain-[^/]+/){re.escape(name)}$",
                     path):
            path = None
    return not path


def post_parse_consoles(guest: Guest) -> None:
    """libvirt's post-parse of the consoles (the domain's, after every device's own)."""
    consoles = guest.devices("console")
    # every console without a target type became a serial one in its own post-parse
    for console in consoles[1:]:
        if console.target.get("type") in devices.SERIAL_CONSOLE_TARGETS:
            raise PlanError("Only the first console can be a serial port", console.describe(),
                            kind="unsupported")
    if consoles and consoles[0].target.get("type") in devices.SERIAL_CONSOLE_TARGETS and \
            not guest.devices("serial"):
        _console_to_serial(guest, consoles[0])


def _console_to_serial(guest: Guest, console: Device) -> None:
    """A first console of type serial without any serial port IS the first serial port:
    libvirt moves its definition (host side, address) to a new serial port 0 of no target
    type (the machine's own, decided then) and leaves a bare console standing for that
    port.  The serial keeps the console's element: the address libvirt gives the port is
    the one it writes into the console."""
    ser = Device(tag="serial", type=console.type, source=dict(console.source),
                 address=console.address, target={"port": "0"}, position=console.position,
                 line=console.line, ref=console.ref, facts=console.facts)
    devs = guest.domain.devices
    devs.insert(devs.index(console), ser)
    console.address = None
    console.facts = ChrFacts("null")


def stands_for_serial(guest: Guest, console: Device) -> bool:
    """Is this the first console, of type serial, beside serial ports?  libvirt then gives it
    the first port's host side (a copy, or a stub in its place), so its own is never checked."""
    consoles = guest.devices("console")
    return bool(consoles) and console is consoles[0] and \
        console.target.get("type") in devices.SERIAL_CONSOLE_TARGETS \
        and bool(guest.devices("serial"))


def replaced_by_stub(guest: Guest, console: Device) -> bool:
    """Is this a first console standing for the first serial port whose host side differs
    from the port's?  libvirt then puts a bare console in its place: nothing of its own,
    its address included, is validated."""
    return stands_for_serial(guest, console) and not _same_chardev(console, guest.devices("serial")[0])


def write_serial_into_console(guest: Guest) -> None:
    """A first console standing for the first serial port is written with that port's
    address, or none (libvirt does not keep what the console itself had: it is validated,
    then forgotten).  When that address is a PCI one (a pci-serial port) and the console's
    host side differs from the port's, the console is written as the port, its host side
    too, as libvirt writes it: it is then a PCI device of the layout.  Elsewhere the
    console's own host side is left as the user wrote it."""
    consoles, serials = guest.devices("console"), guest.devices("serial")
    if consoles and serials and consoles[0].target.get("type") in devices.SERIAL_CONSOLE_TARGETS:
        console, serial = consoles[0], serials[0]
        console.set("address", serial.address)
        if serial.pci_address is not None and serial.ref is not console.ref and \
                isinstance(serial.facts, ChrFacts) and not _same_chardev(console, serial):
            console.set("type", serial.type)
            console.facts = serial.facts
            console.changed.add("host")


#: serial target types for which libvirt adds no console standing for the first serial port
_NO_CONSOLE_STUB = frozenset({"pci-serial", "usb-serial", "isa-debug"})


def _same_chardev(a: Device, b: Device) -> bool:
    """Do two character devices have the same host side?  (Their sources as written, with a
    TCP one's protocol and a reconnecting one's timeout, which libvirt compares too.)"""
    fa, fb = a.facts, b.facts
    return isinstance(fa, ChrFacts) and isinstance(fb, ChrFacts) and \
        (fa.type, fa.sources, fa.reconnect) == (fb.type, fb.sources, fb.reconnect) and \
        (fa.type != "tcp" or _protocol(fa) == _protocol(fb))


def _protocol(f: ChrFacts) -> str:
    return (f.protocol or {}).get("type") or "raw"


def alias_unchecked(guest: Guest) -> list[Device]:
    """The serial and console devices whose alias libvirt's uniqueness check skips (its
    console back-compat): when the first console is (or a stub added for) the first serial
    port, that port; and a first console of type serial that libvirt replaced by a stub (it
    became the serial port, or its host side differs from the port's): its alias is gone."""
    serials, consoles = guest.devices("serial"), guest.devices("console")
    if not serials:
        return []
    first = serials[0]
    c0 = consoles[0] if consoles else None
    c0_serial = c0 is not None and c0.target.get("type") in devices.SERIAL_CONSOLE_TARGETS
    if not c0_serial and first.target.get("type") in _NO_CONSOLE_STUB:
        return []
    skipped = [first]  # (another serial port is never equal to it: their ports differ)
    if c0 is not None and c0_serial and (first.ref is c0.ref or not _same_chardev(c0, first)):
        skipped.append(c0)
    return skipped


def post_parse_serials(guest: Guest) -> None:
    """The QEMU driver's post-parse of the serial ports (in the serials' turn)."""
    ports: set[str] = set()
    isa = 0
    for ser in guest.devices("serial"):
        if ser.origin == "implicit":
            continue
        if ser.target.get("type") == "isa-debug" and guest.domain.arch not in machines.X86:
            raise PlanError("isa-debug serial type only valid on x86 architecture", ser.describe(),
                            kind="unsupported")
        isa += ser.target.get("type") == "isa-serial"
        if isa > ISA_SERIAL_PORTS:
            raise PlanError(f"Maximum supported number of ISA serial ports is '{ISA_SERIAL_PORTS}'",
                            ser.describe(), kind="internal")
        port = ser.target.get("port")
        # (only ports written as ISA ports count: two pci-serial, system-serial or untyped
        # serials with one port number are accepted)
        if port is not None and ser.target.get("type") == "isa-serial":
            n = str(parsecheck.c_int(port, 10))
            if n in ports:
                raise PlanError(f"target port '{n}' already allocated", ser.describe(), kind="internal")
            ports.add(n)


def check_qemu(guest: Guest, dev: Device) -> None:
    """QEMU's checks of a device's chardev (after libvirt's own and the address's, before
    QEMU's of the rest of the device)."""
    f = dev.facts if isinstance(dev.facts, ChrFacts) else ChrFacts(dev.type)
    if f.type in SPICE_TYPES and not guest.domain.spice:
        raise PlanError(f"chardev '{f.type}' not supported without spice graphics", dev.describe(),
                        kind="unsupported")
    rec = f.reconnect or {}
    if f.type in ("tcp", "unix") and rec.get("enabled") == "yes" and \
            parsecheck.c_uint(rec.get("timeout") or "0", 10) == 0:
        raise PlanError("chardev reconnect source timeout cannot be '0'", dev.describe())


def check_generic(guest: Guest, dev: Device) -> None:
    """libvirt's own checks of a device's chardev (before the device's address's and QEMU's)."""
    f = dev.facts if isinstance(dev.facts, ChrFacts) else ChrFacts(dev.type)
    src = f.sources[0] if f.sources else {}
    what = dev.describe()

    def missing(name: str, kind: str = "internal") -> PlanError:
        return PlanError(f"Missing source {name} attribute for char device", what, kind=kind)
    # (libvirt tests that an attribute is there: an empty one, path='', passes)
    if f.type in PATH_TYPES and src.get("path") is None:
        raise missing("path")
    if f.type == "nmdm" and (src.get("master") is None or src.get("slave") is None):
        raise PlanError("Should define both master and slave path attributes for nmdm device", what,
                        kind="internal")
    if f.type == "unix" and src.get("path") is None and \
            not (dev.tag == "channel" and dev.target.get("type") == "virtio"):
        raise missing("path")
    if f.type == "tcp":
        if src.get("host") is None:
            raise missing("host")
        if src.get("service") is None:
            raise missing("service")
    if f.type == "udp" and not any(s.get("service") is not None for s in f.sources
                                   if s.get("mode", "connect") == "connect"):
        raise missing("service")
    if f.type in ("spiceport", "dbus"):
        channel = src.get("channel")
        if channel is None:
            if not (f.type == "dbus" and dev.tag == "redirdev"):  # (a D-Bus redirector needs none)
                raise missing("channel", "unsupported")
        elif any(c not in CHANNEL_NAME_CHARS for c in channel):
            raise PlanError("Invalid character in source channel for char device", what)
    # (a <reconnect enabled='no'> counts too: libvirt tests that the switch is set)
    if f.type in RECONNECT_TYPES and "enabled" in (f.reconnect or {}) and _listens(dev, f, src):
        raise PlanError("chardev reconnect is possible only for connect mode", what, kind="internal")
    if dev.tag in CHR_TAGS:
        sources.check_overrides(dev)
