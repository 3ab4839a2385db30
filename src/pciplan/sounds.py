"""What libvirt 9.0's parser refuses of a ``<sound>`` (:func:`check_parse`): the codecs
of the HD audio models (the only ones whose codecs it reads), then the id of its
``<audio>``; and what QEMU's validation refuses of its codecs (:func:`check_qemu`);
checked against the libvirt 9.0 daemon."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from . import audios, parsecheck
from .errors import PlanError
from .records import Value

if TYPE_CHECKING:
    from .defaults import Guest
    from .domain import Device

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


class SoundFacts(Value):
    """What validation needs of a ``<sound>``."""

    #: the id of the audio back end it names (0: none)
    audio_id: int = 0
    #: its codecs' types, in order (only those of the models libvirt reads them of)
    codecs: tuple[str, ...] = ()

    def __init__(self, audio_id=0, codecs=()) -> None:
        self.audio_id = audio_id
        self.codecs = codecs


def read(el: etree._Element, kids: dict) -> SoundFacts:
    audio = kids.get("audio")
    audio_id = parsecheck.c_uint(audio.get("id") or "", 10) or 0 if audio is not None else 0
    codecs = tuple(c.get("type") or "" for c in el.iterfind("codec")) \
        if el.get("model") in CODEC_MODELS else ()
    return SoundFacts(audio_id, codecs)


def check_qemu(guest: Guest, snd: Device, facts: SoundFacts) -> None:
    """QEMU's check of a sound's codecs (after its model's): each one's device the emulator
    has (s390x has none)."""
    for codec in facts.codecs:
        if f"hda-{codec}" in guest.machine.lacks:
            raise PlanError(f"hda-{codec} not supported in this QEMU binary", snd.describe(),
                            kind="unsupported")
