"""What libvirt 9.0 refuses of a ``<video>``, in its order.

The parser reads the model's numbers (:func:`check_parse`); validation (``validate_late``,
with the other videos, each video's address first) makes libvirt's generic checks
(the vhost-user back end, the resolution, the QXL-only sizes, a ramfb's address) before
its QEMU driver's (the machine's models, primary-only models, heads, 2D acceleration,
the QXL and VGA sizes, resolutions, 3D acceleration): :func:`check`.  The order was
checked against the libvirt 9.0 daemon with pairs of mistakes in one video.

``xmlio`` reads what the checks need of each video into a :class:`VideoFacts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from . import devices, parsecheck
from .errors import PlanError
from .records import Value

if TYPE_CHECKING:
    from .defaults import Guest
    from .domain import Device


class VideoFacts(Value):
    """What validation needs of a ``<video>`` beyond ``Device``'s fields."""

    #: ``<model>``'s attributes
    model: dict[str, str]
    #: ``<acceleration>``'s and ``<resolution>``'s attributes, None without the element
    accel: dict[str, str] | None = None
    resolution: dict[str, str] | None = None
    #: ``<driver name>``
    driver: str | None = None
    #: the virtio options ``<driver>`` sets (iommu, ats, packed, page_per_vq), in that order
    virtio: tuple[str, ...] = ()

    def __init__(self, model=..., accel=None, resolution=None, driver=None, virtio=()) -> None:
        self.model = {} if model is ... else model
        self.accel = accel
        self.resolution = resolution
        self.driver = driver
        self.virtio = virtio

    def size(self, name: str) -> int:
        """A size the parser read (0: not given); ram and vram as post-parse leaves them,
        rounded up to a power of two (in an unsigned int: past 2**31 it is 0)."""
        n = parsecheck.c_uint(self.model.get(name) or "0", 10) or 0
        if name in ("ram", "vram") and n:
            n = (1 << (n - 1).bit_length()) & 0xFFFFFFFF
        return n


def read(el: etree._Element, kids: dict) -> VideoFacts:
    m = kids.get("model")
    drv = kids.get("driver")
    f = VideoFacts(driver=drv.get("name") if drv is not None else None)
    if drv is not None:
        f.virtio = tuple(o for o in parsecheck.VIRTIO_DRIVER_SWITCHES if drv.get(o) is not None)
    if m is not None:
        f.model = dict(m.attrib)
        for child in m:
            if child.tag == "acceleration" and f.accel is None:
                f.accel = dict(child.attrib)
            elif child.tag == "resolution" and f.resolution is None:
                f.resolution = dict(child.attrib)
    return f


#: the sizes of a ``<model>`` the parser reads, in its order, and its error class
SIZES = ("ram", "vram", "vram64", "vgamem")
#: the largest size (KiB) QEMU takes for a QXL video's vram and ram
QXL_SIZE_MAX = 0xFFFFFFFF // 1024
#: the smallest vgamem of a QXL video and vram of a VGA-like one (KiB)
MIN_KIB = 1024
#: models with a ``<resolution>``, and whose vram is at least 1 MiB
RESOLUTION_MODELS = frozenset({"vga", "qxl", "virtio", "bochs"})
VGA_LIKE = frozenset({"vga", "vmvga"})
#: libvirt's refusal of each virtio option on a device that is not virtio
VIRTIO_ONLY = {"iommu": "iommu driver option is only supported for virtio devices",
               "ats": "ats driver option is only supported for virtio devices",
               "packed": "packed driver option is only supported for virtio devices",
               "page_per_vq": "page_per_vq option is only supported for virtio devices"}


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of a video's ``<model>``."""
    m = kids.get("model")
    if m is None:
        return
    accel = m.find("acceleration")
    if accel is not None:
        for name in ("accel3d", "accel2d"):
            parsecheck._word(accel, name, parsecheck.YES_NO, what)
        if not any(accel.get(k) for k in ("accel2d", "accel3d", "rendernode")):
            raise PlanError("missing values for acceleration", parsecheck._what(what), accel.sourceline,
                            kind="unsupported")
    res = m.find("resolution")
    if res is not None:
        for name in ("x", "y"):
            v = res.get(name)
            if v is None:
                raise PlanError(f"Missing required attribute '{name}' in element 'resolution'",
                                parsecheck._what(what), res.sourceline)
            if parsecheck.c_uint(v, 10) is None:
                raise parsecheck._invalid(res, name, v, what, "non-negative integer value")
    for name in SIZES:
        v = m.get(name)
        if v is not None and parsecheck.c_uint(v, 10) is None:
            raise PlanError(f"cannot parse video {name} '{v}'", parsecheck._what(what), m.sourceline)
    heads = m.get("heads")
    if heads is not None and parsecheck.c_uint(heads, 10) is None:
        raise PlanError(f"cannot parse video heads '{heads}'", parsecheck._what(what), m.sourceline,
                        kind="internal")


