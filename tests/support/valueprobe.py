"""Probe the words libvirt reads: one attribute of one device set to an odd value, through
libvirt and through pciplan.

    .venv/bin/python tests/support/valueprobe.py -n 600 --seed 1 -j 2
    .venv/bin/python tests/support/valueprobe.py -n 600 --seed 1 -j 2 --suite 9.0.0
    .venv/bin/python tests/support/valueprobe.py -n 600 --seed 1 -j 2 --anywhere
    .venv/bin/python tests/support/valueprobe.py -n 400 --seed 1 -j 2 --twice --outside --inputs DIR

Each case takes an accepted golden input (tests/golden, made with the daemon; with
``--suite 9.0.0``, one of libvirt's own test inputs it accepts), picks one
device and one of the words libvirt reads from it (``model``, ``type``, ``bus`` attributes;
a ``<model type>``, ``<target type>``, ``<driver name>`` ...), and sets it to a value users
write by mistake or by habit: ``default``, ``auto``, ``none``, the empty string, the same
word in upper case or with a blank around it, another word of the same place taken from another golden input, or
nothing (the attribute left out); a number is also spelled otherwise (blanks, sign, hex,
octal) or out of range.
libvirt's answer (define + dumpxml, or its refusal) is compared with pciplan's: both accept
with the same PCI layout (``support.layout``, the notion of the corpus' pcicompare), or
both refuse, with the same message core.  A disagreement is printed with the file, the
device and the value; ``--save DIR`` writes the domains.

``--anywhere`` picks any attribute of any element of the device instead (a ``<source path>``,
a ``<graphics autoport>``, an ``<image compression>``...); ``--outside``, any attribute of the
domain's own elements (``<os>``, ``<features>``, ``<cpu>``, ``<clock>``...); ``--text``, the
text of an element instead (with ``--outside``, of the domain's own: ``<vcpu>``, ``<on_reboot>``).
``--twice`` writes an element twice instead: a copy of one element inside a device (with
``--outside``, one of the domain's own elements or an element inside it) goes right before or
after it, one attribute of the copy set to another word seen at that place (or left as it is).
libvirt reads most elements with an XPath that takes the first one, and some as a list.
``--drop`` leaves one element out instead (inside a device; with ``--outside``, one of the
domain's own elements or one inside it), as a user who trims a copied domain does; ``--add``
gives an element what another input has at the same place and it lacks (an attribute, set to a
value seen there, or a child element, copied whole), as a user who pastes an option does.
``--inputs DIR`` edits the domain files of a folder that the daemon accepts instead
(real-world domains gathered by hand, say).

It found libvirt's 'auto' SCSI model, the models of sata/ccid/fdc controllers, vsock and
vhost-scsi 'default', the panic default, the <model> children libvirt does not read, the
order of a host device's checks, chardev target type 'none', <model name='none'>, a USB
controller of no ports, and the type libvirt writes for a chardev or controller without one;
``--anywhere``, the SPICE and VNC attributes libvirt reads as words and numbers, and the words
of a virtiofsd <binary>; ``--drop``, the image name libvirt gives a RBD or Gluster disk without
a target, and a <resource> with nothing in it; ``--add``, the 64-bit PCI hole libvirt reads of a
PCI root only, and the address of a console standing for a serial port; ``--twice``,
a controller's second <model> or <target>, a PCI address's last <zpci>, <cputune> and NUMA
cells read over every <cputune> and <cpu>.
Exit status: 0 all agree, 1 some disagree, 2 no daemon (or it died on a case: named, and saved
with ``--save``; libvirt 9.0 dies on NUMA cells that skip id 0 and give distances, and on a
LUN disk with rawio but no target).
"""

from __future__ import annotations

import argparse
import random
import sys
from copy import deepcopy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support import layout, libvirt_oracle  # noqa: E402
from support.difftest import message_core  # noqa: E402

