"""What libvirt 9.0 refuses of an ``<interface>``, and when.

The parser reads a NIC's source, backend, guest IPs, driver, MTU, link state, teaming,
VLAN, ACPI index and tuning (:func:`check_parse`, called by ``parsecheck`` with the
device's other parser checks); validation (``validate.validate_late``, the interfaces
after the disks) makes the QEMU driver's checks first (:func:`check_qemu`: the guest
IPs QEMU can set, virtio-only options, queue sizes, MTU, teaming, coalescing) and
libvirt's generic ones after them (:func:`check_generic`: host-side IPs, unmanaged
taps, teaming attributes, isolated ports).  Each check and its place was tried against
the libvirt 9.0 daemon.

``xmlio`` reads what validation needs of each interface into a :class:`NetFacts`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from lxml import etree

from . import devices, hostdevs, parsecheck, sources
from .errors import PlanError
from .records import Value

if TYPE_CHECKING:
    from .domain import Device

#: the characters a NIC model name may have
NIC_MODEL = re.compile(r"[A-Za-z0-9_-]+")
#: TABLE: the interface types that need a ``<source>``, and the attributes it must have
#: (in the parser's order)
SOURCE_ATTRS: dict[str, tuple[str, ...]] = {
    "bridge": ("bridge",), "network": ("network",), "direct": ("dev",), "internal": ("name",),
    "vdpa": ("dev",), "vhostuser": ("type", "path", "mode"), "mcast": ("address", "port"),
    "udp": ("address", "port"), "client": ("address", "port"), "server": ("port",),
    "vds": ("switchid", "portid", "portgroupid", "connectionid"),
}
#: TABLE: words of a ``<source>`` attribute, per interface type
SOURCE_WORDS = {("direct", "mode"): frozenset({"vepa", "private", "bridge", "passthrough"}),
                ("vhostuser", "mode"): frozenset({"server", "client"})}
#: interface types that may have a <virtualport>
VIRTUALPORT_TYPES = frozenset({"network", "bridge", "direct", "hostdev"})
#: the kinds of <virtualport>
VIRTUALPORT_KINDS = frozenset({"802.1Qbg", "802.1Qbh", "openvswitch", "midonet"})
#: a <virtualport>'s numeric <parameters>: (attribute, largest, how libvirt links the two
#: words of its out-of-range refusal)
VIRTUALPORT_NUMBERS = (("managerid", 0xFF, "of"), ("typeid", 0xFFFFFF, "for"), ("typeidversion", 0xFF, "of"))
#: per virtualport kind: the parameters it needs (in the order they are asked for; an
#: instanceid or interfaceid libvirt makes up is not asked for), and those it refuses
VIRTUALPORT_NEEDS = {"802.1Qbg": ("managerid", "typeid", "typeidversion"), "802.1Qbh": ("profileid",),
                     "openvswitch": (), "midonet": ("interfaceid",)}
VIRTUALPORT_EXTRAS = {"802.1Qbg": ("profileid", "interfaceid"),
                      "802.1Qbh": ("managerid", "typeid", "typeidversion", "instanceid", "interfaceid"),
                      "openvswitch": ("managerid", "typeid", "typeidversion", "instanceid")}
#: TABLE: numeric <source> attributes, per interface type: (test, what libvirt expected)
SOURCE_NUMBERS: dict[tuple[str, str], tuple[Callable[[str], bool], str]] = {
    **{(t, "port"): (lambda v: parsecheck.c_int(v) is not None, "integer value")
       for t in ("mcast", "udp", "client", "server")},
    ("vds", "switchid"): (lambda v: sources.uuid_ok(v), "UUID"),
    ("vds", "portid"): (lambda v: parsecheck.c_llong(v) is not None, "long long integer value"),
    ("vds", "connectionid"): (lambda v: parsecheck.c_llong(v) is not None, "long long integer value"),
}
#: a <mac type>; a VLAN <tag nativeMode>
MAC_TYPES = frozenset({"generated", "static"})
NATIVE_VLAN_MODES = frozenset({"tagged", "untagged"})
#: the interface types QEMU can set an MTU on (tap devices and vhost-user)
MTU_TYPES = frozenset({"network", "bridge", "ethernet", "vhostuser"})
#: the interface types QEMU can set coalescing on
COALESCE_TYPES = frozenset({"network", "bridge"})
#: the interface types a ``<port isolated='yes'/>`` is allowed on
ISOLATED_PORT_TYPES = frozenset({"network", "bridge"})
#: the numbers of a <bandwidth>'s <inbound> and <outbound>, in the parser's order
BANDWIDTH_ATTRS = ("average", "peak", "burst", "floor")
LINK_STATES = frozenset({"up", "down"})
TEAMING_TYPES = frozenset({"transient", "persistent"})
ON_OFF = frozenset({"on", "off"})
#: the <driver name> of a type='hostdev' interface: the host device's backend
HOSTDEV_DRIVER_NAMES = frozenset({"kvm", "vfio", "xen"})
#: TABLE: the <driver> attributes of a virtio NIC the parser reads, in its order:
#: (attribute, words; None: a non-negative decimal number)
VIRTIO_DRIVER_ATTRS: tuple[tuple[str, frozenset[str] | None], ...] = (
    ("name", frozenset({"qemu", "vhost"})),
    ("txmode", frozenset({"iothread", "timer"})),
    ("ioeventfd", ON_OFF),
    ("event_idx", ON_OFF),
    ("queues", None),
    ("rx_queue_size", None),
    ("tx_queue_size", None),
    ("rss", ON_OFF),
    ("rss_hash_report", ON_OFF),
)
#: the offload switches of a virtio NIC's <driver><host> and <driver><guest>
HOST_OFFLOADS = ("csum", "gso", "tso4", "tso6", "ecn", "ufo", "mrg_rxbuf")
GUEST_OFFLOADS = ("csum", "tso4", "tso6", "ecn", "ufo")
#: the virtio-only <driver> options and how libvirt names each in its refusal
VIRTIO_OPTIONS = (("iommu", "iommu driver option"), ("ats", "ats driver option"),
                  ("packed", "packed driver option"), ("page_per_vq", "page_per_vq option"))
#: QEMU's range of a guest IPv4 prefix on a user (slirp) interface
USER_IPV4_PREFIXES = range(4, 28)
USER_IPV6_PREFIX = 64


class GuestIP(Value):
    """One ``<ip>`` of an interface (the guest's side)."""

    version: int
    prefix: int = 0
    peer: bool = False

    def __init__(self, version, prefix=0, peer=False) -> None:
        self.version = version
        self.prefix = prefix
        self.peer = peer


class NetFacts(Value):
    """What validation needs of an ``<interface>`` beyond ``Device``'s fields."""

    #: ``<driver>``'s attributes
    driver: dict[str, str]
    #: tags of the interface's child elements
    children: frozenset[str] = frozenset()
    #: the guest-side addresses, and how many guest-side routes
    ips: tuple[GuestIP, ...] = ()
    routes: int = 0
    #: the source has host-side addresses or routes
    host_ips: bool = False
    #: ``<teaming>``'s attributes, None without one
    teaming: dict[str, str] | None = None
    #: an MTU other than 0 is set; coalescing is set
    mtu: bool = False
    coalesce: bool = False
    #: ``<virtualport type>``; ``<port isolated='yes'/>``; ``<target managed>``
    virtualport: str | None = None
    isolated: bool = False
    managed: str | None = None
    #: ``<source mode>`` (vhost-user: client or server) and it has a ``<reconnect enabled='yes'>``
    mode: str | None = None
    reconnect: bool = False
    #: ``<source>``'s attributes (the network, bridge or host interface); ``<target dev>``
    source: dict[str, str]
    target_dev: str | None = None

    def __init__(self, driver=..., children=frozenset(), ips=(), routes=0, host_ips=False, teaming=None, mtu=False, coalesce=False, virtualport=None, isolated=False, managed=None, mode=None, reconnect=False, source=..., target_dev=None) -> None:
        self.driver = {} if driver is ... else driver
        self.children = children
        self.ips = ips
        self.routes = routes
        self.host_ips = host_ips
        self.teaming = teaming
        self.mtu = mtu
        self.coalesce = coalesce
        self.virtualport = virtualport
        self.isolated = isolated
        self.managed = managed
        self.mode = mode
        self.reconnect = reconnect
        self.source = {} if source is ... else source
        self.target_dev = target_dev


#: the largest 802.1Q VLAN id
VLAN_TAG_MAX = 4095

def _uint(text: str | None, top: int = 0xFFFFFFFF) -> int | None:
    """A decimal number as strtoul reads it (``parsecheck.c_uint``), None when absent or not one."""
    return None if text is None else parsecheck.c_uint(text, 10, top)


def _ip(text: str) -> int | None:
    """The IP version of an address libvirt parses (as it does: a numeric getaddrinfo,
    which takes '10.0.0' too), or None."""
    import socket  # (only for a NIC with addresses: it costs the CLI's start-up otherwise)

    try:
        family = socket.getaddrinfo(text, None, flags=socket.AI_NUMERICHOST)[0][0]
    except (OSError, UnicodeError, ValueError):
        return None
    return 6 if family == socket.AF_INET6 else 4


def _packed(text: str, version: int | None = None) -> tuple[int, bytes] | None:
    """An address as libvirt's virSocketAddrParse reads it (a numeric getaddrinfo, of one
    family or any): its IP version and bytes, or None."""
    import socket

    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(version or 0, socket.AF_UNSPEC)
    try:
        info = socket.getaddrinfo(text, None, family, flags=socket.AI_NUMERICHOST)[0]
    except (OSError, UnicodeError, ValueError):
        return None
    fam, host = info[0], info[4][0].split("%")[0]
    return (6, socket.inet_pton(fam, host)) if fam == socket.AF_INET6 else (4, socket.inet_pton(fam, host))


def _masked(packed: bytes, mask: bytes) -> bytes:
    return bytes(a & m for a, m in zip(packed, mask))


def _prefix_mask(prefix: int, size: int) -> bytes:
    bits = (1 << size * 8) - (1 << (size * 8 - prefix)) if prefix else 0
    return bits.to_bytes(size, "big")


#: TABLE: what a <route> family takes: (its IP version, its largest prefix)
ROUTE_FAMILIES = {None: (4, 32), "ipv4": (4, 32), "ipv6": (6, 128)}


def check_ip_info(node: etree._Element, source: str, what: Callable[[], str]) -> None:
    """libvirt's parser checks of the ``<ip>``s, then the ``<route>``s, of an interface (the
    guest's side: ``source`` 'guest interface'; the host's, in its <source>: 'interface host
    IP') or of a capabilities-mode network host device ('Domain hostdev device')."""
    for ip in node.iterfind("ip"):
        address = ip.get("address")
        if address is None:
            raise PlanError("Missing required address in <ip>", what, ip.sourceline)
        version = {"ipv4": 4, "ipv6": 6}.get(ip.get("family") or "")
        if version is None:
            parsed = _packed(address)
            version = parsed[0] if parsed else None
        if version is None or _packed(address, version) is None:
            raise PlanError(f"Invalid address '{address}' in <ip>", what, ip.sourceline)
        prefix = ip.get("prefix")
        if prefix is not None:
            n = _uint(prefix)
            if n is None or n > (128 if version == 6 else 32):
                raise PlanError(f"Invalid prefix value '{prefix}' in <ip>", what, ip.sourceline)
        peer = ip.get("peer")
        if peer is not None and _packed(peer, version) is None:
            raise PlanError(f"Invalid peer '{peer}' in <ip>", what, ip.sourceline)
    for route in node.iterfind("route"):
        _check_route(route, source, what)


def _check_route(route: etree._Element, source: str, what: Callable[[], str]) -> None:
    """One ``<route>`` as libvirt's route parser reads it, in its order: prefix and metric,
    address and gateway given and parsed, the family's rules, a network address."""
    def refuse(message: str, kind: str = "xml") -> PlanError:
        return PlanError(f"{source}: {message}", what, route.sourceline, kind=kind)
    prefix_text, metric = route.get("prefix"), route.get("metric")
    prefix = 0
    if prefix_text is not None:
        prefix = _uint(prefix_text)
        if prefix is None:
            raise parsecheck._invalid(route, "prefix", prefix_text, what, "non-negative integer value")
    if metric is not None:
        n = _uint(metric)
        if n is None:
            raise parsecheck._invalid(route, "metric", metric, what, "non-negative integer value")
        if n == 0:
            raise PlanError("Invalid value for attribute 'metric' in element 'route': Zero is not "
                            "permitted", what, route.sourceline)
    family, address, netmask, gateway = (route.get(a) for a in ("family", "address", "netmask", "gateway"))
    if address is None:
        raise refuse("Missing required address attribute in route definition")
    if gateway is None:
        raise refuse("Missing required gateway attribute in route definition")
    addr = _packed(address)
    if addr is None:
        raise refuse(f"Bad network address '{address}' in route definition")
    gw = _packed(gateway)
    if gw is None:
        raise refuse(f"Bad gateway address '{gateway}' in route definition")
    if family not in ROUTE_FAMILIES:
        raise refuse(f"Unrecognized family '{family}' in route definition")
    version, top = ROUTE_FAMILIES[family]
    said = "No family specified" if family is None else f"{family if version == 6 else 'IPv4'} family specified"
    mask = None
    if version == 4:
        if addr[0] != 4:
            raise refuse(f"{said} for non-IPv4 address '{address}' in route definition")
        if gw[0] != 4:  # (libvirt names the address here, not the gateway)
            raise refuse(f"{said} for non-IPv4 gateway '{address}' in route definition")
        if netmask is not None:
            nm = _packed(netmask)
            if nm is None:
                raise refuse(f"Bad netmask address '{netmask}' in route definition")
            if nm[0] != 4:
                raise refuse(f"Invalid netmask '{netmask}' for address '{address}' (both must be IPv4)")
            if prefix_text is not None:
                raise refuse("Route definition cannot have both a prefix and a netmask")
            mask = nm[1]
    else:
        if addr[0] != 6:
            raise refuse(f"ipv6 family specified for non-IPv6 address '{address}' in route definition")
        if netmask is not None:
            raise refuse(f"Specifying netmask invalid for IPv6 address '{address}' in route definition")
        if gw[0] != 6:
            raise refuse(f"ipv6 specified for non-IPv6 gateway address '{gateway}' in route definition")
    if prefix > top:
        raise refuse(f"Invalid prefix {prefix} specified in route definition, must be 0 - {top}")
    if mask is None:
        mask = _prefix_mask(prefix, len(addr[1]))
    if _masked(addr[1], mask) != addr[1]:
        raise refuse(f"Address '{address}' in route definition is not a network address")


def parse_mac(text: str) -> tuple[int, ...] | None:
    """The six octets of a MAC address as libvirt's virMacAddrParse reads it, or None: one or
    two hex digits each, colons between, and after the last anything starting with a blank or
    control character (or a byte above 0x7f: a signed char)."""
    octets: list[int] = []
    i = 0
    while len(octets) < 6:
        j = i
        while j < len(text) and j - i < 3 and text[j] in _HEX:
            j += 1
        if not 1 <= j - i <= 2:
            return None
        octets.append(int(text[i:j], 16))
        if len(octets) == 6:
            return tuple(octets) if j == len(text) or ord(text[j]) <= 0x20 or ord(text[j]) > 0x7F \
                else None
        if j >= len(text) or text[j] != ":":
            return None
        i = j + 1
    return None


_HEX = frozenset("0123456789abcdefABCDEF")


def check_source(el: etree._Element, what: Callable[[], str], kids: dict) -> None:
    """libvirt's parser checks of an interface's first part, in its order: trustGuestRxFilters,
    model name, source (per type), virtualport, target, bandwidth, VLAN and MAC address (made
    before its ROM, boot order and address are read)."""
    ntype = el.get("type")
    parsecheck._word(el, "trustGuestRxFilters", parsecheck.YES_NO, what)
    model = kids.get("model")
    mtype = model.get("type") if model is not None else None
    if mtype and NIC_MODEL.fullmatch(mtype) is None:
        raise PlanError("Model name contains invalid characters", what, model.sourceline)
    src = kids.get("source")
    if src is not None and len(src):  # (a childless source, the usual one, has none)
        check_ip_info(src, "interface host IP", what)
    required = SOURCE_ATTRS.get(ntype or "")
    if required is not None and src is None:
        raise PlanError(f"interface type='{ntype}' requires a 'source' element", what, el.sourceline)
    for attr in required or ():
        value = src.get(attr)
        if value is None:
            raise PlanError(f"Missing required attribute '{attr}' in element 'source'", what,
                            src.sourceline)
        words = SOURCE_WORDS.get((ntype or "", attr))
        if words is not None and value not in words:
            raise parsecheck._invalid(src, attr, value, what)
        if ntype == "vhostuser" and attr == "type" and value != "unix":
            raise PlanError(f"Type='{value}' unsupported for <interface type='vhostuser'>",
                            what, src.sourceline, kind="unsupported")
        number = SOURCE_NUMBERS.get((ntype or "", attr))
        if number is not None and not number[0](value):
            raise parsecheck._invalid(src, attr, value, what, number[1])
    words = SOURCE_WORDS.get((ntype or "", "mode"))
    if src is not None and words is not None and src.get("mode") is not None and \
            src.get("mode") not in words:
        raise parsecheck._invalid(src, "mode", src.get("mode", ""), what)
    rec = src.find("reconnect") if ntype == "vhostuser" else None
    if rec is not None:
        parsecheck._word(rec, "enabled", parsecheck.YES_NO, what)
        if rec.get("enabled") == "yes":
            timeout = rec.get("timeout")
            if timeout is None:
                raise PlanError("Missing required attribute 'timeout' in element 'reconnect'", what,
                                rec.sourceline)
            if _uint(timeout) is None:
                raise parsecheck._invalid(rec, "timeout", timeout, what, "non-negative integer value")
    if ntype == "udp":
        local = src.find("local")
        if local is None:
            raise PlanError("'<local>' element missing for 'udp' socket interface", what, src.sourceline)
        for attr in ("address", "port"):
            if local.get(attr) is None:
                raise PlanError(f"Missing required attribute '{attr}' in element 'local'", what,
                                local.sourceline)
        if parsecheck.c_int(local.get("port", "")) is None:
            raise parsecheck._invalid(local, "port", local.get("port", ""), what, "integer value")
    if ntype == "hostdev":
        # (a host device's checks, of the type its source address has; a vendor is a USB one's)
        addr = src.find("address") if src is not None else None
        htype = addr.get("type") if addr is not None else None
        if htype is None and src is not None and src.find("vendor") is not None:
            htype = "usb"
        if htype is None:
            raise PlanError("missing source address type", what, el.sourceline if addr is None
                            else addr.sourceline)
        if htype not in hostdevs.SUBSYSTEM_TYPES:
            raise PlanError(f"unknown host device source address type '{htype}'", what,
                            addr.sourceline if addr is not None else el.sourceline, kind="unsupported")
        hostdevs.check_subsys(el, htype, src, what)
        if htype == "pci" and addr is not None:
            parsecheck.check_host_pci_address(addr, what)
    vport = kids.get("virtualport")
    if vport is not None:
        if ntype not in VIRTUALPORT_TYPES:
            raise PlanError(f"<virtualport> element unsupported for <interface type='{ntype}'>", what,
                            vport.sourceline, kind="unsupported")
        vtype = vport.get("type")
        if vtype is not None and vtype not in VIRTUALPORT_KINDS:
            raise PlanError(f"unknown virtualport type {vtype}", what, vport.sourceline,
                            kind="unsupported")
        _check_virtualport(vport, vtype, ntype != "network", what)
    if "target" in kids:
        parsecheck._word(kids["target"], "managed", parsecheck.YES_NO, what)
    if "bandwidth" in kids:
        _check_bandwidth(kids["bandwidth"], ntype == "network", what)
    if "vlan" in kids:
        _check_vlan(kids["vlan"], what)
    mac_el = kids.get("mac")
    mac = mac_el.get("address") if mac_el is not None else None
    if mac is not None:
        octets = parse_mac(mac)
        if octets is None:
            raise PlanError(f"unable to parse mac address '{mac}'", what, mac_el.sourceline)
        if octets[0] & 1:
            raise PlanError(f"expected unicast mac address, found multicast '{mac}'", what,
                            mac_el.sourceline)
    if mac_el is not None:
        parsecheck._word(mac_el, "type", MAC_TYPES, what)
        parsecheck._word(mac_el, "check", parsecheck.YES_NO, what)


def _check_bandwidth(bw: etree._Element, floor_ok: bool, what: Callable[[], str]) -> None:
    """libvirt's virNetDevBandwidthParse: one <inbound> and one <outbound> at most, then each
    one's numbers; a floor only inbound, and only on a network's interface."""
    if bw.get("classID") is not None:
        raise PlanError("classID attribute not supported on <bandwidth> in this usage context", what,
                        bw.sourceline)
    ways: dict[str, etree._Element] = {}
    for child in bw:
        if child.tag in ("inbound", "outbound"):
            if child.tag in ways:
                raise PlanError(f"Only one child <{child.tag}> element allowed", what, child.sourceline)
            ways[child.tag] = child
    for tag in ("inbound", "outbound"):
        way = ways.get(tag)
        if way is None:
            continue
        average, floor = way.get("average"), way.get("floor")
        for attr in BANDWIDTH_ATTRS:
            value = way.get(attr)
            if value is not None and _uint(value, (1 << 64) - 1) is None:
                raise PlanError(f"could not convert bandwidth {attr} value '{value}'", what,
                                way.sourceline, kind="unsupported")
            if attr == "average" and average is None:
                if floor is None:
                    raise PlanError("Missing mandatory average or floor attributes", what,
                                    way.sourceline)
                if way.get("peak") is not None or way.get("burst") is not None:
                    raise PlanError("'peak' and 'burst' require 'average' attribute", what,
                                    way.sourceline, kind="unsupported")
        if floor is not None and _uint(floor, (1 << 64) - 1) and tag == "outbound":
            raise PlanError("'floor' attribute allowed only in <inbound> element", what, way.sourceline,
                            kind="unsupported")
        if floor is not None and _uint(floor, (1 << 64) - 1) and not floor_ok:
            raise PlanError("floor attribute is not supported for this config", what, way.sourceline,
                            kind="unsupported")


def _check_vlan(vlan: etree._Element, what: Callable[[], str]) -> None:
    """libvirt's virNetDevVlanParse: at least one tag, each with a VLAN id and a native mode
    (one at most), and a trunk for more than one tag."""
    tags = vlan.findall("tag")
    if not tags:
        raise PlanError("missing tag id - each <vlan> must have at least one <tag id='n'/> subelement",
                        what, vlan.sourceline)
    native = False
    for tag in tags:
        tid = tag.get("id")
        if tid is None:
            raise PlanError("Missing required attribute 'id' in element 'tag'", what, tag.sourceline)
        n = _uint(tid)
        if n is None:
            raise parsecheck._invalid(tag, "id", tid, what, "non-negative integer value")
        if n > VLAN_TAG_MAX:
            raise PlanError(f"vlan tag id {n} too large (maximum {VLAN_TAG_MAX})", what, tag.sourceline)
        mode = tag.get("nativeMode")
        if mode is not None:
            parsecheck._word(tag, "nativeMode", NATIVE_VLAN_MODES, what)
            if native:
                raise PlanError("duplicate native vlan setting", what, tag.sourceline)
            native = True
    trunk = vlan.get("trunk")  # (an empty one is none)
    if trunk and trunk.lower() != "yes":
        if len(tags) > 1:
            raise PlanError(f"invalid \"trunk='{trunk}'\" in <vlan> - trunk='yes' is required for more "
                            "than one vlan tag", what, vlan.sourceline)
        if native:
            raise PlanError("invalid configuration in <vlan> - \"trunk='no'\" is not allowed with a "
                            "native vlan id", what, vlan.sourceline)
        if trunk.lower() != "no":
            raise PlanError(f"invalid \"trunk='{trunk}'\" in <vlan> - must be yes or no", what,
                            vlan.sourceline)


def _check_virtualport(vport: etree._Element, vtype: str | None, complete: bool,
                       what: Callable[[], str]) -> None:
    """libvirt's parse of a ``<virtualport>`` (after its type's word): a type is needed but
    on a network's interface, which merges it with the network's; then its first
    ``<parameters>``; then, but on a network's interface, the parameters the type needs;
    then those it takes none of.  An empty profileid counts as none."""
    def refuse(message: str) -> PlanError:
        return PlanError(message, what, vport.sourceline)
    if vtype is None and complete:
        raise refuse("missing required virtualport type")
    params = vport.find("parameters")
    given = dict(params.attrib) if params is not None else {}
    for name, top, link in VIRTUALPORT_NUMBERS:
        if name in given:
            n = parsecheck.c_ui(given[name])
            if n is None:
                raise refuse(f"cannot parse value of {name} parameter")
            if n > top:
                raise refuse(f"value {link} {name} out of range")
    for name in ("instanceid", "interfaceid"):
        if name in given and not sources.uuid_ok(given[name]):
            raise refuse(f"cannot parse {name} parameter as a uuid")
    if len(given.get("profileid", "").encode()) >= 40:
        raise refuse("profileid parameter too long")
    has = {k for k, v in given.items() if k != "profileid" or v}
    if complete and vtype is not None:
        missing = next((k for k in VIRTUALPORT_NEEDS[vtype] if k not in has), None)
        if missing is not None:
            raise refuse(f"missing {missing} in <virtualport type='{vtype}'>")
    extra = next((k for k in VIRTUALPORT_EXTRAS.get(vtype or "", ()) if k in has), None)
    if extra is not None:
        raise refuse(f"extra {extra} unsupported in <virtualport type='{vtype}'>")


def check_teaming_parse(team: etree._Element | None, what: Callable[[], str]) -> None:
    """A ``<teaming>`` (the first) of an interface or a host device: with a type or a
    persistent interface named (empty ones are none), a known type."""
    ttype = team.get("type") or None if team is not None else None
    if team is not None and (ttype or team.get("persistent")) and ttype not in TEAMING_TYPES:
        raise PlanError(f"unknown teaming type '{ttype or '(null)'}'", what, team.sourceline,
                        kind="unsupported")


def check_parse(el: etree._Element, what: Callable[[], str], kids: dict) -> None:
    """libvirt's parser checks of an interface after its address, in its order: guest IPs,
    port forwards, driver, backend, link, teaming, tuning, MTU, coalescing, port."""
    ntype = el.get("type")
    if "ip" in kids or "route" in kids:
        check_ip_info(el, "guest interface", what)
    for pf in el.iterfind("portForward") if "portForward" in kids else ():
        address = pf.get("address")
        if address is not None and _ip(address) is None:
            raise PlanError(f"Invalid address '{address}' in <portForward>", what, pf.sourceline)
    model = kids.get("model")
    drv = kids.get("driver")
    if drv is not None and ntype == "hostdev":
        name = drv.get("name")
        if name is not None and name not in HOSTDEV_DRIVER_NAMES:
            raise parsecheck._invalid(drv, "name", name, what)
    if drv is not None:
        for attr, _ in VIRTIO_OPTIONS:
            value = drv.get(attr)
            if value is not None and value not in ON_OFF:
                raise parsecheck._invalid(drv, attr, value, what)
    if drv is not None and ntype != "hostdev" and model is not None and \
            model.get("type") in devices.VIRTIO_NIC_MODELS:
        _check_virtio_driver(drv, what)
    backend = kids.get("backend")
    if backend is not None and backend.get("type") is not None:
        raise parsecheck._invalid(backend, "type", backend.get("type", ""), what)
    link = kids.get("link")
    state = link.get("state") if link is not None else None
    if state and state not in LINK_STATES:
        raise PlanError(f"unknown interface link state '{state}'", what, link.sourceline,
                        kind="unsupported")
    check_teaming_parse(kids.get("teaming"), what)
    sndbuf = kids["tune"].find("sndbuf") if "tune" in kids else None
    if sndbuf is not None and sndbuf.text and _uint(sndbuf.text, (1 << 64) - 1) is None:
        raise PlanError("sndbuf must be a positive integer", what, sndbuf.sourceline)
    mtu = kids.get("mtu")
    size = mtu.get("size") if mtu is not None else None
    if size and _uint(size) is None:
        raise PlanError("malformed mtu size", what, mtu.sourceline)
    frames = kids["coalesce"].find("rx/frames") if "coalesce" in kids else None
    most = frames.get("max") if frames is not None else None
    if most:
        if _uint(most, (1 << 64) - 1) is None:
            raise PlanError(f"cannot parse value '{most}' for coalesce parameter", what,
                            frames.sourceline)
        if _uint(most) is None:
            raise PlanError(f"numerical overflow: value '{most}' is too big for coalesce parameter, "
                            "maximum is '4294967295'", what, frames.sourceline)
    if "port" in kids:
        parsecheck._word(kids["port"], "isolated", parsecheck.YES_NO, what)


def _check_virtio_driver(drv: etree._Element, what: Callable[[], str]) -> None:
    for attr, words in VIRTIO_DRIVER_ATTRS:
        value = drv.get(attr)
        if value is None:
            continue
        if words is None:
            if _uint(value) is None:
                raise parsecheck._invalid(drv, attr, value, what, "non-negative integer value")
        elif value not in words:
            raise parsecheck._invalid(drv, attr, value, what)
    for sub, names in (("host", HOST_OFFLOADS), ("guest", GUEST_OFFLOADS)):
        el = drv.find(sub)
        if el is None:
            continue
        for attr in names:
            value = el.get(attr)
            if value is not None and value not in ON_OFF:
                raise parsecheck._invalid(el, attr, value, what)


def read_facts(el: etree._Element, kids: dict) -> NetFacts:
    """What validation needs of an ``<interface>``: read once, with the device."""
    f = NetFacts(children=frozenset(kids))
    drv = kids.get("driver")
    if drv is not None:
        f.driver = dict(drv.items())  # (as dict(attrib), faster)
    ips = []
    for ip in el.iterfind("ip") if "ip" in kids else ():
        version = _ip(ip.get("address") or "") or 4
        ips.append(GuestIP(version, _uint(ip.get("prefix")) or 0, bool(ip.get("peer"))))
    f.ips = tuple(ips)
    f.routes = len(el.findall("route")) if "route" in kids else 0
    src = kids.get("source")
    if src is not None:
        nested = len(src) > 0  # (a childless source, the usual one, is not searched)
        f.host_ips = nested and (src.find("ip") is not None or src.find("route") is not None)
        f.mode = src.get("mode")
        f.source = dict(src.items())
        rec = src.find("reconnect") if nested else None
        f.reconnect = rec is not None and rec.get("enabled") == "yes"
    team = kids.get("teaming")
    if team is not None and team.get("type"):
        f.teaming = dict(team.attrib)
    mtu = kids.get("mtu")
    f.mtu = mtu is not None and bool(_uint(mtu.get("size")))
    frames = kids["coalesce"].find("rx/frames") if "coalesce" in kids else None
    f.coalesce = frames is not None and bool(frames.get("max"))  # (max='' is none)
    vport = kids.get("virtualport")
    f.virtualport = vport.get("type") if vport is not None else None
    port = kids.get("port")
    f.isolated = port is not None and port.get("isolated") == "yes"
    target = kids.get("target")
    f.managed = target.get("managed") if target is not None else None
    f.target_dev = target.get("dev") if target is not None else None
    return f


def check_qemu(net: Device, f: NetFacts) -> None:
    """The QEMU driver's checks of an interface (after libvirt's generic ones and its
    address's)."""
    what = net.describe  # (named only when refused)
    virtio = net.model in devices.VIRTIO_NIC_MODELS
    if net.type == "user":
        if f.routes:
            raise PlanError("Invalid attempt to set network interface guest-side IP route, not "
                            "supported by QEMU", what, kind="unsupported")
        seen: set[int] = set()
        for ip in f.ips:
            if ip.peer:
                raise PlanError("Invalid attempt to set peer IP for guest", what, kind="unsupported")
            if ip.version in seen:
                raise PlanError(f"Only one IPv{ip.version} address per interface is allowed", what,
                                kind="unsupported")
            seen.add(ip.version)
            if ip.version == 4 and ip.prefix and ip.prefix not in USER_IPV4_PREFIXES:
                raise PlanError("invalid prefix, must be in range of 4-27", what)
            if ip.version == 6 and ip.prefix and ip.prefix != USER_IPV6_PREFIX:
                raise PlanError(f"unsupported IPv6 address prefix='{ip.prefix}' - must be 64", what,
                                kind="unsupported")
    elif net.type != "vdpa" and (f.routes or f.ips):
        raise PlanError("Invalid attempt to set network interface guest-side IP route and/or "
                        "address info, not supported by QEMU", what, kind="unsupported")
    if virtio:
        for attr in ("rx_queue_size", "tx_queue_size"):
            n = _uint(f.driver.get(attr))
            if n and n & (n - 1):
                raise PlanError(f"{attr} has to be a power of two", what, kind="unsupported")
    if f.mtu and net.type not in MTU_TYPES:
        raise PlanError(f"setting MTU on interface type {net.type} is not supported yet", what,
                        kind="unsupported")
    if f.teaming is not None:
        if f.teaming.get("type") == "persistent" and not virtio:
            raise PlanError("virtio-net teaming persistent interface must be <model type='virtio'/>, "
                            f"not '{net.model or 'rtl8139'}'", what, kind="unsupported")
        if f.teaming.get("type") == "transient" and net.type not in ("hostdev", "network"):
            raise PlanError("virtio-net teaming transient interface must be type='hostdev', "
                            f"not '{net.type}'", what, kind="unsupported")
    if f.coalesce and net.type not in COALESCE_TYPES:
        raise PlanError(f"coalesce settings on interface type {net.type} are not supported", what,
                        kind="unsupported")


def check_generic(net: Device, f: NetFacts) -> None:
    """libvirt's own checks of an interface (before its address's and its QEMU driver's)."""
    what = net.describe  # (named only when refused)
    if f.host_ips and net.type != "ethernet":
        raise PlanError("Invalid attempt to set network interface host-side IP route and/or address "
                        f"info on interface of type '{net.type}'. This is only supported on "
                        "interfaces of type 'ethernet'", what, kind="unsupported")
    if f.managed == "no" and net.type != "ethernet":
        raise PlanError(f"unmanaged target dev is not supported on interfaces of type '{net.type}'",
                        what, kind="unsupported")
    team = f.teaming or {}
    if team.get("type") == "transient":
        if not team.get("persistent"):
            raise PlanError("teaming persistent attribute must be set if teaming type is 'transient'",
                            what, kind="unsupported")
    elif team.get("persistent"):
        raise PlanError("teaming persistent attribute not allowed if teaming type is "
                        f"'{team.get('type', 'none')}'", what, kind="unsupported")
    if f.isolated:
        mac = net.attrs.get("mac", "")
        if net.type not in ISOLATED_PORT_TYPES:
            raise PlanError(f"interface {mac} - <port isolated='yes'/> is not supported for network "
                            f"interfaces with type='{net.type}'", what, kind="unsupported")
        if f.virtualport:
            raise PlanError(f"interface {mac} - <port isolated='yes'/> is not supported for network "
                            f"interfaces with virtualport type='{f.virtualport}'", what, kind="unsupported")
    if net.model not in devices.VIRTIO_NIC_MODELS:
        for attr, name in VIRTIO_OPTIONS:
            if f.driver.get(attr) is not None:
                raise PlanError(f"{name} is only supported for virtio devices", what, kind="unsupported")
    if net.type == "vhostuser":
        if net.model not in devices.VIRTIO_NIC_MODELS:
            raise PlanError("Wrong or no <model> 'type' attribute specified with <interface "
                            "type='vhostuser'/>. vhostuser requires the virtio-net* frontend",
                            what, kind="internal")
        if f.reconnect and f.mode == "server":
            raise PlanError("'reconnect' attribute unsupported 'server' mode for <interface "
                            "type='vhostuser'>", what, kind="unsupported")
