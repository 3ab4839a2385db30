"""What libvirt 9.0 refuses of a device's ``<source>`` beyond a local path: where a network,
volume, NVMe or vhost-user disk's data is, a storage source's ``<auth>``, ``<encryption>``,
``<reservations>`` and storage slice, and the security label overrides (``<seclabel>``) of
a storage or character device source.

* the parser (:func:`check_storage_source`: :func:`check_network_source`,
  :func:`check_pool_source`, :func:`check_nvme_source` or :func:`check_vhostuser_source`,
  then :func:`check_auth`, :func:`check_encryption`, :func:`check_reservations`,
  :func:`check_slice`, :func:`check_seclabels`), each called where libvirt's parser
  reads the element: a disk's ``<source>``, the disk's own ``<auth>`` and
  ``<encryption>``, each backing store's source; a chardev's first ``<source>`` (its labels); an iSCSI host device's
  ``<auth>``;
* validation (:func:`check_overrides`): a device may override the label of a security
  model only if the domain relabels resources for that model.

Each was checked against the libvirt 9.0 daemon with pairs of mistakes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Union

from lxml import etree

from .errors import PlanError

if TYPE_CHECKING:
    from .domain import Device

#: what an error is about: a description, or a function making one (only called on error)
What = Union[str, None, Callable[[], str]]


def _w(what: What) -> str | None:
    return what() if callable(what) else what


#: TABLE: the words of a storage source's ``<auth type>`` and ``<encryption>``
AUTH_TYPES = frozenset({"none", "chap", "ceph"})
ENCRYPTION_FORMATS = frozenset({"default", "qcow", "luks", "luks2"})
#: an engine must be named ('default' is not a word the parser takes)
ENCRYPTION_ENGINES = frozenset({"qemu", "librbd"})
ENCRYPTION_SECRET_TYPES = frozenset({"passphrase"})
#: TABLE: a network disk source's protocols, its hosts' transports, a volume's modes
NET_PROTOCOLS = frozenset({"none", "nbd", "rbd", "sheepdog", "gluster", "iscsi", "http", "https",
                           "ftp", "ftps", "tftp", "ssh", "vxhs", "nfs"})
#: the protocols whose source name is 'pool/image'
POOL_IMAGE_PROTOCOLS = frozenset({"gluster", "rbd"})
HOST_TRANSPORTS = frozenset({"tcp", "unix", "rdma"})
POOL_MODES = frozenset({"host", "direct"})
PORT_MAX = 65535
#: TABLE: characters a cookie's value may not have (RFC 6265: controls, blank, '"', ',', ';',
#: '\\'), and its name neither these nor a separator
COOKIE_VALUE_BAD = frozenset(map(chr, range(1, 0x20))) | frozenset(' ",;\\')
COOKIE_NAME_BAD = COOKIE_VALUE_BAD | frozenset("()<>@:/[]?={}")
#: the only kind of NVMe disk source, and of vhost-user disk source
NVME_SOURCE_TYPE = "pci"
VHOSTUSER_SOURCE_TYPE = "unix"
#: what an unmanaged (or described) ``<reservations>`` connects with
RESERVATIONS_TYPE = "unix"
RESERVATIONS_MODE = "client"
#: the longest label libvirt keeps (a longer one it drops without a word)
LABEL_MAX = 4096
#: the security model the QEMU driver gives a lone domain ``<seclabel>`` without one
#: (this host's first: 'none'), which never relabels
DEFAULT_SECURITY_MODEL = "none"
_HEX = frozenset("0123456789abcdefABCDEF")
_SPACE = " \t\n\v\f\r"


def _text(el: etree._Element, attr: str) -> str | None:
    """An attribute as libvirt's XPath string reads it: an empty one is none."""
    return el.get(attr) or None


def uuid_ok(text: str) -> bool:
    """libvirt's virUUIDParse: 32 hex digits in pairs, '-' or ' ' between pairs, blanks
    around."""
    s = text.lstrip(_SPACE)
    digits, i = 0, 0
    while digits < 16:
        if i >= len(s):
            return False
        if s[i] in "- ":
            i += 1
            continue
        if s[i] not in _HEX or i + 1 >= len(s) or s[i + 1] not in _HEX:
            return False
        digits += 1
        i += 2
    return not s[i:].strip(_SPACE)