GOLDEN = HERE.parent / "golden"
#: (child path or None for the element itself, attribute) of the words probed
PLACES = ((None, "model"), (None, "type"), (None, "bus"), ("model", "type"), ("target", "type"),
          ("driver", "name"), ("backend", "model"), ("backend", "type"), ("target", "bus"),
          (None, "device"), (None, "mode"), (None, "managed"), (None, "index"), (None, "ports"),
          ("model", "name"), ("driver", "iommu"), ("driver", "queues"), ("driver", "ats"),
          ("target", "chassis"), ("target", "port"), ("target", "busNr"), ("model", "heads"),
          ("model", "vram"), ("model", "primary"), ("source", "mode"), ("rom", "bar"),
          ("target/model", "name"), ("target", "hotplug"), ("target", "chassisNr"), ("rom", "enabled"),
          ("model", "vgamem"), ("model", "ram"), ("driver", "rx_queue_size"), ("boot", "order"),
          ("acpi", "index"), ("target", "index"), (None, "multifunction"), ("address", "multifunction"),
          ("address", "type"), ("address", "function"), ("address", "slot"), ("address", "bus"))
ODD = ("default", "auto", "none", "", "UPPER", "other", "OMIT", "SPACED")
#: for a number: other spellings of it (libvirt reads most as C does: base 0 or 10), and others
ODD_NUMBERS = (" {n}", "+{n}", "{n} ", "0x{n:x}", "0{n:o}", "-1", "0", "4294967296", "{n}.0", "other",
               "OMIT")


def golden_inputs() -> list[tuple[str, str]]:
    """(name, text) of the golden inputs libvirt accepts."""
    return [(p.name, p.read_text()) for p in sorted(GOLDEN.glob("*.in.xml"))
            if p.with_name(p.name.replace(".in.xml", ".libvirt.xml")).exists()]


def suite_inputs(version: str, oracle, jobs: int) -> list[tuple[str, str]]:
    """(name, text) of libvirt's own test inputs of ``version`` (and their variants) that the
    daemon accepts (downloaded and asked once: both are cached)."""
    from support import suiteprobe
    root, why = suiteprobe.sources_for_tests(HERE.parent / ".suite-cache", version)
    if root is None:
        raise SystemExit(f"valueprobe: {why}")
    cases = suiteprobe.all_cases(root)
    with ThreadPoolExecutor(jobs) as pool:
        accepted = list(pool.map(lambda c: oracle.run(c.xml)[0], cases))
    return [(c.name, c.xml) for c, ok in zip(cases, accepted) if ok]


def dir_inputs(folder: Path, oracle, jobs: int) -> list[tuple[str, str]]:
    """(name, text) of the domain files in ``folder`` that the daemon accepts (real-world
    domains gathered by hand, say)."""
    files = sorted(folder.glob("*.xml"))
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    with ThreadPoolExecutor(jobs) as pool:
        accepted = list(pool.map(lambda t: oracle.run(t)[0], texts))
    return [(f.name, t) for f, t, ok in zip(files, texts, accepted) if ok]


def _elements(dev) -> list:
    """A device element and every element inside it, in document order."""
    return [e for e in dev.iter() if isinstance(e.tag, str)]


def _relpath(dev, e) -> str | None:
    """``e``'s path below ``dev`` (``source``, ``target/model``), None for ``dev`` itself."""
    parts = []
    while e is not dev:
        parts.append(e.tag)
        e = e.getparent()
    return "/".join(reversed(parts)) or None


#: the domain's own elements ``--outside`` leaves alone (names, free text, anyone's metadata)
NOT_EDITED = frozenset({"devices", "name", "uuid", "title", "description", "metadata"})


def _parts(root: etree._Element, outside: bool) -> tuple[etree._Element | None, list]:
    """The element whose children are edited, and those children: the devices, or with
    ``outside`` the domain's own elements (``<os>``, ``<features>``, ``<cpu>``...)."""
    parent = root if outside else root.find("devices")
    if parent is None:
        return None, []
    return parent, [el for el in parent if isinstance(el.tag, str) and not (outside and el.tag in NOT_EDITED)]


#: the pseudo-attribute of ``--text``: an element's text (left out: the element is)
TEXT = "#text"


def _texts(elems: list) -> list:
    """The elements whose text ``--text`` edits: leaves with a word, a number... (not a path
    or the emulator: those are the host's)."""
    return [(k, e) for k, e in enumerate(elems)
            if len(e) == 0 and (e.text or "").strip() and not e.text.strip().startswith("/")
            and e.tag != "emulator"]


