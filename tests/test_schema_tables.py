"""pciplan's tables of the words libvirt's parser takes agree with libvirt 9.0's own schema.

A word missing from a table makes pciplan refuse a domain libvirt defines; a word too many
lets through one it refuses.  libvirt ships its RELAX NG schema with the daemon
(/usr/share/libvirt/schemas/domaincommon.rng, the Debian 12 package CI installs); the
parser and the schema are kept in step upstream, with the few differences listed here.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

from pciplan import parsecheck

SCHEMA = Path("/usr/share/libvirt/schemas/domaincommon.rng")
RNG = "http://relaxng.org/ns/structure/1.0"
pytestmark = pytest.mark.skipif(not SCHEMA.exists(),
                                reason=f"libvirt's schema is not installed ({SCHEMA})")

#: (element, attribute): words the parser and the schema disagree on, checked against
#: the 9.0 daemon: the schema's <interface type> choice also lists the pci/usb source
#: addresses of hostdev interfaces; the parser takes input bus 'none' and 'parallels',
#: filesystem type 'volume' and an empty filesystem accessmode, and vsock model 'default'
#: (its enum's first value, which the parser does not refuse), which the schema leaves out
KNOWN_DIFFERENCES = {
    ("interface", "type"): {"pci", "usb"},
    ("input", "bus"): {"none", "parallels"},
    ("filesystem", "type"): {"volume"},
    ("filesystem", "accessmode"): {""},  # (an empty accessmode is the default)
    ("vsock", "model"): {"default"},
}


@pytest.fixture(scope="module")
def schema():
    rng = etree.parse(str(SCHEMA))
    defs: dict[str, etree._Element] = {}
    # the domain grammar: domaincommon.rng, the files it includes, and domainoverrides.rng,
    # whose combine='choice' definitions add to the ones they name
    files = [rng] + [etree.parse(str(f)) for f in sorted(SCHEMA.parent.glob("*.rng")) if f != SCHEMA]
    for tree in files:
        for d in tree.iterfind(f"{{{RNG}}}define"):
            name = d.get("name")
            if name in defs and (d.get("combine") or defs[name].get("combine")):
                both = etree.Element(f"{{{RNG}}}define", name=name)
                both.extend([copy.deepcopy(k) for k in (*defs[name], *d)])
                defs[name] = both
            elif name not in defs:
                defs[name] = d
    return rng, defs


def _values(node, defs, seen=None) -> set[str]:
    seen = set() if seen is None else seen
    out = {v.text for v in node.iter(f"{{{RNG}}}value")}
    for ref in node.iter(f"{{{RNG}}}ref"):
        name = ref.get("name")
        if name not in seen:
            seen.add(name)
            out |= _values(defs[name], defs, seen)
    return out


def _attribute_words(schema, element: str, attribute: str) -> set[str]:
    """The words the schema allows for ``<element attribute=...>`` (its own attribute,
    wherever a ref puts it, not those of elements inside it)."""
    rng, defs = schema
    words: set[str] = set()
    for el in rng.iter(f"{{{RNG}}}element"):
        if el.get("name") == element:
            words |= _attribute_words_of(el, attribute, defs)
    return words


def _direct_children(node, defs, seen=None) -> set[str]:
    """The names of the elements right inside ``node`` (through refs and choices)."""
    seen = set() if seen is None else seen
    names: set[str] = set()
    for ch in node:
        if not isinstance(ch.tag, str):
            continue
        tag = etree.QName(ch).localname
        if tag == "element":
            names.add(ch.get("name"))
        elif tag == "ref":
            if ch.get("name") not in seen:
                seen.add(ch.get("name"))
                names |= _direct_children(defs[ch.get("name")], defs, seen)
        elif tag not in ("attribute", "data", "value", "text"):
            names |= _direct_children(ch, defs, seen)
    return names


def _element(schema, name: str):
    """The schema's definition of <name> that has elements inside."""
    rng, _ = schema
    return next(e for e in rng.iter(f"{{{RNG}}}element")
                if e.get("name") == name and _direct_children(e, schema[1]))