def uuid_text(text: str) -> str:
    """A UUID as libvirt writes it back (lower case, dashed 8-4-4-4-12), so that two
    spellings of one UUID compare equal; text that is no UUID comes back as it is."""
    if not uuid_ok(text):
        return text
    h = "".join(c for c in text if c in _HEX).lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def check_secret_lookup(secret: etree._Element, what: What) -> None:
    """A ``<secret>``'s uuid or usage (one of them, a readable uuid)."""
    uuid, usage = secret.get("uuid"), secret.get("usage")
    if uuid is None and usage is None:
        raise PlanError("missing secret uuid or usage attribute", _w(what), secret.sourceline)
    if uuid is not None and usage is not None:
        raise PlanError("either secret uuid or usage expected", _w(what), secret.sourceline)
    if uuid is not None and not uuid_ok(uuid):
        raise PlanError(f"invalid secret uuid '{uuid}'", _w(what), secret.sourceline)


def check_auth(auth: etree._Element, what: What) -> None:
    """An ``<auth>``: a user name, a known type, a ``<secret>`` that names one."""
    if _text(auth, "username") is None:
        raise PlanError("missing username for auth", _w(what), auth.sourceline)
    atype = _text(auth, "type")
    if atype is not None and atype not in AUTH_TYPES:
        raise PlanError(f"unknown auth type '{atype}'", _w(what), auth.sourceline, kind="unsupported")
    secret = auth.find("secret")
    if secret is None:
        raise PlanError("Missing <secret> element in auth", _w(what), auth.sourceline)
    check_secret_lookup(secret, what)


def check_encryption(enc: etree._Element, what: What) -> None:
    """An ``<encryption>``: its format, engine and secrets; a LUKS one's cipher and ivgen."""
    fmt = _text(enc, "format")
    if fmt is None:
        raise PlanError("unknown volume encryption format", _w(what), enc.sourceline)
    if fmt not in ENCRYPTION_FORMATS:
        raise PlanError(f"unknown volume encryption format type {fmt}", _w(what), enc.sourceline,
                        kind="unsupported")
    engine = enc.get("engine")
    if engine is not None and engine not in ENCRYPTION_ENGINES:
        raise PlanError(f"Invalid value for attribute 'engine' in element 'encryption': '{engine}'.",
                        _w(what), enc.sourceline)
    for secret in enc.iterfind("secret"):
        stype = _text(secret, "type")
        if stype is None:
            raise PlanError("unknown volume encryption secret type", _w(what), secret.sourceline)
        if stype not in ENCRYPTION_SECRET_TYPES:
            raise PlanError(f"unknown volume encryption secret type {stype}", _w(what), secret.sourceline,
                            kind="unsupported")
        check_secret_lookup(secret, what)
    if fmt != "luks":
        return
    cipher = enc.find("cipher")
    if cipher is not None:
        if cipher.get("name") is None:
            raise PlanError("cipher info missing 'name' attribute", _w(what), cipher.sourceline)
        _check_cipher_size(cipher, what)
    ivgen = enc.find("ivgen")
    if ivgen is not None:
        if cipher is None:
            raise PlanError("ivgen element found, but cipher is missing", _w(what), ivgen.sourceline)
        if ivgen.get("name") is None:
            raise PlanError("missing ivgen info name string", _w(what), ivgen.sourceline)


def _check_cipher_size(cipher: etree._Element, what: What) -> None:
    from . import parsecheck  # (parsecheck imports this module)

    size = cipher.get("size")
    if size is None:
        raise PlanError("Missing required attribute 'size' in element 'cipher'", _w(what),
                        cipher.sourceline)
    if parsecheck.c_uint(size, 10) is None:
        raise PlanError(f"Invalid value for attribute 'size' in element 'cipher': '{size}'. "
                        "Expected non-negative integer value", _w(what), cipher.sourceline)


def check_seclabels(holder: etree._Element, what: What) -> None:
    """The ``<seclabel>`` overrides of a source: one per model, a relabel switch, and no
    label when relabeling is off."""
    models: list[str] = []
    for label in holder.iterfind("seclabel"):
        model = label.get("model")
        if model is not None:
            if model in models:
                raise PlanError(f"seclabel for model {model} is already provided", _w(what),
                                label.sourceline)
            models.append(model)
        relabel = label.get("relabel")
        if relabel is not None and relabel not in ("yes", "no"):
            raise PlanError(f"Invalid value for attribute 'relabel' in element 'seclabel': "
                            f"'{relabel}'.", _w(what), label.sourceline)
        text = label.findtext("label")
        if relabel == "no" and text and len(text.encode()) <= LABEL_MAX:
            raise PlanError(f"Cannot specify a label if relabelling is turned off. "
                            f"model={model if model is not None else '<null>'}", _w(what),
                            label.sourceline)


