"""The only module that touches XML: read a domain document into the model, write plans back.

Parsing is safe against entity tricks: no DTD is loaded, no entity is
resolved, nothing is fetched from the network, and a document that declares or
references an entity is refused (a plain <!DOCTYPE>, which libvirt reads, is kept).  Writing edits the *original* tree: only what the
planner changed is touched, so comments, unknown elements, namespaces and
element order survive.
"""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING, Any, Callable

from lxml import etree

from .address import BUS_LAST, FUNCTION_LAST, SLOT_LAST, PciAddress
from .domain import Address, Controller, Device, Domain, Zpci
from .errors import UNKNOWN_CAUSE, InputError, PlanError
from . import (audios, chardevs, controllers, defaults, devices, disks, filesystems, graphics, guestconf,
               hostdevs, interfaces, machines, memdevs, parsecheck, sounds, sources, tpm, video)
from .records import Value

if TYPE_CHECKING:
    from . import splice

#: libvirt's element order inside <devices>; new elements go after their kind
DEVICE_ORDER = ("emulator", "disk", "controller", "lease", "filesystem", "interface", "smartcard",
                "serial", "parallel", "console", "channel", "input", "tpm", "graphics", "sound",
                "audio", "video", "hostdev", "redirdev", "redirfilter", "hub", "watchdog",
                "memballoon", "rng", "panic", "shmem", "memory", "iommu", "vsock", "crypto", "pstore")
_RANK = {tag: i for i, tag in enumerate(DEVICE_ORDER)}

#: the biggest document pciplan reads (bytes); larger ones are refused up front.  libvirt 9.0
#: itself cannot take a domain XML of more than about 4 MiB (its RPC message limit), and
#: virsh reads no file over 10 MiB
MAX_INPUT = 16 * 1024 * 1024
#: the most elements a document may have, and the most children of <devices>: far beyond
#: any guest libvirt can define, small enough to plan in seconds and bounded memory
MAX_ELEMENTS = 250_000
MAX_DEVICES = 20_000


class Document(Value):
    """A parsed domain document: the model plus the tree it came from."""

    tree: etree._ElementTree
    domain: Domain
    xml_declaration: bool
    encoding: str
    #: the quote character the input used for attributes (libvirt writes ')
    quote: str = '"'
    #: the input's byte-order mark (written back), b"" when it had none
    bom: bytes = b""
    #: the input's XML declaration, verbatim (None: write a standard one)
    declaration: str | None = None
    #: the input's text between the declaration and the root element (comments, PIs, blanks)
    prolog: str | None = None
    #: the input had no " and no & at all: then no value can hold a ' and no text a ",
    #: and every " lxml writes in the root element delimits an attribute value
    plain: bool = False
    #: elements the parser could not put in a namespace, left out as libvirt does
    dropped: list[str]
    #: the input's line ending ("\r\n" when its first line ends so): the parser reads every
    #: line ending as "\n", and writing puts the input's back
    newline: str = "\n"
    #: the input's text and where each node lies in it, when lxml's writing of the tree
    #: would change more than the plan does (``splice``); None otherwise
    original: splice.Original | None = None

    def __init__(self, tree, domain, xml_declaration, encoding, quote='"', bom=b'', declaration=None, prolog=None, plain=False, dropped=..., newline="\n", original=None) -> None:
        self.tree = tree
        self.domain = domain
        self.xml_declaration = xml_declaration
        self.encoding = encoding
        self.quote = quote
        self.bom = bom
        self.declaration = declaration
        self.prolog = prolog
        self.plain = plain
        self.dropped = [] if dropped is ... else dropped
        self.newline = newline
        self.original = original


class _Source(Value):
    """What the parser does not keep of the input's bytes, so that writing can restore it."""

    sample: str
    bom: bytes = b""
    #: Python codec of a byte-order mark / of an undeclared UTF-16 or UTF-32 document
    codec: str | None = None
    declaration: str | None = None
    prolog: str | None = None
    plain: bool = False
    #: elements left out because their namespace prefix is not declared
    dropped: list[str]
    newline: str = "\n"

    def __init__(self, sample, bom=b'', codec=None, declaration=None, prolog=None, plain=False, dropped=..., newline="\n") -> None:
        self.sample = sample
        self.bom = bom
        self.codec = codec
        self.declaration = declaration
        self.prolog = prolog
        self.plain = plain
        self.dropped = [] if dropped is ... else dropped
        self.newline = newline


#: byte-order marks and their codecs (UTF-32 first: its LE mark starts like UTF-16's)
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
#: how the first character '<' looks without a mark (XML 1.0 appendix F)
_UNMARKED = ((b"\x3c\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00\x3c", "utf-32-be"),
             (b"\x3c\x00\x3f\x00", "utf-16-le"), (b"\x00\x3c\x00\x3f", "utf-16-be"))
_SAMPLE = 65536
# patterns are compiled on first use (re caches them): a plain document needs none of them
_DECL = r"<\?xml[ \t\r\n][^>]*?\?>"
_ENCODING = r"""encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\1"""


def _declared_encoding(declaration: str) -> str | None:
    m = re.search(_ENCODING, declaration)
    return m.group(2) if m else None


def _sniff(raw: bytes, default: str | None = None) -> _Source:
    """Decode enough of the input to see its declaration and prolog, without parsing it."""
    bom, codec = b"", default
    for mark, name in _BOMS:
        if raw.startswith(mark):
            bom, codec = mark, name
            break
    else:
        for start, name in _UNMARKED:
            if raw.startswith(start):
                codec = name
                break
    body = raw[len(bom):len(bom) + _SAMPLE]
    reading = codec
    if reading is None:
        # an ASCII-compatible encoding: the declaration (if any) names it; UTF-8 by default
        head = body[:512].decode("latin-1")
        m = re.match(_DECL, head) if head.startswith("<?xml") else None
        named = _declared_encoding(m.group(0)) if m else None
        reading = (_output_codec(named) if named else None) or "utf-8"
        if named and _output_codec(named) is None:
            reading = "latin-1"
    sample = body.decode(reading, errors="replace")
    src = _Source(sample, bom, codec if default is None else None)
    eol = sample.find("\n")
    if eol > 0 and sample[eol - 1] == "\r":
        src.newline = "\r\n"
    pos = 0
    m = re.match(_DECL, sample) if sample.startswith("<?xml") else None
    if m:
        src.declaration = m.group(0)
        pos = m.end()
    # the prolog: blanks, comments and processing instructions up to the root element
    start = pos
    n = len(sample)
    while pos < n:
        c = sample[pos]
        if c in " \t\r\n":
            pos += 1
        elif sample.startswith("<!--", pos):
            end = sample.find("-->", pos + 4)
            if end < 0:
                return src
            pos = end + 3
        elif sample.startswith("<?", pos):
            end = sample.find("?>", pos + 2)
            if end < 0:
                return src
            pos = end + 2
        elif sample.startswith("<!DOCTYPE", pos):
            pos = _doctype_end(sample, pos)
        else:
            break
    if pos < n and sample[pos] == "<" and "\ufffd" not in sample[start:pos]:
        src.prolog = sample[start:pos]
    return src


def _doctype_end(sample: str, pos: int) -> int:
    """The end of the <!DOCTYPE ...> at ``pos``, checked before the parser sees it.

    libvirt reads a document type declaration (and expands internal entities); pciplan
    takes one too, but none that declares or references an entity: nothing is ever
    expanded, fetched or loaded.  A declaration that does not end within the sample
    is refused as well, so that the check is never skipped."""
    line = sample.count("\n", 0, pos) + 1
    i, n = pos + len("<!DOCTYPE"), len(sample)
    in_subset = False
    while i < n:
        c = sample[i]
        if c in "'\"":
            end = sample.find(c, i + 1)
            if end < 0:
                break
            i = end + 1
        elif in_subset and sample.startswith("<!--", i):
            end = sample.find("-->", i + 4)
            if end < 0:
                break
            i = end + 3
        elif in_subset and (sample.startswith("<!ENTITY", i) or
                            (c == "%" and i + 1 < n and (sample[i + 1].isalpha() or sample[i + 1] in "_:"))):
            raise InputError("<!DOCTYPE>: entity declarations (<!ENTITY ...>) and parameter "
                             "entity references are not accepted (pciplan expands no entity)",
                             line=sample.count("\n", 0, i) + 1)
        elif c == "[" and not in_subset:
            in_subset, i = True, i + 1
        elif c == "]" and in_subset:
            in_subset, i = False, i + 1
        elif c == ">" and not in_subset:
            return i + 1
        else:
            i += 1
    raise InputError(f"a <!DOCTYPE> that does not end in the first {_SAMPLE // 1024} KiB is "
                     "not accepted", line=line)


