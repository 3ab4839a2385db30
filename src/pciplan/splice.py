"""Writing a planned tree back into the text it was read from, so that every part of the
document the planner did not change keeps its exact characters.

lxml writes a tree in one canonical form: attributes in the document's quote style and one
space apart, namespace declarations first, ``<x></x>`` as ``<x/>``, character references
resolved.  A file written by libvirt (or like it) is already in that form, and lxml's output
of it differs only where the plan changed it.  A file written by hand often is not: mixed
quotes, an attribute list over several lines, ``xmlns:qemu`` after ``type``.  Planned in
place, lxml would rewrite every such line, and a reviewer would see changes the plan did not
make.  For those files (``xmlio.rewritten_by_lxml``: lxml's writing of the tree as read is
not the text), ``take`` records where each node of the root element lies in the text and
what it held; ``write`` then copies every node that still holds the same, and writes only
the changed ones anew (new elements, changed start tags, changed whitespace between nodes)
in the document's quote style and line ending.  A changed start tag keeps its own quotes.

``write`` checks its own result: the text must parse to the very tree lxml would write.  When
it cannot (a form this module does not know), it returns None and lxml writes the document.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from .records import Record
from .xmlio import requote  # (splice is loaded only by xmlio's functions, once xmlio is)

# (patterns compiled on first use, re caches them: most documents never need them)
_DECLARATION = r"""\s+xmlns(?::[\w.-]+)?=(?:"[^"]*"|'[^']*')"""
# markup, in document order
_MARKUP = r"""(?s)<(?:!--.*?-->|!\[CDATA\[.*?\]\]>|\?.*?\?>|/[^>]*>|[A-Za-z_][^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*>)"""


class _Node(Record):
    """Where a node of the original tree lies in the text, and what it held there."""

    __slots__ = ("start", "tag_end", "text_end", "close", "end", "empty_tag", "tail_end",
                 "attrs", "text", "tail", "kids")
    start: int
    #: the end of the start tag (of the whole node for a comment or instruction)
    tag_end: int
    #: the end of the node's text (before its first child or its end tag)
    text_end: int
    #: the start and end of the end tag (both tag_end for <x/>)
    close: int
    end: int
    #: written <x/>, without an end tag (so is a comment or instruction)
    empty_tag: bool
    #: the end of the node's tail
    tail_end: int
    #: the attributes (an instruction's target), text, tail and children as read
    attrs: list
    text: str | None
    tail: str | None
    kids: tuple

    def __init__(self, start, tag_end, attrs, text, tail, kids, empty_tag) -> None:
        self.start = start
        self.tag_end = self.text_end = self.close = self.end = self.tail_end = tag_end
        self.attrs = attrs
        self.text = text
        self.tail = tail
        self.kids = kids
        self.empty_tag = empty_tag


class Original(Record):
    """The document's text and its root element's nodes as read, before any change."""

    text: str
    nodes: dict

    def __init__(self, text, nodes) -> None:
        self.text = text
        self.nodes = nodes


def take(text: str, root: etree._Element, start: int | None = None) -> Original | None:
    """Record every node of ``root`` in ``text`` (the document it was parsed from; its root
    element starts at ``start`` when the caller knows), or None when the text and the tree
    do not match up (nothing is then spliced)."""
    if start is None:
        start = _root_start(text, root)
    if start < 0:
        return None
    nodes: dict[Any, _Node] = {}
    tree_nodes = root.iter()
    stack: list[_Node] = []
    last: _Node | None = None  # the node whose tail runs now (None: the open element's text)
    for m in re.compile(_MARKUP).finditer(text, start):
        s, e = m.span()
        kind = text[s + 1]
        if kind == "!" and text[s + 2] == "[":
            continue  # a CDATA section: part of a text
        if last is not None:
            last.tail_end = s
        elif stack:
            stack[-1].text_end = s
        if kind == "/":
            if not stack:
                return None
            last = stack.pop()
            last.close = s
            last.end = last.tail_end = e
            if not stack:
                return Original(text, nodes)
            continue
        node = next(tree_nodes, None)
        if node is None:
            return None
        tag = node.tag
        if kind == "!" or kind == "?":
            if tag is not (etree.Comment if kind == "!" else etree.PI):
                return None
            last = nodes[node] = _Node(s, e, [getattr(node, "target", None)], node.text,
                                       node.tail, (), True)
            continue
        if tag.__class__ is not str or not _names(text, s, tag):
            return None
        rec = nodes[node] = _Node(s, e, node.attrib.items(), node.text, node.tail, tuple(node),
                                  text[e - 2] == "/")
        if rec.empty_tag:
            last = rec
        else:
            stack.append(rec)
            last = None
    return None


def _root_start(text: str, root: etree._Element) -> int:
    """Where the root's start tag begins: after the declaration, comments and instructions
    (-1 after anything else, such as a <!DOCTYPE>)."""
    pos = 0
    for m in re.finditer(_MARKUP, text):
        tok = m.group()
        if tok[1] in "!?":
            if text.find("<!DOCTYPE", pos, m.start()) >= 0:
                return -1
            pos = m.end()
            continue
        if tok[1] == "/" or not _names(text, m.start(), root.tag):
            return -1
        return m.start()
    return -1


def _names(text: str, at: int, tag: str) -> bool:
    """Whether the start tag at ``text[at]`` is of the element named ``tag`` (lxml's name)."""
    if tag[0] == "{":  # <qemu:commandline> (or <commandline xmlns=...>) is {namespace}commandline
        name = re.escape(tag.rpartition("}")[2])
        return re.compile(r"<(?:[\w.-]+:)?" + name + r"[\s/>]").match(text, at) is not None
    return text.startswith(tag, at + 1) and text[at + 1 + len(tag)] in " \t\r\n/>"