def _invalid(el: etree._Element, attr: str, value: str, what: What) -> PlanError:
    return PlanError(f"Invalid value for attribute '{attr}' in element '{el.tag}': '{value}'.",
                     _w(what), el.sourceline)


def check_network_source(src: etree._Element, what: What) -> None:
    """A network disk source: its protocol, name (an RBD or Gluster one: 'pool/image'),
    TLS switch, hosts (transport, socket, name, port), SSL verification, cookies,
    read-ahead and timeout."""
    from . import parsecheck  # (parsecheck imports this module)

    protocol = src.get("protocol")
    if protocol is None:
        raise PlanError("Missing required attribute 'protocol' in element 'source'", _w(what),
                        src.sourceline)
    if protocol not in NET_PROTOCOLS:
        raise _invalid(src, "protocol", protocol, what)
    name = src.get("name")
    if name is None and protocol != "nbd":
        raise PlanError("missing name for disk source", _w(what), src.sourceline)
    tls = src.get("tls")
    if tls is not None and tls not in ("yes", "no"):
        raise _invalid(src, "tls", tls, what)
    if name is not None and protocol in POOL_IMAGE_PROTOCOLS and name.find("/") <= 0:
        raise PlanError(f"can't split path '{name}' into pool name and image name", _w(what),
                        src.sourceline)
    for host in src.iterfind("host"):
        check_host(host, what)
    ssl = src.find("ssl") if protocol in ("https", "ftps") else None
    verify = ssl.get("verify") if ssl is not None else None
    if verify is not None and verify not in ("yes", "no"):
        raise _invalid(ssl, "verify", verify, what)
    cookies = src.find("cookies") if protocol in ("http", "https") else None
    for cookie in cookies.iterfind("cookie") if cookies is not None else ():
        cname = _text(cookie, "name")
        if cname is None:
            raise PlanError("missing cookie name", _w(what), cookie.sourceline)
        if not cookie.xpath("string()"):
            raise PlanError(f"missing value for cookie '{cname}'", _w(what), cookie.sourceline)
    if cookies is not None:
        _check_cookies(cookies, what)
    if protocol in ("http", "https", "ftp", "ftps"):
        for path in ("readahead/@size", "timeout/@seconds"):
            found = src.xpath(f"string(./{path})")
            if found and parsecheck.c_uint(found, 10, parsecheck.ULLONG_MAX) is None:
                raise PlanError("invalid readahead size or timeout", _w(what), src.sourceline)


def _check_cookies(cookies: etree._Element, what: What) -> None:
    """The cookies once all are read (RFC 6265's characters): each one's name and value,
    then whether a later one has its name."""
    found = [(c, c.get("name") or "", c.xpath("string()")) for c in cookies.iterfind("cookie")]
    for i, (cookie, name, value) in enumerate(found):
        if not COOKIE_NAME_BAD.isdisjoint(name):
            raise PlanError(f"cookie name '{name}' contains invalid characters", _w(what),
                            cookie.sourceline)
        # (a value may be quoted: the quotes are not part of it)
        if value[0] == '"':
            if value[-1] != '"':
                raise PlanError(f"value of cookie '{name}' contains invalid characters", _w(what),
                                cookie.sourceline)
            value = value[1:-1]
        if not COOKIE_VALUE_BAD.isdisjoint(value):
            raise PlanError(f"value of cookie '{name}' contains invalid characters", _w(what),
                            cookie.sourceline)
        if any(other == name for _, other, _ in found[i + 1:]):
            raise PlanError(f"duplicate cookie '{name}'", _w(what), cookie.sourceline)


