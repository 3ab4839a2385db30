"""What libvirt 9.0's parser refuses of a ``<sound>`` (:func:`check_parse`): the codecs
of the HD audio models (the only ones whose codecs it reads), then the id of its
``<audio>``; checked against the libvirt 9.0 daemon."""

from __future__ import annotations

from lxml import etree

from . import audios, parsecheck
from .errors import PlanError

CODEC_TYPES = frozenset({"duplex", "micro", "output"})
#: the models libvirt reads ``<codec>`` elements of (the others' are ignored)
CODEC_MODELS = frozenset({"ich6", "ich9"})


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    if el.get("model") in CODEC_MODELS:
        for codec in el.iterfind("codec"):
            ctype = codec.get("type")
            if ctype not in CODEC_TYPES:  # (one without a type too: libvirt's '(null)')
                spelled = "(null)" if ctype is None else ctype
                raise PlanError(f"unknown codec type '{spelled}'", parsecheck._what(what),
                                codec.sourceline, kind="unsupported")
    audios.check_reference(kids.get("audio"), what)


def read(el: etree._Element, kids: dict) -> int:
    """The id of the audio back end a sound names (0: none)."""
    audio = kids.get("audio")
    return parsecheck.c_uint(audio.get("id") or "", 10) or 0 if audio is not None else 0