class _Unsplicable(Exception):
    """A change this module does not write (a namespaced element...): lxml writes it all."""


#: how changed parts are written: the quote around attribute values, the line ending
_Style = tuple[str, str]


def write(original: Original, root: etree._Element, quote: str, newline: str) -> str | None:
    """The root element as text: the original's characters wherever a node holds what it
    held, the changed parts written anew (attribute values in ``quote``, line breaks as
    ``newline``).  None when that cannot be done faithfully."""
    out: list[str] = []
    try:
        _emit(root, original, out, (quote, newline))
    except _Unsplicable:
        return None
    text = "".join(out)
    try:
        check = etree.fromstring(text, etree.XMLParser(resolve_entities=False, no_network=True,
                                                       load_dtd=False, huge_tree=False,
                                                       remove_comments=False, strip_cdata=False))
    except etree.XMLSyntaxError:
        return None
    return text if _same_tree(check, root) else None


def _same_tree(a: etree._Element, b: etree._Element) -> bool:
    """The two trees are the same document: the same canonical XML, or where C14N cannot
    be made (a relative namespace URI, like Unraid's ``xmlns="unraid"`` in metadata) the
    same lxml serialization."""
    try:
        return etree.tostring(a, method="c14n") == etree.tostring(b, method="c14n")
    except etree.C14NError:
        return etree.tostring(a) == etree.tostring(b)


def _emit(node: Any, original: Original, out: list[str], style: _Style) -> bool:
    """Append ``node`` (not its tail) to ``out``; whether it is exactly as it was read."""
    rec = original.nodes.get(node)
    text = original.text
    if rec is None:
        out.append(_new(node, style))
        return False
    tag = node.tag
    if not isinstance(tag, str):  # a comment or processing instruction
        if node.text == rec.text and [getattr(node, "target", None)] == rec.attrs:
            out.append(text[rec.start:rec.tag_end])
            return True
        out.append(_new(node, style))
        return False
    first = len(out)
    kids = tuple(node)
    same_attrs = node.attrib.items() == rec.attrs
    same = same_attrs and kids == rec.kids and node.text == rec.text
    if not kids and not node.text:
        if same:
            out.append(text[rec.start:rec.end])
            return True
        # emptied, or its start tag changed: <x .../>, as lxml writes it
        start = text[rec.start:rec.tag_end]
        if not same_attrs:
            out.append(_start_tag(node, _own_quotes(start, style[0]), True))
        else:
            out.append(start if rec.empty_tag else start[:-1].rstrip() + "/>")
        return False
    if not same_attrs:
        out.append(_start_tag(node, _own_quotes(text[rec.start:rec.tag_end], style[0]), False))
    elif rec.empty_tag:  # <x .../> gets content
        out.append(text[rec.start:rec.tag_end - 2].rstrip() + ">")
    else:
        out.append(text[rec.start:rec.tag_end])
    if node.text is not None:
        if node.text == rec.text:
            out.append(text[rec.tag_end:rec.text_end])
        else:
            out.append(_escape(node.text, style[1]))
    for kid in kids:
        same = _emit(kid, original, out, style) and same
        tail = kid.tail
        if tail is not None:
            krec = original.nodes.get(kid)
            if krec is not None and tail == krec.tail:
                out.append(text[krec.end:krec.tail_end])
            else:
                same = False
                out.append(_escape(tail, style[1]))
        elif kid not in original.nodes or original.nodes[kid].tail is not None:
            same = False
    out.append(f"</{_name(tag)}>" if rec.empty_tag else text[rec.close:rec.end])
    if same:
        del out[first:]
        out.append(text[rec.start:rec.end])
    return same


def _own_quotes(start_tag: str, quote: str) -> str:
    """The quote of a changed start tag: its own (all ' or all "), else the document's."""
    double, single = '="' in start_tag, "='" in start_tag
    return '"' if double and not single else "'" if single and not double else quote


def _name(tag: str) -> str:
    if tag[0] == "{":
        raise _Unsplicable(tag)
    return tag


def _start_tag(node: etree._Element, quote: str, closed: bool) -> str:
    """``<tag a='v' ...>`` (``/>`` when ``closed``) of a changed element, as lxml writes it."""
    parent = node.getparent()
    if any(k[0] == "{" for k in node.attrib) or (parent is not None and node.nsmap != parent.nsmap):
        raise _Unsplicable(node.tag)  # (namespaces: lxml's writing puts them right)
    shallow = etree.Element(_name(node.tag), dict(node.attrib))
    tag = etree.tostring(shallow, encoding="unicode")  # <tag a="v"/>
    if quote == "'":
        tag = requote(tag)
    return tag if closed else tag[:-2] + ">"


def _new(node: Any, style: _Style) -> str:
    """A node the planner made, as lxml writes it."""
    if isinstance(node.tag, str) and node.tag[0] == "{":
        raise _Unsplicable(node.tag)
    out = etree.tostring(node, encoding="unicode", with_tail=False)
    if "xmlns" in out:
        # lxml declares on a subtree every namespace in scope: the ancestors' declarations,
        # written there already (the planner's nodes declare none of their own)
        end = out.index(">")
        out = re.sub(_DECLARATION, "", out[:end]) + out[end:]
    if style[0] == "'":
        out = requote(out)
    return out.replace("\n", style[1]) if style[1] != "\n" else out


def _escape(text: str, newline: str) -> str:
    """Text between nodes, escaped as lxml escapes it."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    return out.replace("\n", newline) if newline != "\n" else out