def make_cases(seed: int, n: int, inputs: list[tuple[str, str]] | None = None,
               anywhere: bool = False, outside: bool = False,
               element_text: bool = False, twice: bool = False,
               drop: bool = False, add: bool = False) -> list[tuple[str, str, str]]:
    """``n`` edited documents.  ``anywhere``: any attribute of any element of a device (a
    source's ``path``, a driver's ``cache``...), not only the words of ``PLACES``;
    ``outside``: any attribute of the domain's own elements instead of its devices';
    ``element_text``: the text of an element instead of an attribute (``<on_reboot>``, ``<vcpu>``,
    a CPU ``<model>``...); ``twice``: an element written twice; ``drop``: an element left out;
    ``add``: an attribute or element seen there in another input added (see the module's text)."""
    if twice:
        return _twice_cases(seed, n, inputs, outside)
    if drop:
        return _drop_cases(seed, n, inputs, outside)
    if add:
        return _add_cases(seed, n, inputs, outside)
    anywhere = anywhere or outside
    rng = random.Random(seed)
    words: dict[tuple[str, str | None, str], set[str]] = {}
    docs = []
    for name, text, i, el in _edited(inputs, outside):
        elems = _elements(el)
        if element_text:
            places = [(k, _relpath(el, e), TEXT) for k, e in _texts(elems)]
        elif anywhere:
            places = [(k, _relpath(el, e), attr) for k, e in enumerate(elems) for attr in e.attrib]
        else:
            index = {e: k for k, e in enumerate(elems)}  # (the list keeps the proxies alive)
            holders = ((el if child is None else el.find(child), child, attr) for child, attr in PLACES)
            places = [(index[h], child, attr) for h, child, attr in holders
                      if h is not None and h.get(attr) is not None]
        for k, child, attr in places:
            words.setdefault((el.tag, child, attr), set()).add(_get(elems[k], attr))
            docs.append((name, text, i, k, child, attr))
    out = []
    for _ in range(n):
        name, text, i, k, child, attr = rng.choice(docs)
        tree, el, holder = _open(text, i, k, outside)
        old = _get(holder, attr)
        number = _number(old)
        odd = rng.choice(ODD if number is None else ODD_NUMBERS)
        if odd == "OMIT":
            value = None
        elif number is not None and odd != "other":
            value = odd.format(n=number)
        elif odd == "UPPER":
            value = old.upper()
        elif odd == "SPACED":  # (a word as a template may write it: with a blank around it)
            value = rng.choice((f" {old}", f"{old} ", f" {old} "))
        elif odd == "other":
            value = rng.choice(sorted(words[(el.tag, child, attr)]))
        else:
            value = odd
        if value == old or (holder.tag == "vcpu" and attr == TEXT and value == "-1"):
            continue  # (libvirt 9.0 reads <vcpu>-1</vcpu> as 4294967295 vCPUs, and the daemon dies)
        if attr == TEXT and value is None:
            holder.getparent().remove(holder)
        elif attr == TEXT:
            holder.text = value
        elif value is None:
            del holder.attrib[attr]
        else:
            holder.set(attr, value)
        _drop_uuids(tree.getroot())
        spelled = "(none)" if value is None else f"'{value}'"
        where = f"<{el.tag}{'/' + child if child else ''} {attr}={spelled}> (was '{old}')"
        out.append((name, where, etree.tostring(tree, encoding="unicode")))
    return out


def _edited(inputs, outside: bool):
    """(input name, text, position in its parent, element) of each element an edit may start
    from: every device, or with ``outside`` every element of the domain's own."""
    for name, text in golden_inputs() if inputs is None else inputs:
        try:
            root = etree.fromstring(text.encode())
        except etree.XMLSyntaxError:  # (the golden cases of broken XML)
            continue
        parent, edited = _parts(root, outside)
        for el in edited:
            yield name, text, parent.index(el), el


def _open(text: str, i: int, k: int, outside: bool):
    """(tree, edited element, element ``k`` inside it) of a fresh copy of ``text``, where
    the edited element is the ``i``-th of :func:`_parts`."""
    tree = etree.ElementTree(etree.fromstring(text.encode()))
    el = _parts(tree.getroot(), outside)[0][i]
    return tree, el, _elements(el)[k]


