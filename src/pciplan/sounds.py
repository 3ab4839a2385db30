"""What libvirt 9.0's parser refuses of a ``<sound>``'s codecs (:func:`check_parse`);
checked against the libvirt 9.0 daemon."""

from __future__ import annotations

from lxml import etree

from . import parsecheck
from .errors import PlanError

CODEC_TYPES = frozenset({"duplex", "micro", "output"})


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    for codec in el.iterfind("codec"):
        ctype = codec.get("type")
        if ctype is not None and ctype not in CODEC_TYPES:
            raise PlanError(f"unknown codec type '{ctype}'", parsecheck._what(what), codec.sourceline,
                            kind="unsupported")