def check_generic(video: Device) -> None:
    """libvirt's own checks of one video (before its address's and QEMU's)."""
    f = video.facts if isinstance(video.facts, VideoFacts) else VideoFacts()
    what = video.describe()
    model = video.model

    def refuse(message: str, kind: str = "unsupported") -> PlanError:
        return PlanError(message, what, kind=kind)
    accel = f.accel or {}
    if model == "none":
        return  # (the first video: libvirt clears a 'none' one's settings; another: refused before)
    if model == "default":  # (an emulator with neither cirrus nor VGA: m68k, cris, microblaze)
        raise refuse("missing video model and cannot determine default", "internal")
    if f.driver == "vhostuser":
        if model != "virtio":
            raise refuse("'vhostuser' driver is only supported with 'virtio' device")
    elif accel.get("rendernode"):
        raise refuse("unsupported rendernode accel attribute without 'vhostuser'")
    res = f.resolution
    if res is not None and (parsecheck.c_uint(res.get("x") or "0", 10) == 0 or
                            parsecheck.c_uint(res.get("y") or "0", 10) == 0):
        raise refuse("video resolution values must be greater than 0")
    if model != "qxl":
        for name in ("ram", "vram64", "vgamem"):
            if f.size(name):
                raise refuse(f"{name} attribute only supported for video type qxl")
    if model == "ramfb" and video.address is not None:
        raise refuse("address not supported for video type ramfb")
    if model != "virtio" and f.virtio:
        raise refuse(VIRTIO_ONLY[f.virtio[0]])


def check_qemu(guest: Guest, video: Device, primary: bool) -> None:
    """QEMU's checks of one video (after its address's)."""
    f = video.facts if isinstance(video.facts, VideoFacts) else VideoFacts()
    what = video.describe()
    model = video.model

    def refuse(message: str, kind: str = "unsupported") -> PlanError:
        return PlanError(message, what, kind=kind)
    accel = f.accel or {}
    res = f.resolution
    if model == "none":
        return
    if model is not None and model not in guest.machine.video_models:
        raise refuse(f"domain configuration does not support video model '{model}'")
    if model not in devices.SECONDARY_VIDEO_MODELS:
        if not primary:
            raise refuse(f"video type '{model}' is only valid as primary video device")
        if f.model.get("heads") is not None and f.size("heads") != 1:
            raise refuse(f"video type '{model}' doesn't support multiple 'heads'")
    if accel.get("accel2d") == "yes":
        raise refuse("qemu does not support the accel2d setting")
    if model == "qxl":
        for name in ("vram", "ram"):
            if f.size(name) > QXL_SIZE_MAX:
                raise refuse(f"numerical overflow: value for '{name}' must be less than "
                             f"'{QXL_SIZE_MAX}'", kind="xml")
        vgamem = f.size("vgamem")
        if vgamem and vgamem < MIN_KIB:
            raise refuse("value for 'vgamem' must be at least 1 MiB (1024 KiB)")
        if vgamem & (vgamem - 1):
            raise refuse("value for 'vgamem' must be power of two")
    if res is not None and model not in RESOLUTION_MODELS:
        raise refuse("model resolution is not supported", kind="xml")
    if model in VGA_LIKE and 0 < f.size("vram") < MIN_KIB:
        raise refuse("value for 'vram' must be at least 1 MiB (1024 KiB)")
    if f.driver != "vhostuser" and accel.get("accel3d") == "yes" and model != "virtio":
        raise refuse("3d acceleration is supported only with 'virtio' video device")