def _parser(encoding: str | None = None, recover: bool = False) -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=False,
                           strip_cdata=False, encoding=encoding, recover=recover)


def _parse(data: str | bytes) -> tuple[etree._ElementTree, _Source]:
    """Parse XML text safely (no DTD loaded, no entities, bounded size): the tree and what the
    parser does not keep (byte-order mark, declaration, prolog, quote style)."""
    if isinstance(data, str):
        if len(data) > MAX_INPUT:
            raise InputError(f"input is larger than {MAX_INPUT // (1024 * 1024)} MiB")
        text = data[1:] if data.startswith("\ufeff") else data
        # already decoded: whatever encoding the declaration names, the text is parsed as
        # the characters it is (lxml refuses str input that declares an encoding)
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("the text contains unpaired surrogate characters") from None
        src = _sniff(raw, "utf-8")
        parser_encoding: str | None = "utf-8"
        parser = _parser(parser_encoding)
    else:
        raw = bytes(data)
        if len(raw) > MAX_INPUT:
            raise InputError(f"input is larger than {MAX_INPUT // (1024 * 1024)} MiB")
        src = _sniff(raw)
        parser_encoding = None
        parser = _parser(parser_encoding)
    _check_element_count(raw, src)
    # (in UTF-16/32 the byte 0x22 or 0x26 may be part of another character: never a false yes)
    src.plain = b'"' not in raw and b"&" not in raw
    try:
        try:
            tree = etree.ElementTree(etree.fromstring(raw, parser))
        except etree.XMLSyntaxError:
            # an undeclared prefix (<qemu:commandline> without xmlns:qemu) is no syntax error
            # to libxml2, which libvirt reads with: the document is otherwise well-formed
            log = parser.error_log
            if not len(log) or any(e.domain_name != "NAMESPACE" for e in log):
                raise
            tree = etree.ElementTree(etree.fromstring(raw, _parser(parser_encoding, recover=True)))
            # ...and libvirt drops what it cannot place in a namespace, as pciplan does: its
            # output stays namespace-well-formed
            for el in [e for e in tree.iter() if isinstance(e.tag, str) and ":" in e.tag]:
                parent = el.getparent()
                if parent is not None and ":" not in str(parent.tag):
                    src.dropped.append(f"<{el.tag}> (line {el.sourceline})")
                    _remove(el)
    except etree.XMLSyntaxError as err:
        line = getattr(err, "lineno", None)
        msg = str(err.msg if hasattr(err, "msg") else err)
        raise InputError(f"not well-formed XML: {msg}", line=line) from None
    except (ValueError, LookupError) as err:  # e.g. an encoding lxml cannot name
        raise InputError(f"not well-formed XML: {err}") from None
    dtd = tree.docinfo.internalDTD
    if dtd is not None and next(dtd.iterentities(), None) is not None:
        # (a DOCTYPE the sample did not show: after a prolog longer than the sample)
        raise InputError("entity declarations (<!ENTITY ...>) are not accepted")
    if _entity_refs(tree.getroot()):
        raise InputError("entity references are not accepted")
    devices = _merge_devices(tree.getroot())
    if devices is not None and len(devices) > MAX_DEVICES and \
            sum(1 for k in devices if isinstance(k.tag, str)) > MAX_DEVICES:
        raise InputError(f"more than {MAX_DEVICES} elements in <devices>: beyond what pciplan "
                         "(or libvirt) can take")
    return tree, src


def _merge_devices(root: etree._Element) -> etree._Element | None:
    """The first <devices>, with the children of any later one moved to its end: libvirt
    reads devices by kind across every <devices> element (OpenNebula writes several) and
    writes them back in one."""
    sections = root.findall("devices")
    if len(sections) < 2:
        return sections[0] if sections else None
    first = sections[0]
    for extra in sections[1:]:
        for child in list(extra):
            _insert(first, len(first), child)  # comments too
        _remove(extra)
    return first


def _check_element_count(raw: bytes, src: _Source) -> None:
    """Refuse, before parsing, a document with more elements than MAX_ELEMENTS
    (counted from its start tags: an upper bound)."""
    if src.codec is not None and not src.codec.startswith("utf-8"):
        text = raw.decode(src.codec, errors="replace")
        tags = text.count("<") - text.count("</") - text.count("<!") - text.count("<?")
    else:
        tags = raw.count(b"<")  # every tag: the bound is only refined when it is crossed
        if tags > MAX_ELEMENTS:
            tags -= raw.count(b"</") + raw.count(b"<!") + raw.count(b"<?")
    if tags > MAX_ELEMENTS:
        raise InputError(f"more than {MAX_ELEMENTS} elements: beyond what pciplan (or libvirt) "
                         "can take")


def _quote_style(src: _Source) -> str:
    sample = src.sample
    return "'" if sample.count("='") > sample.count('="') else '"'