def _drop_uuids(root: etree._Element) -> None:
    """Two cases of one input may be asked at once: libvirt refuses a UUID defined twice, and
    takes a SMBIOS system UUID as the domain's when it has none."""
    for uuid in root.findall("uuid") + root.findall("sysinfo/system/entry[@name='uuid']"):
        uuid.getparent().remove(uuid)


def _twice_cases(seed: int, n: int, inputs, outside: bool) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    words: dict[tuple[str, str | None, str], set[str]] = {}
    docs = []
    for name, text, i, el in _edited(inputs, outside):
        for k, e in enumerate(_elements(el)):
            for attr in e.attrib:
                words.setdefault((el.tag, _relpath(el, e), attr), set()).add(e.get(attr))
            if k or outside:  # (a device written twice is two devices: not this probe's)
                docs.append((name, text, i, k))
    out = []
    for _ in range(n):
        name, text, i, k = rng.choice(docs)
        tree, el, holder = _open(text, i, k, outside)
        child = _relpath(el, holder)
        twin = deepcopy(holder)
        change = ""
        if twin.attrib and rng.random() < 0.8:
            attr = rng.choice(sorted(twin.attrib))
            others = sorted(words.get((el.tag, child, attr), set()) - {twin.get(attr)})
            if others:
                twin.set(attr, rng.choice(others))
                change = f" {attr}='{twin.get(attr)}' (was '{holder.get(attr)}')"
        before = rng.random() < 0.5
        twin.tail = holder.tail
        holder.addprevious(twin) if before else holder.addnext(twin)
        _drop_uuids(tree.getroot())
        where = f"<{el.tag}{'/' + child if child else ''}> twice, the copy{change} {'before' if before else 'after'}"
        out.append((name, where, etree.tostring(tree, encoding="unicode")))
    return out


def _drop_cases(seed: int, n: int, inputs, outside: bool) -> list[tuple[str, str, str]]:
    """An element inside a device (with ``outside``, one of the domain's own elements or one
    inside it) left out, with all it holds."""
    rng = random.Random(seed)
    docs = [(name, text, i, k) for name, text, i, el in _edited(inputs, outside)
            for k in range(0 if outside else 1, len(_elements(el)))]
    out = []
    for _ in range(n):
        name, text, i, k = rng.choice(docs)
        tree, el, holder = _open(text, i, k, outside)
        where = f"<{el.tag}{'/' + _relpath(el, holder) if holder is not el else ''}> left out"
        holder.getparent().remove(holder)
        _drop_uuids(tree.getroot())
        out.append((name, where, etree.tostring(tree, encoding="unicode")))
    return out


def _add_cases(seed: int, n: int, inputs, outside: bool) -> list[tuple[str, str, str]]:
    """What another input has at the same place and this one lacks: an attribute of an element
    inside a device (with ``outside``, of the domain's own elements), set to a value seen
    there, or a child element, copied whole."""
    rng = random.Random(seed)
    attrs: dict[tuple[str, str | None], dict[str, set[str]]] = {}
    kids: dict[tuple[str, str | None], dict[str, list[bytes]]] = {}
    docs = []
    for name, text, i, el in _edited(inputs, outside):
        for k, e in enumerate(_elements(el)):
            place = (el.tag, _relpath(el, e))
            for attr, value in e.attrib.items():
                attrs.setdefault(place, {}).setdefault(attr, set()).add(value)
            for child in e:
                if isinstance(child.tag, str) and len(kids.setdefault(place, {}).setdefault(child.tag, [])) < 30:
                    kids[place][child.tag].append(etree.tostring(child, with_tail=False))
            docs.append((name, text, i, k, place))
    out = []
    for _ in range(n * 3):
        if len(out) == n:
            break
        name, text, i, k, place = rng.choice(docs)
        tree, el, holder = _open(text, i, k, outside)
        missing_attrs = sorted(set(attrs.get(place, {})) - set(holder.attrib))
        missing_kids = [] if (holder.text or "").strip() else \
            sorted(set(kids.get(place, {})) - {c.tag for c in holder if isinstance(c.tag, str)})
        if rng.random() < 0.5 and missing_attrs:
            attr = rng.choice(missing_attrs)
            holder.set(attr, rng.choice(sorted(attrs[place][attr])))
            what = f"{attr}='{holder.get(attr)}'"
        elif missing_kids:
            tag = rng.choice(missing_kids)
            child = etree.fromstring(rng.choice(kids[place][tag]))
            holder.append(child)
            what = f"<{tag}> ({etree.tostring(child, encoding='unicode').strip()[:80]})"
        else:
            continue
        _drop_uuids(tree.getroot())
        where = f"<{el.tag}{'/' + place[1] if place[1] else ''}> given {what}"
        out.append((name, where, etree.tostring(tree, encoding="unicode")))
    return out