def check_host(host: etree._Element, what: What) -> None:
    from . import parsecheck

    transport = host.get("transport")
    if transport is not None and transport not in HOST_TRANSPORTS:
        raise PlanError(f"unknown protocol transport type '{transport}'", _w(what), host.sourceline,
                        kind="unsupported")
    socket = host.get("socket")
    if transport == "unix":
        if socket is None:
            raise PlanError("missing socket for unix transport", _w(what), host.sourceline)
        return
    if socket is not None:
        raise PlanError(f"transport '{transport if transport is not None else '(null)'}' does not "
                        "support socket attribute", _w(what), host.sourceline)
    if host.get("name") is None:
        raise PlanError("missing name for host", _w(what), host.sourceline)
    port = host.get("port")
    if port is not None:
        n = parsecheck.c_uint(port, 10)
        if n is None:
            raise PlanError(f"failed to parse port number '{port}'", _w(what), host.sourceline)
        if n > PORT_MAX:
            raise PlanError(f"port '{port}' out of range", _w(what), host.sourceline)


def check_pool_source(src: etree._Element, what: What) -> None:
    """A volume disk source: a pool and a volume (or neither), a known mode."""
    pool, volume, mode = src.get("pool"), src.get("volume"), src.get("mode")
    if pool is None and volume is None:
        return
    if pool is None or volume is None:
        raise PlanError("'pool' and 'volume' must be specified together for 'pool' type source",
                        _w(what), src.sourceline)
    if mode is not None and mode not in POOL_MODES:
        raise PlanError(f"unknown source mode '{mode}' for volume type disk", _w(what), src.sourceline,
                        kind="unsupported")


def nvme_namespace(text: str) -> int | None:
    """An NVMe namespace as libvirt reads it (virStrToLong_ull, base 10: blanks before,
    a sign, '-1' is the largest), None when not a number."""
    from . import parsecheck

    r = parsecheck._c_parse(text, 10)
    if r is None or r[1] > parsecheck.ULLONG_MAX:
        return None
    return (-r[1]) % (parsecheck.ULLONG_MAX + 1) if r[0] else r[1]


def check_nvme_source(src: etree._Element, what: What) -> None:
    """An NVMe disk source: type 'pci', a namespace (a number; 0 is refused when the disk
    is validated), a managed switch, the host PCI address of the controller."""
    from . import parsecheck

    stype = src.get("type")
    if stype is None:
        raise PlanError("missing 'type' attribute to disk source", _w(what), src.sourceline)
    if stype != NVME_SOURCE_TYPE:
        raise PlanError(f"unsupported source type '{stype}'", _w(what), src.sourceline)
    namespace = src.get("namespace")
    if namespace is None:
        raise PlanError("missing 'namespace' attribute to disk source", _w(what), src.sourceline)
    if nvme_namespace(namespace) is None:
        raise PlanError(f"malformed namespace '{namespace}'", _w(what), src.sourceline)
    parsecheck._word(src, "managed", parsecheck.YES_NO, what)
    address = src.find("address")
    if address is None:
        raise PlanError("NVMe disk source is missing address", _w(what), src.sourceline)
    parsecheck.check_host_pci_address(address, what)


def check_vhostuser_source(src: etree._Element, what: What) -> None:
    """A vhost-user disk source: a UNIX socket's path, a ``<reconnect>``."""
    from . import chardevs

    stype, path = src.get("type"), src.get("path")
    if stype is None:
        raise PlanError("missing 'type' attribute for vhostuser disk source", _w(what), src.sourceline)
    if stype != VHOSTUSER_SOURCE_TYPE:
        raise PlanError("invalid 'type' attribute for vhostuser disk source", _w(what), src.sourceline)
    if path is None:
        raise PlanError("missing 'path' attribute for vhostuser disk source", _w(what), src.sourceline)
    rec = src.find("reconnect")
    if rec is not None:
        chardevs.check_reconnect_parse(rec, what)


def check_reservations(pr: etree._Element, what: What) -> None:
    """A ``<reservations>`` (persistent reservations): a managed switch; an unmanaged one,
    or one with a ``<source>``, connects as a client to a UNIX socket's path."""
    from . import parsecheck

    managed = pr.get("managed")
    if managed is None:
        raise PlanError("Missing required attribute 'managed' in element 'reservations'", _w(what),
                        pr.sourceline)
    parsecheck._word(pr, "managed", parsecheck.YES_NO, what)
    conn = pr.find("source")
    # (as libvirt's XPath string reads them: an empty attribute is none)
    ctype, path, mode = (_text(conn, a) if conn is not None else None for a in ("type", "path", "mode"))
    if managed == "no" or ctype or path or mode:
        for value, missing in ((ctype, "connection type"), (path, "path"), (mode, "connection mode")):
            if value is None:
                raise PlanError(f"missing {missing} for <reservations/>", _w(what), pr.sourceline)
    if ctype is not None and ctype != RESERVATIONS_TYPE:
        raise PlanError(f"unsupported connection type for <reservations/>: {ctype}", _w(what),
                        pr.sourceline)
    if mode is not None and mode != RESERVATIONS_MODE:
        raise PlanError(f"unsupported connection mode for <reservations/>: {mode}", _w(what),
                        pr.sourceline)


