"""What libvirt 9.0 refuses of the audio back ends (``<audio>``) and of the ``<audio id>``
a ``<sound>`` or a VNC or D-Bus ``<graphics>`` names, in its order.

* the parser (:func:`check_parse`, after the type's word): the id (required, not 0),
  ``timerPeriod``, the ``<input>``/``<output>`` settings every back end has (mixing
  engine, fixed settings and their ``<settings>``), then the back end's own attributes
  (``BACKEND_ATTRS``); a ``<sound>``'s or a graphics' ``<audio id>``
  (:func:`check_reference`) as the parser reads that element;
* post-parse (:func:`default_audio`): with no ``<audio>`` written, libvirt's QEMU driver
  adds one, id 1, whose type follows the graphics (as its default qemu.conf has it: no
  host audio for VNC or a guest without graphics, none at all after SDL);
* validation: a sound's or VNC's id must be an audio's (:func:`check_id`, libvirt's
  generic check of that device), a D-Bus display's audio must be a D-Bus one
  (:func:`check_dbus_display`, QEMU's); after the graphics, each audio: its id used once,
  then QEMU's: SPICE audio needs SPICE graphics (:func:`validate`).

Checked against the libvirt 9.0 daemon (each refusal, near-miss values it accepts, and
pairs of mistakes for the stage).  Audio takes no PCI address: pciplan reads nothing
else of it.
"""

from __future__ import annotations


from lxml import etree

from . import parsecheck
from .errors import PlanError
from .records import Row

#: the sample formats of ``<settings format>``
FORMATS = frozenset({"u8", "s8", "u16", "s16", "u32", "s32", "f32"})
#: the drivers an SDL back end may name
SDL_DRIVERS = frozenset({"esd", "alsa", "arts", "pulseaudio"})
YES_NO = frozenset({"yes", "no"})
#: TABLE: per back end, what its parser reads (in order) of ``<audio>`` itself, then of
#: each of ``<input>`` and ``<output>``: (attribute, how): "bool" yes/no, "uint" a
#: number, "sdl" a driver, "dsp" a signed number that may not be negative
BACKEND_ATTRS: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {
    "coreaudio": ((), (("bufferCount", "uint"),)),
    "jack": ((), (("exactName", "bool"),)),
    "oss": ((("tryMMap", "bool"), ("exclusive", "bool"), ("dspPolicy", "dsp")),
            (("tryPoll", "bool"), ("bufferCount", "uint"))),
    "pulseaudio": ((), (("latency", "uint"),)),
    "sdl": ((("driver", "sdl"),), (("bufferCount", "uint"),)),
}


class AudioFacts(Row):
    """What validation needs of one ``<audio>``."""

    id: int
    type: str | None


def read(el: etree._Element, kids: dict) -> AudioFacts:
    return AudioFacts(parsecheck.c_uint(el.get("id") or "", 10) or 0, el.get("type"))


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of one ``<audio>`` (its type is checked before)."""
    _required_id(el, what)
    _nonzero(el, "timerPeriod", what)
    ios = [kids[name] for name in ("input", "output") if name in kids]
    for io in ios:
        _check_common(io, what)
    own, per_io = BACKEND_ATTRS.get(el.get("type") or "", ((), ()))
    for attr, how in own:
        _check_attr(el, attr, how, what)
    for io in ios:
        for attr, how in per_io:
            _check_attr(io, attr, how, what)


def check_reference(el: etree._Element | None, what: parsecheck.What) -> int:
    """A ``<sound>``'s or a graphics' ``<audio>`` child (the first): its id, required and
    not 0 (0: no such child)."""
    if el is None:
        return 0
    return _required_id(el, what)


def _required_id(el: etree._Element, what: parsecheck.What) -> int:
    if el.get("id") is None:
        raise PlanError(f"Missing required attribute 'id' in element '{el.tag}'",
                        parsecheck._what(what), el.sourceline)
    return parsecheck.nonzero_uint(el, "id", what)


def _nonzero(el: etree._Element, attr: str, what: parsecheck.What) -> None:
    if el.get(attr) is not None:
        parsecheck.nonzero_uint(el, attr, what)


def _check_common(io: etree._Element, what: parsecheck.What) -> None:
    """What every back end's ``<input>`` and ``<output>`` may say."""
    parsecheck._word(io, "mixingEngine", YES_NO, what)
    parsecheck._word(io, "fixedSettings", YES_NO, what)
    fixed = io.get("fixedSettings") == "yes"
    if fixed and io.get("mixingEngine") != "yes":
        raise PlanError("fixed audio settings requires mixing engine", parsecheck._what(what),
                        io.sourceline, kind="unsupported")
    _nonzero(io, "voices", what)
    _nonzero(io, "bufferLength", what)
    settings = io.find("settings")
    if settings is None:
        return
    if not fixed:
        raise PlanError("audio settings specified without fixed settings flag",
                        parsecheck._what(what), settings.sourceline, kind="unsupported")
    _nonzero(settings, "frequency", what)
    _nonzero(settings, "channels", what)
    parsecheck._word(settings, "format", FORMATS, what)