def _get(el: etree._Element, attr: str) -> str:
    return el.text.strip() if attr == TEXT else el.get(attr)


def _number(text: str) -> int | None:
    try:
        return int(text, 0) if text[:2].lower() == "0x" else int(text, 10)
    except ValueError:
        return None


def _pciplan(xml: str) -> tuple[bool, str]:
    import pciplan
    try:
        return True, pciplan.plan(xml)
    except pciplan.PlanError as err:
        return False, err.reason
    except pciplan.InputError as err:
        return False, f"input error: {err}"


class DaemonDied(Exception):
    """The daemon went away on a case (libvirt 9.0 dies on a few inputs: no answer to compare)."""


def judge(oracle, case) -> str | None:
    name, where, xml = case
    try:
        ok, text = oracle.run(xml)
    except libvirt_oracle.OracleError as err:
        raise DaemonDied(case) from err
    mine_ok, mine = _pciplan(xml)
    if ok and mine_ok:
        diffs = layout.compare_xml(text, mine)
        return None if not diffs else f"layout: {'; '.join(str(d) for d in diffs[:3])}"
    if not ok and not mine_ok:
        if message_core(text) == message_core(mine):
            return None
        return f"other message:\n      libvirt: {text.strip()}\n      pciplan: {mine}"
    if ok:
        return f"pciplan refuses: {mine}"
    return f"libvirt refuses: {text.strip()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--anywhere", action="store_true",
                    help="any attribute of any element of a device, not only the words of PLACES")
    ap.add_argument("--outside", action="store_true",
                    help="any attribute of the domain's own elements (os, features, cpu...), not its devices'")
    ap.add_argument("--text", action="store_true",
                    help="an element's text instead of an attribute (of a device; with --outside, "
                         "of the domain's own elements)")
    ap.add_argument("--twice", action="store_true",
                    help="an element written twice, the copy's attribute changed (inside a device; "
                         "with --outside, the domain's own elements)")
    ap.add_argument("--drop", action="store_true",
                    help="an element left out, with all it holds (inside a device; with --outside, "
                         "the domain's own elements)")
    ap.add_argument("--add", action="store_true",
                    help="an attribute or child element another input has at that place added "
                         "(inside a device; with --outside, the domain's own elements)")
    ap.add_argument("--suite", metavar="VERSION",
                    help="edit libvirt VERSION's own test inputs (e.g. 9.0.0) instead of the golden ones")
    ap.add_argument("--inputs", metavar="DIR", type=Path,
                    help="edit the domain files of DIR that the daemon accepts instead of the golden ones")
    args = ap.parse_args(argv)
    if not libvirt_oracle.available():
        print(f"valueprobe: {libvirt_oracle.unavailable_reason()}", file=sys.stderr)
        return 2
    oracle = libvirt_oracle.Oracle()
    inputs = suite_inputs(args.suite, oracle, args.jobs) if args.suite else \
        dir_inputs(args.inputs, oracle, args.jobs) if args.inputs else None
    cases = make_cases(args.seed, args.n, inputs, anywhere=args.anywhere, outside=args.outside,
                       element_text=args.text, twice=args.twice, drop=args.drop, add=args.add)
    with ThreadPoolExecutor(args.jobs) as pool:
        try:
            verdicts = list(pool.map(lambda c: judge(oracle, c), cases))
        except DaemonDied as died:
            name, where, xml = died.args[0]
            print(f"valueprobe: the daemon died on {name}: {where} ({died.__cause__})", file=sys.stderr)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"daemon-died-{name}").write_text(xml)
            return 2
    bad = 0
    for (name, where, xml), v in zip(cases, verdicts):
        if v is None:
            continue
        bad += 1
        print(f"{name}: {where}\n    {v}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"{bad:04d}-{name}").write_text(xml)
    print(f"valueprobe: seed {args.seed}, {len(cases)} cases, {bad} disagree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