def _output_codec(name: str) -> str | None:
    """The Python codec for an encoding name libxml2 understood, or None."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def load(data: str | bytes) -> Document:
    """Parse a domain XML document.  Raises InputError when it is not one (and PlanError
    for a ``<domain>`` in a namespace, which libvirt refuses as a domain)."""
    tree, src = _parse(data)
    docinfo = tree.docinfo
    root = tree.getroot()
    if not isinstance(root.tag, str) or root.tag != "domain":
        if isinstance(root.tag, str) and etree.QName(root).localname == "domain":
            # (libvirt takes it for a domain and reads none of its elements: a namespace's
            # <name> is not its <name>, its first refusal)
            raise PlanError("missing name information",
                            f"domain in the namespace '{etree.QName(root).namespace}'", root.sourceline)
        raise InputError(f"the root element is <{etree.QName(root).localname if isinstance(root.tag, str) else '?'}>, "
                         "not <domain>")
    decl = src.declaration is not None
    named = docinfo.encoding if isinstance(data, bytes) else \
        (_declared_encoding(src.declaration) if src.declaration else None)
    if src.codec is not None:
        encoding = src.codec
    elif decl and named and _output_codec(named) is not None:
        encoding = named
    else:
        encoding = "UTF-8"
        if decl and named:
            src.declaration = None  # names an encoding Python cannot write: write a UTF-8 one
    # (taken before reading the domain, which may change the tree)
    original = None if decl and src.declaration is None else _original(data, src, tree, encoding)
    return Document(tree, read_domain(root), decl, encoding, _quote_style(src), src.bom,
                    src.declaration, src.prolog, src.plain, src.dropped, src.newline, original)


def rewritten_by_lxml(text: str, root: etree._Element) -> bool:
    """Whether lxml's writing of the unchanged tree of ``root`` (parsed from ``text``)
    differs from the text: then it would also change parts the planner leaves alone, and
    the plan is written by ``splice`` instead."""
    if "&" in text:
        return True  # references: lxml resolves them, or spells them its own way
    single = "'" in text
    if single and '"' in text:
        return True  # (lxml writes one quote style)
    out = etree.tostring(root, encoding="unicode")
    return (out.replace('"', "'") if single else out) not in text


def _original(data: str | bytes, src: _Source, tree: etree._ElementTree,
              encoding: str) -> splice.Original | None:
    """The input's text and nodes, for a document that lxml would not write back as it was
    (and that reads as it is written: no element left out, one <devices>)."""
    if src.dropped:
        return None
    if isinstance(data, str):
        text = data[1:] if data.startswith("\ufeff") else data
    else:
        try:
            text = data[len(src.bom):].decode(encoding)
        except (UnicodeDecodeError, LookupError):
            return None
    if text.count("<devices") > 1 or not rewritten_by_lxml(text, tree.getroot()):
        return None  # (several <devices> are merged in one)
    from . import splice  # (only here: most documents never need it)

    # the root element starts after the prolog (<!DOCTYPE> included), when the sample showed it
    start = None if src.prolog is None else len(src.declaration or "") + len(src.prolog)
    if start is None and tree.docinfo.doctype:
        return None
    return splice.take(text, tree.getroot(), start)


def _entity_refs(root: etree._Element) -> bool:
    return next(root.iter(etree.Entity), None) is not None


# ---- reading ----------------------------------------------------------------------
def _attr_num(el: etree._Element, name: str, what: str) -> int | None:
    v = el.get(name)
    if v is None:
        return None
    n = parsecheck.c_uint(v, 0)
    if n is None:
        raise PlanError(f"Invalid value for attribute '{name}' in element '{el.tag}': '{v}'. "
                        "Expected non-negative integer value", what, el.sourceline)
    return n


def _read_address(el: etree._Element, what: str) -> Address:
    atype = el.get("type") or ""
    if atype != "pci":
        return Address(atype, attrs=dict(el.attrib))
    nums = {k: _attr_num(el, k, what) or 0 for k in ("domain", "bus", "slot", "function")}
    pci = PciAddress(nums["domain"], nums["bus"], nums["slot"], nums["function"])
    mf = el.get("multifunction")
    if mf is not None and mf not in ("on", "off"):
        raise PlanError(f"Invalid value for attribute 'multifunction' in element 'address': '{mf}'.",
                        what, el.sourceline)
    if not pci.is_empty:
        # (a domain other than 0 is the address set's to refuse)
        for name, value, top, fmt in (("bus", pci.bus, BUS_LAST, "bus='0x{:x}', must be <= 0xFF"),
                                      ("slot", pci.slot, SLOT_LAST, "slot='0x{:x}', must be <= 0x1F"),
                                      ("function", pci.function, FUNCTION_LAST, "function=0x{:x}, must be <= 7")):
            if value > top:
                raise PlanError("Invalid PCI address " + fmt.format(value), what, el.sourceline)
    elif pci.function > FUNCTION_LAST:
        raise PlanError(f"Invalid PCI address function=0x{pci.function:x}, must be <= 7", what,
                        el.sourceline)
    zpci = None
    zs = el.findall("zpci")
    z = zs[-1] if zs else None  # (libvirt reads the last one)
    if z is not None:
        uid = _attr_num(z, "uid", what)
        fid = _attr_num(z, "fid", what)
        if uid is not None and not 0 < uid <= 0xFFFF:
            raise PlanError(f"Invalid PCI address uid='0x{uid:04x}', must be > 0x0000 and <= 0xffff",
                            what, z.sourceline)
        if fid is not None and fid > 0xFFFFFFFF:
            raise PlanError(f"Invalid PCI address fid='0x{fid:08x}', must be <= 0xffffffff", what,
                            z.sourceline)
        zpci = Zpci(uid, fid)
    return Address("pci", pci, mf, zpci, dict(el.attrib))


def _children(el: etree._Element) -> dict:
    """The first child element of each tag: ``el.find(tag)`` for every tag in one walk
    (a find costs as much as walking a device's few children)."""
    kids: dict = {}
    for c in el:
        t = c.tag
        if t not in kids:
            kids[t] = c
    return kids


def _attr_of(kid: etree._Element | None, attr: str) -> str | None:
    return kid.get(attr) if kid is not None else None


#: TABLE: what validation needs of a kind of device, read by its module into ``Device.facts``
FACT_READERS: dict[str, Callable[[etree._Element, dict], Any]] = {
    "video": video.read,
    "filesystem": filesystems.read,
    "memory": memdevs.read,
    "audio": audios.read,
    "sound": sounds.read,
    "tpm": tpm.read,
    **{tag: chardevs.read for tag in chardevs.CHR_TAGS | {"rng", "smartcard", "redirdev"}},
}
#: element attributes that only validation needs, kept in ``Device.attrs``
_CHECKED_ATTRS = {"hostdev": ("display",), "disk": ("sgio",), "smartcard": ("mode",),
                  "shmem": ("name",)}


#: a user alias libvirt keeps in a definition: its prefix, then letters, digits, '_' and '-'
_USER_ALIAS = re.compile(r"ua-[A-Za-z0-9_-]*")


def _device(el: etree._Element, position: int) -> Device | None:
    tag = el.tag
    if not isinstance(tag, str) or "}" in tag:
        return None
    if not defaults.read_by_libvirt(tag):  # (libvirt 9.0 reads nothing of it: dropped later)
        dev = Device(tag=tag)
        dev.position, dev.line, dev.ref = position, el.sourceline, el
        return dev
    kids = _children(el)
    get = el.get
    if tag == "controller":
        # a controller without a type is an IDE controller to libvirt
        # (only a PCI controller's <model name> is read; 'none' is none)
        ctype = get("type") or "ide"
        name = _attr_of(kids.get("model"), "name") if ctype == "pci" else None
        dev: Device = Controller(tag=tag, type=ctype, model=get("model"),
                                 model_name=None if name == "none" else name)
        assert isinstance(dev, Controller)
        if not get("type"):
            dev.changed.add("type")  # (written, as libvirt writes it)
        pci_target = parsecheck.check_controller(el, dev.describe)
        idx = get("index")
        if idx is not None:
            n = parsecheck.c_int(idx, 10)
            dev.index = -1 if n is None else n
            if dev.index < 0:
                raise PlanError(f"Invalid value for attribute 'index' in element 'controller': '{idx}'. "
                                "Expected non-negative value", f"controller type='{dev.type}'",
                                el.sourceline)
        t = kids.get("target")
        if t is not None:
            # (only a PCI controller's target attributes are read: another's are dropped)
            dev.target = {} if pci_target is None else pci_target[0]
            if pci_target is not None and pci_target[1]:
                dev.changed.add("target")  # written back as libvirt does: chassis='010' is 8
            node = t.find("node")
            if node is not None and node.text:  # (an empty <node/> is none)
                # a C long, base 10 ('08' is 8; '0x1', '-1' and '1 ' are not nodes)
                n = parsecheck.c_int(node.text or "", 10)
                if n is None or n < 0:
                    raise PlanError("invalid NUMA node in target", dev.describe(), node.sourceline)
                dev.target["node"] = str(n)
        if "master" in kids:
            dev.attrs["master"] = "yes"
        ports = get("ports")
        if ports is not None:
            dev.attrs["ports"] = ports
    else:
        dev = Device(tag=tag)
        dev.type = get("type")
        if tag == "disk":
            if "source" not in kids and dev.type is not None:
                dev.type = "file"  # (libvirt's parser: a disk without a <source> is a file one)
            t = kids.get("target")
            dev.bus = t.get("bus") if t is not None else None
            dev.model = get("model")
            dev.attrs["device"] = get("device", "disk")
            if "wwn" in kids:
                dev.attrs["wwn"] = (kids["wwn"].text or "").strip()
            drv = kids.get("driver")
            name = drv.get("name") if drv is not None else None
            if name is not None:
                dev.attrs["driver_name"] = name
            dev.target = dict(t.items()) if t is not None else {}  # (as dict(attrib), faster)
            dst = dev.target.get("dev")
            if dst is not None and dst.startswith(XEN_TARGET_PREFIX):  # (libvirt's post-parse)
                dev.target["dev"] = dst[len(XEN_TARGET_PREFIX):]
                dev.changed.add("target")  # (written back without it, as libvirt does)
            dev.disk = _disk_facts(el, kids, dev.type)
        elif tag == "interface":
            if dev.type is None:
                dev.set("type", "user")  # (libvirt's reading of no type, written as it writes it)
            dev.model = _attr_of(kids.get("model"), "type") or None  # (type='' is no model)
            if dev.model is not None:
                known = devices.NIC_MODEL_SPELLING.get(dev.model.lower(), dev.model)
                if known != dev.model:
                    dev.set("model", known)
            mac = _attr_of(kids.get("mac"), "address")
            if mac:
                dev.attrs["mac"] = mac
            if dev.type == "hostdev" and "source" in kids:
                src = kids["source"].find("address")
                if src is not None:
                    dev.source = dict(src.attrib)
                if (src is None or src.get("type") is None) and kids["source"].find("vendor") is not None:
                    dev.source = {**(dev.source or {}), "type": "usb"}  # (libvirt's default)
            dev.net = interfaces.read_facts(el, kids)
        elif tag == "video":
            m = kids.get("model")
            dev.model = (m.get("type") or None) if m is not None else None  # (type='': none)
            if m is not None and m.get("primary"):
                dev.attrs["primary"] = m.get("primary", "")
        elif tag == "shmem":
            dev.model = _attr_of(kids.get("model"), "type")
        elif tag == "input":
            dev.bus = parsecheck.input_bus(el)
            dev.model = get("model")
            if "source" in kids:  # (an evdev or passthrough input's host device)
                dev.source = dict(kids["source"].attrib)
        elif tag in ("serial", "console", "channel"):
            t = kids.get("target")
            dev.target = dict(t.attrib) if t is not None else {}
            if tag != "channel" and dev.target.get("type") == "none":
                del dev.target["type"]  # (the enum's 'none' is no type: libvirt chooses one)
            model = t.find("model") if t is not None else None
            if model is not None and model.get("name") not in (None, "", "none"):  # ('none': none)
                dev.attrs["target_model"] = model.get("name", "")
        elif tag == "filesystem":
            dev.model = get("model")
            if get("accessmode"):  # (accessmode='' is the default)
                dev.attrs["accessmode"] = get("accessmode", "")
            drv = kids.get("driver")
            if drv is not None and drv.get("type"):
                dev.attrs["driver"] = drv.get("type", "")
        elif tag == "hostdev":
            mode = get("mode", "subsystem")
            dev.attrs["mode"] = "subsys" if mode == "subsystem" else mode
            dev.model = get("model")
            dev.hostdev = hostdevs.read_facts(el, kids)
            if "source" in kids:
                src = kids["source"].find("address")
                if src is not None:
                    dev.source = dict(src.attrib)
                elif dev.type == "pci" and mode == "subsystem":
                    # no host address: libvirt reads (and writes back) 0000:00:00.0
                    dev.source = _pci_spelling(PciAddress(0, 0, 0, 0))
                    dev.changed.add("source")
        elif tag == "iommu":
            dev.model = get("model")
            drv = kids.get("driver")
            for name in devices.IOMMU_DRIVER_OPTIONS:  # (kept when given: a number 0 is none)
                value = drv.get(name) if drv is not None else None
                if value and (name != "aw_bits" or parsecheck.c_uint(value, 10) != 0):
                    dev.attrs[name] = value
        else:
            dev.model = get("model")
    rom = kids.get("rom")
    if rom is not None and any(rom.get(k) is not None for k in ("enabled", "bar", "file")):
        dev.attrs["rom"] = "yes"  # (an empty <rom/> tunes nothing)
    if "acpi" in kids and kids["acpi"].get("index"):
        dev.attrs["acpi_index"] = kids["acpi"].get("index", "")
    if tag == "controller" and "pcihole64" in kids and \
            controllers.reads_pcihole64(get("type"), get("model")):
        dev.attrs["pcihole64"] = (kids["pcihole64"].text or "").strip()
    for name in _CHECKED_ATTRS.get(tag, ()):
        value = get(name)
        if value is not None:
            dev.attrs[name] = value
    if tag == "shmem":
        for child in ("size", "server"):
            if child in kids:
                dev.attrs[child] = "yes"
    elif tag == "video":
        if "model" in kids and kids["model"].get("ram") is not None:
            dev.attrs["ram"] = kids["model"].get("ram", "")
        accel = kids["model"].find("acceleration") if "model" in kids else None
        if accel is not None:
            for k in ("accel2d", "accel3d"):
                if accel.get(k) is not None:
                    dev.attrs[k] = accel.get(k, "")
    elif tag == "disk" and "driver" in kids:
        drv = kids["driver"]
        for k in ("event_idx", "ioeventfd"):
            value = drv.get(k)
            if value is not None:
                dev.attrs[k] = value
    elif tag == "memory" and "uuid" in kids and "".join(kids["uuid"].itertext()):
        dev.attrs["uuid"] = "yes"   # (an empty <uuid/> is none)
    elif tag == "memballoon":
        for k in parsecheck.MEMBALLOON_SWITCHES:  # (checked against the emulator's properties)
            if get(k):
                dev.attrs[k] = get(k)
    elif tag == "tpm" and "backend" in kids:
        dev.attrs["backend"] = kids["backend"].get("type", "")
    elif tag == "vsock" and "cid" in kids and kids["cid"].get("address") is not None:
        dev.attrs["cid"] = kids["cid"].get("address", "")
    if tag == "disk" or tag == "controller":
        drv = kids.get("driver")
        if drv is not None:
            value = drv.get("iothread")
            if value is not None:
                dev.attrs["iothread"] = value
            if tag == "controller":
                for k in devices.VIRTIO_SCSI_DRIVER_OPTIONS:
                    value = drv.get(k)
                    if value is not None:
                        dev.attrs["driver_" + k] = value
    # (libvirt reads a <boot> of the bootable kinds only, an <alias> of the kinds with
    # device info only: the others' are ignored, neither ordered nor compared)
    boot = kids.get("boot") if tag in parsecheck.BOOTABLE else None
    if boot is not None:
        order = boot.get("order")
        if order is not None:
            dev.attrs["boot"] = order
    alias = kids.get("alias") if tag in parsecheck.DEVICE_INFO_TAGS else None
    if alias is not None:
        name = alias.get("name")
        if name is not None and _USER_ALIAS.fullmatch(name):
            # only user aliases are part of a definition (libvirt names the others at start,
            # and drops one of other characters unread)
            dev.attrs["alias"] = name
    if tag == "disk" and "source" in kids:
        src = kids["source"]
        for key in ("file", "dev", "dir", "name", "volume"):
            value = src.get(key)
            if value is not None:
                dev.attrs["source"] = value
                break
    dev.position = position
    dev.line = el.sourceline
    if (tag == "memballoon" or (tag == "controller" and dev.type == "usb")) and \
            ("address" in kids or "acpi" in kids) and get("model") == "none":
        # no device to QEMU: libvirt does not even read its address (and drops it), nor its ACPI index
        if "address" in kids:
            dev.changed.add("address")
        kids = {k: v for k, v in kids.items() if k not in ("address", "acpi")}
    if "model" in kids and tag not in _MODEL_CHILD_READ:
        # libvirt reads no <model> child here (the model is an attribute): dropped unread
        for m in el.findall("model"):
            _remove(m)
        kids = {k: v for k, v in kids.items() if k != "model"}
    parsecheck.check_device(el, dev.describe, kids)
    reader = FACT_READERS.get(tag)
    if reader is not None:
        dev.facts = reader(el, kids)
    if tag == "hostdev" and dev.source:
        spelled = _canonical_source(dev.type, dev.source)
        if spelled is not None and spelled != dev.source:
            dev.source = spelled
            dev.changed.add("source")  # (written back as libvirt writes it)
    if "acpi" in kids and kids["acpi"].get("index") is not None and tag in parsecheck.DEVICE_INFO_TAGS:
        # (read just before the address)
        parsecheck.nonzero_uint(kids["acpi"], "index", dev.describe)
    addr_el = kids.get("address")
    dev.ref = el
    if addr_el is not None:
        dev.address = a = _read_address(addr_el, dev.describe())
        if a.is_pci and not _canonical(addr_el, a.pci):
            dev.changed.add("address")  # written back as libvirt does: '010' is slot 0x08
    if tag in parsecheck.VIRTIO_AFTER_ADDRESS:
        parsecheck.check_driver_after_address(el, dev.describe, kids)
    if tag == "interface":
        interfaces.check_parse(el, dev.describe, kids)  # (what libvirt reads after the address)
    return dev


#: a disk's children that give none of the facts below but the chain's (most disks have only these)
_PLAIN_DISK_CHILDREN = frozenset({"driver", "source", "target", "address", "readonly", "boot",
                                  "alias", "backingStore", "encryption", "auth"})



#: the prefix of an old Xen driver's disk target name, which libvirt drops
XEN_TARGET_PREFIX = "ioemu:"

def _disk_facts(el: etree._Element, kids: dict, dtype: str | None) -> disks.DiskFacts:
    """What validation needs of a ``<disk>`` (``disks``): read once, with the disk."""
    f = disks.DiskFacts(device=el.get("device") or "disk", children=frozenset(kids))
    if len(el.attrib) > 2:  # (type and device are the usual two)
        f.attrs = {k: v for k, v in el.items() if k in disks.CHECKED_ATTRS}
    drv = kids.get("driver")
    if drv is not None:
        f.driver = dict(drv.items())  # (as dict(attrib), at half the cost)
    src = kids.get("source")
    if src is not None:
        f.source = dict(src.items())
        if len(src):
            f.source_children = frozenset(c.tag for c in src if isinstance(c.tag, str))
            if "slices" in f.source_children:
                f.storage_slice = sources.storage_slice(src) is not None
    if not kids.keys() <= _PLAIN_DISK_CHILDREN:
        for name in ("wwn", "vendor", "product", "serial"):
            if name in kids:
                text = kids[name].xpath("string()")
                if text:  # (libvirt reads an empty one as none)
                    f.text[name] = text
        for name in ("geometry", "blockio", "transient"):
            if name in kids:
                f.child_attrs[name] = dict(kids[name].items())
        if "iotune" in kids:
            texts = {k: c.xpath("string()") for k, c in parsecheck.iotune_elements(el).items()}
            # (an empty text is none; the parser refused numbers it cannot read)
            f.iotune = {k: parsecheck.c_uint(v, 10, parsecheck.ULLONG_MAX) or 0
                        for k, v in texts.items() if v and k != "group_name"}
            f.iotune_group = texts.get("group_name") or None
    # libvirt's post-parse gives a disk without a format raw (a volume's comes from its pool)
    fmt = f.driver.get("type") or ("raw" if dtype != "volume" else None)
    readonly = "readonly" in kids or f.device == "cdrom"
    chain = [disks.storage_layer(dtype, "raw" if fmt == "aio" else fmt, readonly, src, kids, drv)]
    bs = kids.get("backingStore")
    while bs is not None and bs.get("type") is not None:  # (checked by the parser)
        form = bs.find("format")
        chain.append(disks.storage_layer(bs.get("type"), form.get("type") if form is not None else None, True,
                              bs.find("source"), cache=form))
        bs = bs.find("backingStore")
    f.chain = tuple(chain)
    return f


#: the devices whose <model> child libvirt reads (of a controller: the pci <model name>)
_MODEL_CHILD_READ = frozenset({"interface", "video", "shmem", "controller"})
#: the devices pciplan may give a model, written as their ``model`` attribute
_MODEL_ATTRIBUTE = frozenset({"memballoon", "rng", "sound", "watchdog", "vsock", "panic"})


def _canonical_source(htype: str | None, source: dict[str, str]) -> dict[str, str] | None:
    """A host device's source address as libvirt writes it back, None where pciplan keeps
    it as written: of a PCI device the four numbers (C unsigned, base 0: '012' is 10),
    of a mediated device its UUID (lower case, dashed); nothing else."""
    if htype == "pci":
        n = [parsecheck.c_uint(source.get(k) or "0", 0) or 0 for k in ("domain", "bus", "slot", "function")]
        return _pci_spelling(PciAddress(*n))
    if htype == "mdev" and source.get("uuid"):
        return {"uuid": sources.uuid_text(source["uuid"])}
    return None


def _pci_spelling(p: PciAddress) -> dict[str, str]:
    """The numbers of a PCI address as libvirt writes them."""
    return {"domain": f"0x{p.domain:04x}", "bus": f"0x{p.bus:02x}", "slot": f"0x{p.slot:02x}",
            "function": f"0x{p.function:x}"}


#: libvirt's spelling of bus and slot numbers, and of functions
_BYTE_TEXT = [f"0x{i:02x}" for i in range(256)]
_FUNCTION_TEXT = [f"0x{i:x}" for i in range(8)]


def _canonical(el: etree._Element, pci: PciAddress) -> bool:
    """The address is spelled as libvirt writes it (so any reader gets the same numbers)."""
    get = el.get
    if pci.is_empty:
        return all(get(k) is None for k in ("domain", "bus", "slot", "function"))
    return (get("bus") == _BYTE_TEXT[pci.bus] and get("slot") == _BYTE_TEXT[pci.slot]
            and get("function") == _FUNCTION_TEXT[pci.function]
            and get("domain") == ("0x0000" if not pci.domain else f"0x{pci.domain:04x}"))


def _iothread_ids(root: etree._Element) -> frozenset[int]:
    """The guest's I/O thread ids: those of <iothreadids>, and as many more as
    <iothreads> counts, numbered from 1 where free (libvirt's post-parse)."""
    ids: set[int] = set()
    for t in root.iterfind("iothreadids/iothread"):
        n = parsecheck.c_uint(t.get("id") or "", 10)
        if n is not None:
            ids.add(n)
    count_el = root.find("iothreads")
    count = parsecheck.c_uint((count_el.text or "").strip(), 10) if count_el is not None else None
    n = 1
    while count is not None and len(ids) < count:
        ids.add(n)
        n += 1
    return frozenset(ids)


def _read_devices(dom: Domain, devs: etree._Element) -> None:
    """Every device, in document order; of the parser's complaints, the one libvirt makes
    first (it reads the devices kind by kind: ``parsecheck.DEVICE_PARSE_ORDER``)."""
    errors: list[tuple[tuple[int, int], PlanError]] = []  # (where the parser meets it, error)
    singles: dict[str, list[tuple[int, Device | None]]] = {}
    pos = 0
    for el in devs:
        tag = el.tag
        if not isinstance(tag, str):
            continue
        pos += 1
        try:
            if tag == "graphics":
                parsecheck.check_device(el, "graphics", {})
                dom.graphics += 1
                dom.spice = dom.spice or el.get("type") == "spice"
                dom.graphics_facts.append(graphics.read(el))
                continue
            d = _device(el, pos)
        except PlanError as err:
            errors.append((parsecheck.parse_rank(tag, pos), err))
            d = None
        if tag in parsecheck.SINGLE_DEVICES:
            singles.setdefault(tag, []).append((pos, d))
        if d is not None:
            dom.devices.append(d)
    usb_error = _usb_controllers_error(dom)
    if usb_error is not None:
        errors.append(usb_error)
    if any(isinstance(d, Controller) and d.type == "usb" and d.model == "none" for d in dom.devices):
        # USB disabled in the XML itself: the parser refuses USB inputs, hubs and host
        # devices as it reads them
        for d in dom.devices:
            if (d.tag == "input" and d.bus == "usb") or (d.tag == "hub" and d.type == "usb") or \
                    _usb_hostdev_to_parser(d):
                errors.append((parsecheck.parse_rank(d.tag, d.position or 0), PlanError(
                    _USB_DISABLED[d.tag], d.describe(), kind="unsupported")))
    for tag, found in singles.items():
        limit = parsecheck.DEVICE_LIMITS.get(tag, 1)
        if len(found) > limit:  # (counted before any of them is read)
            message, kind = parsecheck.SINGLE_DEVICES[tag]
            second = found[limit][1]
            errors.append((parsecheck.parse_rank(tag, 0),
                           PlanError(message, second.describe() if second else tag, kind=kind)))
    if errors:
        raise min(errors, key=lambda e: e[0])[1]


#: the parser's refusal of a USB device when a USB controller of model 'none' is there
_USB_DISABLED = {"input": "Can't add USB input device. USB bus is disabled",
                 "hub": "Can't add USB hub: USB is disabled for this domain",
                 "hostdev": "Can't add host USB device: USB is disabled in this host"}


def _usb_hostdev_to_parser(d: Device) -> bool:
    """A host device libvirt's parser takes for a USB one: a USB subsystem, and (its
    capabilities' type read where the subsystem's would be) a storage capability."""
    if d.tag != "hostdev":
        return False
    mode = d.attrs.get("mode")
    return (mode == "subsys" and d.type == "usb") or (mode == "capabilities" and d.type == "storage")


def _usb_controllers_error(dom: Domain) -> tuple[tuple[int, int], PlanError] | None:
    """The parser's refusals of the USB controllers as written: another one next to a
    model 'none' (as it reads each), or only companions (once all are read)."""
    usb = [d for d in dom.devices if isinstance(d, Controller) and d.type == "usb"]
    none = other = False
    for c in usb:
        if none or (c.model == "none" and other):
            return parsecheck.parse_rank("controller", c.position or 0), PlanError(
                "Can't add another USB controller: USB is disabled for this domain", c.describe(),
                kind="unsupported")
        none, other = none or c.model == "none", other or c.model != "none"
    # a companion (an ICH9 UHCI is one even without <master>) needs a controller that is
    # none: libvirt 9.0 does not ask for one of the same index (a model 'none' with a
    # <master> asks for nothing)
    companions = [c for c in usb if defaults.is_companion(c)]
    if companions and len(companions) == len(usb) and any(c.model != "none" for c in usb):
        return parsecheck.parse_rank("controller", 1 << 30), PlanError(
            "No master USB controller specified", companions[0].describe())
    return None


def read_domain(root: etree._Element) -> Domain:
    conf = parsecheck.check_domain(root)
    ostype = root.find("os/type")
    arch = ostype.get("arch") if ostype is not None else None
    machine = ostype.get("machine") if ostype is not None else None
    arch = arch or "x86_64"
    if arch not in machines.ARCHES:
        # (one with no emulator here is refused as libvirt does, when the emulator is looked
        # for; one with the emulator of another arch once laid out, as the emulator's arch)
        emulator = root.xpath("string(devices/emulator[1])")
        if emulator in machines.UNPROBED_EMULATORS:
            raise PlanError(UNKNOWN_CAUSE, "devices/emulator", kind="internal")
        if not (arch in machines.NO_EMULATOR_ARCHES and (not emulator or emulator in machines.EMULATOR_MACHINES)):
            raise PlanError(f"unsupported architecture '{arch}'", "os/type",
                            ostype.sourceline if ostype is not None else None, kind="unsupported")
    dom = Domain(arch=arch, machine=machine or machines.default_machine(arch) or "",
                 virt_type=root.get("type", "qemu"), machine_omitted=not machine)
    dom.conf = conf
    dom.iothreads = _iothread_ids(root)
    dom.memory = parsecheck.memory_sizes(root)
    dom.max_memory = root.find("maxMemory") is not None
    features = root.find("features")
    if features is not None:
        for f in features:
            if isinstance(f.tag, str):
                # its attributes, and its child elements' names
                dom.features[f.tag] = dict(f.attrib, **{k.tag: "" for k in f if isinstance(k.tag, str)})
        tb_cache = features.find("tcg/tb-cache")
        if tb_cache is not None:
            dom.tb_cache = parsecheck.size_bytes(tb_cache)
    pm = root.find("pm")
    dom.pm = frozenset(k.tag for k in pm if isinstance(k.tag, str)) if pm is not None else frozenset()
    vcpu = root.find("vcpu")
    if vcpu is not None:
        dom.max_vcpus = parsecheck.c_uint((vcpu.text or "").strip(), 10) or 1
    cells = root.findall("cpu/numa[1]/cell")
    dom.numa_cells = len(cells)
    access = root.find("memoryBacking/access")
    mode = access.get("mode") if access is not None else None
    # guest memory a vhost-user process may map: every NUMA cell's (its own access mode,
    # else the domain's), or the domain's when there are no cells
    dom.shared_memory = all((c.get("memAccess") or mode) == "shared" for c in cells) if cells \
        else mode == "shared"
    os_el = root.find("os")
    if os_el is not None:
        loader = os_el.find("loader")
        dom.uefi = os_el.get("firmware") == "efi" or (loader is not None and loader.get("type") == "pflash")
        dom.secure_boot = loader is not None and loader.get("secure") == "yes"
        dom.firmware_auto = bool(os_el.get("firmware"))  # (firmware='' is none)
        if loader is not None:
            dom.loader = dict(loader.attrib)
            if (loader.text or "").strip():
                dom.loader["path"] = loader.text.strip()
        dom.os_boot = os_el.find("boot") is not None
    smm = root.find("features/smm")
    dom.smm = smm is not None and smm.get("state", "on") == "on"
    topology = root.find("cpu/topology")
    if topology is not None:
        counts = [parsecheck.c_uint(topology.get(k) or "1", 10) or 0
                  for k in ("sockets", "dies", "cores", "threads")]
        dom.topology_vcpus = counts[0] * counts[1] * counts[2] * counts[3]
    dom.acpi = root.find("features/acpi") is not None
    ioapic = root.find("features/ioapic")
    dom.ioapic = ioapic.get("driver") if ioapic is not None else None
    devs = root.find("devices")
    if devs is not None:
        _read_devices(dom, devs)
    guestconf.check_after_devices(root)
    return dom


class DeviceDocument(Value):
    """A parsed single-device document (``<interface>...</interface>``) for hot-plug."""

    tree: etree._ElementTree
    device: Device
    quote: str = '"'
    newline: str = "\n"
    #: the input's text and nodes when lxml would rewrite them (as ``Document.original``)
    original: splice.Original | None = None

    def __init__(self, tree, device, quote='"', newline="\n", original=None) -> None:
        self.tree = tree
        self.device = device
        self.quote = quote
        self.newline = newline
        self.original = original


def load_device(data: str | bytes) -> DeviceDocument:
    """Parse a document whose root is one ``<devices>`` child.  Raises InputError otherwise."""
    tree, src = _parse(data)
    root = tree.getroot()
    name = etree.QName(root).localname if isinstance(root.tag, str) else "?"
    if name == "domain":
        raise InputError("the root element is <domain>, not a device element (a DOMAIN was given "
                         "where a DEVICE was expected?)")
    if (name not in _RANK and name != "nvram") or name == "emulator" or "}" in str(root.tag):
        raise InputError(f"the root element is <{name}>, not a device element (<interface>, <disk>, "
                         "<hostdev>, ...)")
    original = _original(data, src, tree, tree.docinfo.encoding or "UTF-8")
    dev = _device(root, 1)
    assert dev is not None
    return DeviceDocument(tree, dev, _quote_style(src), src.newline, original)


def device_tostring(doc: DeviceDocument) -> str:
    """The device document with the planner's changes to its address written in."""
    root = doc.tree.getroot()
    dev = doc.device
    _write_source_and_dropped_address(dev, root)
    if "address" in dev.changed and dev.address is not None:
        a = root.find("address")
        if a is None:
            compact = not any("\n" in (t or "") for t in [root.text, *(k.tail for k in root)])
            a = etree.SubElement(root, "address") if compact else _sub(root, "address", before=())
        _fmt_address(a, dev.address)
    body = _spliced(doc.original, root, doc.quote, doc.newline)
    if body is not None:
        return body
    out = etree.tostring(root, encoding="unicode")
    out = requote(out) if doc.quote == "'" else out
    return out.replace("\n", doc.newline) if doc.newline != "\n" else out


# ---- writing -----------------------------------------------------------------------
def _address_attrs(a: Address) -> dict[str, str]:
    """The attributes of ``<address>`` for ``a``, in the order libvirt writes them."""
    if a.is_pci:
        # libvirt writes no numbers for an empty address (domain, bus and slot 0: a function
        # there is dropped), its multifunction and zPCI ids still
        attrs = {"type": a.type} if a.pci.is_empty else {"type": a.type, **_pci_spelling(a.pci)}
        if a.multifunction:
            attrs["multifunction"] = a.multifunction
        return attrs
    attrs = {"type": a.type}
    attrs.update((k, v) for k, v in a.attrs.items() if k != "type")
    return attrs


def _zpci_attrs(z: Zpci) -> dict[str, str]:
    attrs = {}
    if z.uid is not None:
        attrs["uid"] = f"0x{z.uid:04x}"
    if z.fid is not None:
        attrs["fid"] = f"0x{z.fid:08x}"
    return attrs


def _fmt_address(el: etree._Element, a: Address) -> None:
    for k in list(el.attrib):
        del el.attrib[k]
    for k, v in _address_attrs(a).items():
        el.set(k, v)
    if a.is_pci:
        zs = el.findall("zpci")
        for extra in zs[:-1]:  # (libvirt reads the last one, and writes only it)
            el.remove(extra)
        z = zs[-1] if zs else None
        if a.zpci is not None:
            if z is None:
                z = _sub(el, "zpci")
            for k, v in _zpci_attrs(a.zpci).items():
                z.set(k, v)


def _indent_of(el: etree._Element) -> str:
    prev = el.getprevious()
    text = prev.tail if prev is not None else (el.getparent().text if el.getparent() is not None else None)
    if text and text.strip() == "" and "\n" in text:
        return text[text.rindex("\n") + 1:]
    return ""


def _indent_step(el: etree._Element) -> str:
    """The document's indentation step: how much deeper than ``el`` its children sit, else
    than the nearest ancestor with indented children (a tab, four spaces...); two spaces
    when the document shows none."""
    while el is not None:
        up = el.getparent()
        own = _indent_of(el) if up is not None else ""
        for first in el:
            if isinstance(first.tag, str):
                inner = _indent_of(first)
                if len(inner) > len(own) and inner.startswith(own):
                    return inner[len(own):]
                break
        el = up
    return "  "


def _child_indent(parent: etree._Element) -> tuple[str, str]:
    """(indent of children, indent of the parent's closing tag)."""
    # only the first element child matters: no list of all of them (this runs for
    # every element added to <devices>, which may have a thousand children)
    own = _indent_of(parent) if parent.getparent() is not None else ""
    for first in parent:
        if isinstance(first.tag, str):
            return _indent_of(first) or own + _indent_step(parent), own
    return own + _indent_step(parent), own


def _compact(parent: etree._Element) -> bool:
    """Whether a device's children are written on its line, with nothing between them
    (``<disk ...><driver .../><target .../></disk>``): a child added there goes the same way.
    (Devices themselves go one per line.)"""
    return len(parent) > 0 and parent[-1].tail is None and "\n" not in (parent.text or "") \
        and parent.tag not in ("devices", "domain")


def _insert(parent: etree._Element, index: int, child: etree._Element) -> etree._Element:
    if _compact(parent):
        parent.insert(index, child)
        return child
    inner, outer = _child_indent(parent)
    count = len(parent)
    if not count:
        parent.text = "\n" + inner
        child.tail = "\n" + outer
        parent.append(child)
        return child
    if index >= count:
        last = parent[-1]
        child.tail = last.tail if last.tail is not None else "\n" + outer
        last.tail = "\n" + inner
        parent.append(child)
    else:
        child.tail = "\n" + inner
        parent.insert(index, child)
    return child


def _insert_after(parent: etree._Element, after: etree._Element, child: etree._Element) -> None:
    """``_insert(parent, parent.index(after) + 1, child)`` without walking the children
    (a thousand of them in <devices> of a big guest, for every controller added)."""
    inner, outer = _child_indent(parent)
    if after.getnext() is None:  # after is the last child: append
        child.tail = after.tail if after.tail is not None else "\n" + outer
        after.tail = "\n" + inner
        parent.append(child)
    else:
        child.tail = "\n" + inner
        after.addnext(child)


def _sub(parent: etree._Element, tag: str, before: tuple[str, ...] = ("address",)) -> etree._Element:
    child = etree.Element(tag)
    kids = list(parent)
    pos = len(kids)
    for i, k in enumerate(kids):
        if k.tag in before:
            pos = i
            break
    return _insert(parent, pos, child)


def _write_model(dev: Device, el: etree._Element) -> None:
    if isinstance(dev, Controller) or dev.tag in _MODEL_ATTRIBUTE:
        if dev.model is not None:
            el.set("model", dev.model)
        return
    m = el.find("model")
    if m is None:
        m = _sub(el, "model", before=("address", "alias", "boot", "rom", "driver", "acpi"))
    m.set("type", dev.model or "")


def _set_index(el: etree._Element, index: int) -> None:
    """``index`` goes right after ``type``, where libvirt writes it."""
    items = [(k, v) for k, v in el.attrib.items() if k != "index"]
    el.attrib.clear()
    done = False
    for k, v in items:
        el.set(k, v)
        if k == "type":
            el.set("index", str(index))
            done = True
    if not done:
        el.set("index", str(index))


def _write_changes(dev: Device, el: etree._Element, batch: _Batch | None = None) -> None:
    if "index" in dev.changed and isinstance(dev, Controller):
        _set_index(el, dev.index if dev.index is not None else 0)
    if "model" in dev.changed:
        _write_model(dev, el)
    if "type" in dev.changed and dev.type is not None:
        if el.get("type") is None and len(el.attrib):  # (first, where libvirt writes it)
            items = list(el.attrib.items())
            el.attrib.clear()
            el.attrib.update([("type", dev.type), *items])
        else:
            el.set("type", dev.type)
    if isinstance(dev, Controller):
        if "model_name" in dev.changed and dev.model_name is not None:
            m = el.find("model")
            if m is None:
                m = _sub(el, "model", before=("target", "address", "alias", "driver"))
            m.set("name", dev.model_name)
        if "target" in dev.changed:
            t = el.find("target")
            if t is None:
                t = _sub(el, "target", before=("address", "alias"))
            for k in list(t.attrib):
                if k not in dev.target:
                    del t.attrib[k]
            for k, v in dev.target.items():
                if k == "node":
                    continue
                t.set(k, v)
    elif dev.tag == "disk" and "target" in dev.changed:
        t = el.find("target")
        if t is not None and "dev" in dev.target:
            t.set("dev", dev.target["dev"])
    if "host" in dev.changed:
        _write_host_side(dev, el)
    _write_source_and_dropped_address(dev, el)
    if "address" in dev.changed and dev.address is not None:
        a = None
        for k in el:
            if k.tag == "address":
                a = k
                break
        if a is not None:
            _fmt_address(a, dev.address)
        elif batch is not None and (not dev.address.is_pci or dev.address.zpci is None):
            batch.append(el, _address_text(dev.address))
        else:
            _fmt_address(_sub(el, "address", before=()), dev.address)


def _write_host_side(dev: Device, el: etree._Element) -> None:
    """A character device's ``<source>`` elements written anew from its facts (a console
    written as the serial port it stands for)."""
    for k in list(el):
        if k.tag in ("source", "protocol"):
            _remove(k)
    facts = dev.facts
    for i, attrs in enumerate(getattr(facts, "sources", ())):
        src = _sub(el, "source", before=("log", "target", "address", "alias"))
        src.attrib.update(attrs)
        if i == 0 and getattr(facts, "reconnect", None) is not None:
            etree.SubElement(src, "reconnect").attrib.update(facts.reconnect)
    if getattr(facts, "protocol", None) is not None:
        _sub(el, "protocol", before=("log", "target", "address", "alias")).attrib.update(facts.protocol)


def _write_source_and_dropped_address(dev: Device, el: etree._Element) -> None:
    """A host address respelled (``source``), an address the device cannot keep removed."""
    if "source" in dev.changed:
        src = el.find("source/address")
        if src is None:
            src = _sub(el.find("source"), "address")
        src.attrib.clear()
        src.attrib.update(dev.source)
    if "address" in dev.changed and dev.address is None:
        for k in el:
            if k.tag == "address":
                _remove(k)
                if not len(el) and el.text is not None and not el.text.strip():
                    el.text = None  # <memballoon model='none'/>, as libvirt writes it
                break


def _address_text(a: Address) -> str:
    """``<address .../>`` as :func:`_fmt_address` writes it (without zPCI)."""
    if a.is_pci and not a.pci.is_empty:
        # a PCI address is numbers and on/off: nothing to escape; the numbers spelled as
        # _pci_spelling does, from tables (a big guest writes a thousand of them)
        p = a.pci
        text = (f"<address type='pci' domain='{_domain_text(p.domain)}' bus='{_byte_text(p.bus)}' "
                f"slot='{_byte_text(p.slot)}' function='{_function_text(p.function)}'")
        if a.multifunction:
            text += f" multifunction='{a.multifunction}'"
        return text + "/>"
    return _start_tag("address", _address_attrs(a)) + "/>"


def _domain_text(n: int) -> str:
    return "0x0000" if n == 0 else f"0x{n:04x}"


def _byte_text(n: int) -> str:
    return _BYTE_TEXT[n] if 0 <= n < 256 else f"0x{n:02x}"


def _function_text(n: int) -> str:
    return _FUNCTION_TEXT[n] if 0 <= n < 8 else f"0x{n:x}"


_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;",
                          "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def _start_tag(tag: str, attrs: dict[str, str], escape: bool = True) -> str:
    """``<tag a='v' ...`` (not closed), values escaped so that parsing gives them back."""
    if escape:
        return "<" + tag + "".join([f" {k}='{v.translate(_ESCAPES)}'" for k, v in attrs.items()])
    return "<" + tag + "".join([f" {k}='{v}'" for k, v in attrs.items()])


class _Batch:
    """Elements to append as last children, all made by one parse when flushed.

    An element made from Python costs ~3 us; parsed as one of many, well under one: a
    big guest gets a thousand new <address> elements.  Each append is laid out (the
    indentation around it) when it is asked for, exactly as :func:`_insert` would; only
    the making of the element waits.
    """

    def __init__(self) -> None:
        self.parents: list[etree._Element] = []
        self.tails: list[str | None] = []
        self.texts: list[str] = []

    def append(self, parent: etree._Element, text: str) -> None:
        last = parent[-1] if len(parent) else None
        if last is not None and last.tail is not None:
            # the usual case: the parent's own indentation (``outer``) is not needed
            for first in parent:
                if isinstance(first.tag, str):
                    inner = _indent_of(first)
                    if inner:
                        self.parents.append(parent)
                        self.tails.append(last.tail)
                        self.texts.append(text)
                        last.tail = "\n" + inner
                        return
                    break
        if _compact(parent):
            tail = None
        else:
            inner, outer = _child_indent(parent)
            if not len(parent):
                parent.text = "\n" + inner
                tail = "\n" + outer
            else:
                last = parent[-1]
                tail = last.tail if last.tail is not None else "\n" + outer
                last.tail = "\n" + inner
        self.parents.append(parent)
        self.tails.append(tail)
        self.texts.append(text)

    def flush(self) -> None:
        if not self.texts:
            return
        made = etree.fromstring("<batch>" + "".join(self.texts) + "</batch>", _parser())
        for parent, tail, child in zip(self.parents, self.tails, list(made)):
            child.tail = tail
            parent.append(child)
        self.parents, self.tails, self.texts = [], [], []


def _new_element(dev: Device) -> etree._Element:
    """A device the planner added, with every field it set, made in one parse.

    It is what writing the fields one by one onto an empty element gives (the same
    attributes in the same order; model, target and address children in that
    order), without the cost of making each element and attribute from Python.
    Indentation is added once the element has its place (:func:`_indent_new`).
    """
    attrs: dict[str, str] = {}
    is_controller = isinstance(dev, Controller)
    if is_controller:
        attrs["type"] = dev.type or ""
        attrs["index"] = str(dev.index)
        if dev.model is not None and not (dev.type == "sata" or dev.type == "ide"):
            attrs["model"] = dev.model
    elif dev.tag == "memballoon":
        attrs["model"] = dev.model or "virtio"
    changed = dev.changed
    model: dict[str, str] | None = None
    target: dict[str, str] | None = None
    if "model" in changed:
        if is_controller or dev.tag in _MODEL_ATTRIBUTE:
            if dev.model is not None:
                attrs["model"] = dev.model
        else:
            model = {"type": dev.model or ""}
    if "type" in changed and dev.type is not None:
        attrs["type"] = dev.type
    if is_controller:
        assert isinstance(dev, Controller)
        if "model_name" in changed and dev.model_name is not None:
            model = model if model is not None else {}
            model["name"] = dev.model_name
        if "target" in changed:
            target = {k: v for k, v in dev.target.items() if k != "node"}
    parts = [_start_tag(dev.tag, attrs) + ">"]
    if model is not None:
        parts.append(_start_tag("model", model) + "/>")
    if target is not None:
        parts.append(_start_tag("target", target) + "/>")
    a = dev.address if "address" in changed else None
    if a is not None:
        if a.is_pci and a.zpci is not None:
            parts.append(_start_tag("address", _address_attrs(a)) + ">" +
                         _start_tag("zpci", _zpci_attrs(a.zpci)) + "/></address>")
        else:
            parts.append(_address_text(a))
    parts.append(f"</{dev.tag}>")
    return etree.fromstring("".join(parts), _parser())


def _indent_new(el: etree._Element, step: str) -> None:
    """Lay out a new element's children (and theirs) one per line, each level indented
    ``step`` (the document's) more than its parent, as :func:`_insert` does for each child."""
    if not len(el):
        return
    own = _indent_of(el)
    inner = "\n" + own + step
    el.text = inner
    kids = list(el)
    for k in kids:
        k.tail = inner
        if len(k):
            k.text = inner + step
            for g in k:
                g.tail = inner + step
            k[-1].tail = inner
    kids[-1].tail = "\n" + own


def _insert_device(devices: etree._Element, el: etree._Element, after: etree._Element | None) -> None:
    if after is not None:
        _insert_after(devices, after, el)
        return
    rank = _RANK.get(el.tag, len(DEVICE_ORDER))
    pos = 0
    for i, k in enumerate(devices):
        if isinstance(k.tag, str) and _RANK.get(k.tag, len(DEVICE_ORDER)) <= rank:
            pos = i + 1
    _insert(devices, pos, el)


def apply(doc: Document) -> None:
    """Write every planner change into the document's tree, in place."""
    root = doc.tree.getroot()
    devices = root.find("devices")
    if devices is None:
        devices = _insert(root, len(root), etree.Element("devices"))
    last_controller: etree._Element | None = None
    for k in devices:
        if k.tag == "controller":
            last_controller = k
    batch = _Batch()
    step = _indent_step(devices)
    for dev in doc.domain.devices:
        if dev.ref is None:
            dev.changed.discard("index")
            if isinstance(dev, Controller) and dev.type != "pci":
                dev.changed.discard("model")
            el = _new_element(dev)
            after = last_controller if dev.tag == "controller" else None
            _insert_device(devices, el, after)
            _indent_new(el, step)
            if dev.tag == "controller":
                last_controller = el
            dev.ref = el
        elif dev.changed:
            _write_changes(dev, dev.ref, batch)
    batch.flush()
    for dev in doc.domain.removed:
        if dev.ref is not None and dev.ref.getparent() is not None:
            _remove(dev.ref)
    for group in doc.domain.list_order.values():
        _reorder([d.ref for d in group if d.ref is not None])


def _remove(el: etree._Element) -> None:
    parent = el.getparent()
    prev = el.getprevious()
    if prev is not None:
        prev.tail = el.tail if el.tail is not None else prev.tail
    elif parent is not None:
        parent.text = el.tail if el.tail is not None else parent.text
    parent.remove(el)


def _reorder(wanted_order: list[etree._Element]) -> None:
    """Put these sibling elements in the given order, each taking a place one of them had."""
    if len(wanted_order) < 2:
        return
    parent = wanted_order[0].getparent()
    if parent is None or any(e.getparent() is not parent for e in wanted_order):
        return
    members = set(wanted_order)
    slots = [i for i, k in enumerate(parent) if k in members]
    current = [parent[i] for i in slots]
    if current == wanted_order:
        return
    tails = [e.tail for e in current]
    for e in current:
        parent.remove(e)
    # rebuild: insert each wanted element at its slot index, lowest first
    for slot, el, tail in zip(slots, wanted_order, tails):
        el.tail = tail
        parent.insert(slot, el)


def _spliced(original: splice.Original | None, root: etree._Element, quote: str,
             newline: str) -> str | None:
    """``root`` written into the input's text (``splice``), or None: lxml writes it."""
    if original is None:
        return None
    from . import splice

    return splice.write(original, root, quote, newline)


def tostring(doc: Document) -> str:
    """The document as text: declaration, prolog and comments around the root kept."""
    return _written(doc)[0]


def _written(doc: Document) -> tuple[str, str]:
    """The document as text, without the blanks that end it, and those blanks ("": dump
    ends it with a line break)."""
    root = doc.tree.getroot()
    original = doc.original
    body = _spliced(original, root, doc.quote, doc.newline)
    if body is None or original is None:
        return _lxml_written(doc), ""
    # the declaration, prolog and epilog as they were
    text, first = original.text, original.nodes[root]
    epilog = text[first.end:]
    kept = epilog.rstrip()
    end = epilog[len(kept):]
    return text[:first.start] + body + kept, end if "\n" in end else ""


def _lxml_written(doc: Document) -> str:
    root = doc.tree.getroot()
    out = etree.tostring(root, encoding="unicode", with_tail=False)
    if doc.quote == "'":
        out = out.replace('"', "'") if doc.plain else requote(out)
    if doc.prolog is not None:
        out = doc.prolog + out
    else:
        before = reversed(list(root.itersiblings(preceding=True)))
        doctype = doc.tree.docinfo.doctype
        out = "".join(etree.tostring(n, encoding="unicode", with_tail=False) + "\n" for n in before) + \
            (doctype + "\n" if doctype else "") + out
    out += "".join("\n" + etree.tostring(n, encoding="unicode", with_tail=False) for n in root.itersiblings())
    if doc.declaration is not None:
        decl = doc.declaration
        sep = "" if doc.prolog is not None else "\n"
        out = decl + sep + out
    elif doc.xml_declaration:
        out = f"<?xml version='1.0' encoding='{doc.encoding}'?>\n" + out
    if doc.newline != "\n":
        # every line ending lxml writes is a "\n" the parser made of the input's (a "\r" in
        # a value or text is written &#13;); the declaration and prolog are the input's own
        out = out.replace("\r\n", "\n").replace("\n", doc.newline)
    return out


def dump(doc: Document) -> bytes:
    """The document as bytes in the input's encoding, byte-order mark and line endings,
    ending in a newline."""
    text, end = _written(doc)
    if end:
        text += end
    elif not text.endswith("\n"):
        text += doc.newline
    return doc.bom + text.encode(doc.encoding, errors="xmlcharrefreplace")


def requote(text: str) -> str:
    """Write attribute values in single quotes, as libvirt does (and as the input did).

    Only quotes inside start tags change; a value containing ' keeps its double quotes.
    (lxml's output escapes ``<``, ``>`` and ``"`` inside values, so tags can be matched
    by pattern.)
    """
    return re.sub(_TOKEN, _requote_tag, text, flags=re.S)


_TOKEN = r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|(<[^!?/][^>]*>)"
_QUOTED = r'="([^"]*)"'


def _requote_value(m: re.Match[str]) -> str:
    value = m.group(1)
    return m.group(0) if "'" in value else f"='{value}'"


def _requote_tag(m: re.Match[str]) -> str:
    tag = m.group(1)
    if tag is None:
        return m.group(0)
    if "'" not in tag:
        # every " of an lxml start tag delimits a value (="..."), and no value has a ':
        # all of them become ' (what _QUOTED.sub would do, without a call per value)
        return tag.replace('"', "'")
    return re.sub(_QUOTED, _requote_value, tag)