def _check_attr(el: etree._Element, attr: str, how: str, what: parsecheck.What) -> None:
    value = el.get(attr)
    if value is None:
        return
    if how == "bool":
        parsecheck._word(el, attr, YES_NO, what)
    elif how == "sdl":
        parsecheck._word(el, attr, SDL_DRIVERS, what)
    elif how == "uint":
        parsecheck._uint_attrs(el, (attr,), 10, what)
    else:  # "dsp"
        n = parsecheck.c_int(value, 10)
        if n is None:
            raise parsecheck._invalid(el, attr, value, what, "integer value")
        if n < 0:
            raise PlanError(f"cannot parse '{attr}' value '{n}'", parsecheck._what(what),
                            el.sourceline)


#: the graphics types that decide the audio libvirt adds: the type it gets (None: none
#: at all, the host's audio being asked for and not configured)
DEFAULT_AUDIO_BY_GRAPHICS = {"vnc": "none", "spice": "spice", "sdl": None}


def default_audio(audios: list[AudioFacts], graphics_types: list[str | None]) -> list[AudioFacts]:
    """The audios after post-parse: those written, else the one libvirt adds (id 1)."""
    if audios:
        return audios
    if not graphics_types:
        return [AudioFacts(1, "none")]
    kind: str | None = None
    for gtype in graphics_types:  # (the last of these types decides)
        if gtype in DEFAULT_AUDIO_BY_GRAPHICS:
            kind = DEFAULT_AUDIO_BY_GRAPHICS[gtype]
    return [AudioFacts(1, kind)] if kind is not None else []


def check_id(audio_id: int, audios: list[AudioFacts], what: str) -> None:
    """libvirt's generic check of a sound's or a VNC display's audio: one there is."""
    if audio_id and not any(a.id == audio_id for a in audios):
        raise PlanError(f"no audio device with ID {audio_id}", what)


def check_dbus_display(audio_id: int, audios: list[AudioFacts], what: str) -> None:
    """QEMU's check of a D-Bus display's audio (one it names that is missing passes)."""
    found = next((a for a in audios if a.id == audio_id), None) if audio_id else None
    if found is not None and found.type != "dbus":
        raise PlanError("The associated audio is not of 'dbus' kind.", what, kind="unsupported")


def validate(audios: list[AudioFacts], spice: bool) -> None:
    """Each audio (after the graphics): its id used once, then QEMU's checks."""
    for i, a in enumerate(audios):
        what = f"audio #{i + 1}"
        if any(b.id == a.id for j, b in enumerate(audios) if j != i):
            raise PlanError(f"audio ID {a.id} is used multiple times", what)
        if a.type == "spice" and not spice:
            raise PlanError("Spice audio is not supported without spice graphics", what,
                            kind="unsupported")