@pytest.mark.parametrize("element,attribute,words",
                         [(t, a, w) for t, a, w, _ in parsecheck.ENUM_ATTRIBUTES],
                         ids=[f"{t}-{a}" for t, a, _, _ in parsecheck.ENUM_ATTRIBUTES])
def test_enumerated_attributes_match_the_schema(schema, element, attribute, words):
    expected = _attribute_words(schema, element, attribute)
    if not expected:
        pytest.skip(f"the schema gives <{element} {attribute}> no list of words")
    known = KNOWN_DIFFERENCES.get((element, attribute), set())
    assert (expected ^ words) - known == set()


def test_feature_names_match_the_schema(schema):
    assert _direct_children(_element(schema, "features"), schema[1]) == set(parsecheck.FEATURES)


@pytest.mark.parametrize("feature", sorted(parsecheck.SUB_FEATURES))
def test_sub_features_match_the_schema(schema, feature):
    names = _direct_children(_element(schema, feature), schema[1])
    assert names == parsecheck.SUB_FEATURES[feature][1]


@pytest.mark.parametrize("element", ["serial", "parallel", "console", "channel"])
def test_character_device_types_match_the_schema(schema, element):
    assert _attribute_words(schema, element, "type") == parsecheck.CHARDEV_TYPES


def test_controller_models_match_the_schema(schema):
    ours = set().union(*(m for t, m in parsecheck.CONTROLLER_MODELS.items() if t != "pci"))
    schema_words = _attribute_words(schema, "controller", "model")
    # the schema's list also has the PCI controller models (the planner's table)
    assert schema_words - set(parsecheck.CONTROLLER_MODELS["pci"]) == ours


def _nested_attribute_words(schema, element: str, child: str, attribute: str) -> set[str]:
    """The words for ``<child attribute>`` of a child of ``<element>`` (refs followed)."""
    rng, defs = schema
    words: set[str] = set()

    def find_child(node, seen):
        for ch in node:
            if not isinstance(ch.tag, str):
                continue
            tag = etree.QName(ch).localname
            if tag == "element":  # (a child element: not looked into)
                if ch.get("name") == child:
                    words.update(_attribute_words_of(ch, attribute, defs))
            elif tag == "ref":
                if ch.get("name") not in seen:
                    seen.add(ch.get("name"))
                    find_child(defs[ch.get("name")], seen)
            else:
                find_child(ch, seen)
    for el in rng.iter(f"{{{RNG}}}element"):
        if el.get("name") == element:
            find_child(el, set())
    return words


def _attribute_words_of(el, attribute: str, defs) -> set[str]:
    words: set[str] = set()

    def walk(node, seen):
        for ch in node:
            if not isinstance(ch.tag, str):
                continue
            tag = etree.QName(ch).localname
            if tag == "attribute":
                if ch.get("name") == attribute:
                    words.update(_values(ch, defs))
            elif tag == "ref":
                if ch.get("name") not in seen:
                    seen.add(ch.get("name"))
                    walk(defs[ch.get("name")], seen)
            elif tag != "element":
                walk(ch, seen)
    walk(el, set())
    return words


#: (element, child, attribute): words the parser and the schema disagree on, checked
#: against the 9.0 daemon
KNOWN_CHILD_DIFFERENCES: dict[tuple[str, str, str], set[str]] = {
    ("filesystem", "driver", "type"): {"default"},
}


@pytest.mark.parametrize("element,child,attribute,words", parsecheck.CHILD_ENUM_ATTRIBUTES,
                         ids=[f"{t}-{c}-{a}" for t, c, a, _ in parsecheck.CHILD_ENUM_ATTRIBUTES])
def test_child_element_words_match_the_schema(schema, element, child, attribute, words):
    expected = _nested_attribute_words(schema, element, child, attribute)
    assert expected, f"the schema has no <{element}><{child} {attribute}>"
    known = KNOWN_CHILD_DIFFERENCES.get((element, child, attribute), set())
    assert (expected ^ words) - known == set()