def storage_slice(src: etree._Element) -> etree._Element | None:
    """The slice libvirt reads of a source: the first ``<slices><slice type='storage'>``
    (a slice of another type is ignored)."""
    for sl in src.iterfind("slices/slice"):
        if sl.get("type") == "storage":
            return sl
    return None


def check_slice(src: etree._Element, what: What) -> None:
    """A source's storage slice: an offset and a size, each an unsigned number (base 10,
    no sign but '+')."""
    from . import parsecheck

    sl = storage_slice(src)
    if sl is None:
        return
    offset, size = _text(sl, "offset"), _text(sl, "size")
    if offset is None or size is None:
        raise PlanError("missing offset or size attribute of slice", _w(what), sl.sourceline)
    for name, value in (("offset", offset), ("size", size)):
        if parsecheck.c_uint(value, 10, parsecheck.ULLONG_MAX) is None:
            raise PlanError(f"malformed value '{value}' of '{name}' attribute of slice", _w(what),
                            sl.sourceline)


#: TABLE: the parser of each storage source type's location
LOCATION_PARSERS: dict[str, Callable[[etree._Element, What], None]] = {
    "network": check_network_source,
    "volume": check_pool_source,
    "nvme": check_nvme_source,
    "vhostuser": check_vhostuser_source,
}


def check_storage_source(src: etree._Element, stype: str | None, what: What) -> None:
    """What the parser reads of a storage source of a type: a network, volume, NVMe or
    vhost-user one's location, then ``<auth>``, ``<encryption>``, ``<reservations>``,
    the storage slice, the label overrides."""
    location = LOCATION_PARSERS.get(stype or "file")
    if location is not None:
        location(src, what)
    auth = src.find("auth")
    if auth is not None:
        check_auth(auth, what)
    enc = src.find("encryption")
    if enc is not None:
        check_encryption(enc, what)
    pr = src.find("reservations")
    if pr is not None:
        check_reservations(pr, what)
    check_slice(src, what)
    check_seclabels(src, what)


# ---- validation ---------------------------------------------------------------------------
def domain_relabels(root: etree._Element) -> list[tuple[str | None, bool]]:
    """The domain's security labels as libvirt keeps them: (model, relabels resources)."""
    labels = root.findall("seclabel")
    out = []
    for label in labels:
        model, ltype = label.get("model"), label.get("type") or "dynamic"
        if len(labels) == 1 and model is None and \
                (ltype == "none" or (ltype == "dynamic" and not label.findtext("baselabel"))):
            model = DEFAULT_SECURITY_MODEL
        relabel = ltype == "dynamic"
        if label.get("relabel") in ("yes", "no"):
            relabel = label.get("relabel") == "yes"
        if model == "none":
            relabel = False
        out.append((model, relabel))
    return out


def _source_models(src: etree._Element | None) -> list[str | None]:
    return [s.get("model") for s in src.iterfind("seclabel")] if src is not None else []


def override_models(dev: Device) -> list[str | None]:
    """The models a device's sources override labels of (a disk's whole chain)."""
    el = dev.ref
    if el is None:
        return []
    if dev.tag != "disk":
        return _source_models(el.find("source"))
    models = _source_models(el.find("source"))
    bs = el.find("backingStore")
    while bs is not None and bs.get("type") is not None:
        models += _source_models(bs.find("source"))
        bs = bs.find("backingStore")
    return models


def check_overrides(dev: Device) -> None:
    """A label override needs the domain to relabel for that model."""
    models = override_models(dev)
    if not models:
        return
    domain = domain_relabels(dev.ref.getroottree().getroot())
    for model in models:
        if any(m == model and not relabel for m, relabel in domain):
            raise PlanError("label overrides require relabeling to be enabled at the domain level",
                            dev.describe(), kind="unsupported")
