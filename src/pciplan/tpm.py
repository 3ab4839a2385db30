"""What libvirt 9.0's parser refuses of a ``<tpm>``'s back end, in its order: one back
end, an emulator's version, encryption secret, persistent state and PCR banks, an
external one's source type (:func:`check_parse`).  Checked against the libvirt 9.0
daemon with pairs of mistakes; then, in validation, what the host's swtpm can emulate
(:func:`check_swtpm`, on a host without swtpm checked against the daemon).
"""

from __future__ import annotations


from typing import TYPE_CHECKING

from lxml import etree

from . import parsecheck, sources
from .errors import HostError, PlanError
from .records import Value

if TYPE_CHECKING:
    from typing import Callable

    from .domain import Device
    from .hostcaps import Swtpm

VERSIONS = frozenset({"1.2", "2.0"})
PCR_BANKS = frozenset({"sha1", "sha256", "sha384", "sha512"})


def check_parse(el: etree._Element, what: parsecheck.What, kids: dict) -> None:
    """The parser's checks of a TPM's back end (its type's word is checked before)."""
    def refuse(message: str, kind: str = "xml") -> PlanError:
        return PlanError(message, parsecheck._what(what), el.sourceline, kind=kind)
    if len(el.findall("backend")) > 1:
        raise refuse("only one TPM backend is supported")
    backend = kids.get("backend")
    if backend is None:
        return
    btype = backend.get("type")
    if btype == "emulator":
        parsecheck._word(backend, "version", VERSIONS, what)
        enc = backend.find("encryption")
        secret = enc.get("secret") if enc is not None else None
        if secret and not sources.uuid_ok(secret):  # ('' is no secret)
            raise refuse(f"Unable to parse secret uuid '{secret}'", "internal")
        persistent = backend.get("persistent_state")
        if persistent is not None and persistent not in ("yes", "no"):
            raise refuse("Invalid persistent_state value, either 'yes' or 'no'", "internal")
        banks = backend.find("active_pcr_banks")
        for bank in banks if banks is not None else ():
            if isinstance(bank.tag, str) and bank.tag not in PCR_BANKS:
                raise refuse(f"Unsupported PCR banks '{bank.tag}'", "unsupported")
    elif btype == "external":
        src = backend.find("source")
        stype = src.get("type") if src is not None else None
        if not stype:   # (an empty type is none)
            raise refuse("missing external TPM backend type")
        if stype not in parsecheck.CHARDEV_TYPES:
            raise refuse(f"unknown backend type '{stype}' for external TPM", "unsupported")
        from . import chardevs  # (at call time: chardevs' imports come back to parsecheck)
        chardevs.check_host_side(backend, stype, what)


class TpmFacts(Value):
    """What libvirt's generic validation needs of a ``<tpm>``'s back end."""

    #: the back end's type (``emulator``, ``passthrough``, ``external``)
    backend: str | None = None
    #: an emulator's ``version`` as written (None: the default)
    version: str | None = None
    #: an emulator has ``<active_pcr_banks>``
    pcr_banks: bool = False
    #: an external one's ``<source>`` attributes (None: no source)
    source: dict[str, str] | None = None

    def __init__(self, backend=None, version=None, pcr_banks=False, source=None) -> None:
        self.backend = backend
        self.version = version
        self.pcr_banks = pcr_banks
        self.source = source


def read(el: etree._Element, kids: dict) -> TpmFacts:
    backend = kids.get("backend")
    if backend is None:
        return TpmFacts()
    src = backend.find("source")
    return TpmFacts(backend.get("type"), backend.get("version"),
                    backend.find("active_pcr_banks") is not None,
                    dict(src.attrib) if src is not None else None)


#: the TPM models whose emulator defaults to TPM 2.0 (the others, but on ARM virt: 1.2)
VERSION_2_MODELS = frozenset({"tpm-spapr", "tpm-crb"})
#: the back ends libvirt runs through swtpm (QEMU's ``tpm-emulator``)
SWTPM_BACKENDS = frozenset({"emulator", "external"})


def _facts(tpm: Device) -> TpmFacts:
    return tpm.facts if isinstance(tpm.facts, TpmFacts) else TpmFacts()


def emulated_version(f: TpmFacts, model: str | None, arm_virt: bool) -> str:
    """The TPM version an emulator back end gets: as written, or the model's default."""
    return f.version or ("2.0" if model in VERSION_2_MODELS or arm_virt else "1.2")


def check_generic(tpm: Device, model: str | None, arm_virt: bool) -> None:
    """libvirt's own checks of a TPM's back end (before its address's and QEMU's), with
    ``model`` the TPM's model after post-parse."""
    f = _facts(tpm)
    if f.backend == "emulator" and f.pcr_banks:
        version = emulated_version(f, model, arm_virt)
        if version != "2.0":
            raise PlanError("<active_pcr_banks/> requires TPM version '2.0'", tpm.describe())
    if f.backend == "external":
        src = f.source or {}
        if src.get("type") != "unix":
            raise PlanError("only source type 'unix' is supported for external TPM device",
                            tpm.describe())
        if src.get("mode") == "bind":
            raise PlanError("only 'client' mode is supported for external TPM device", tpm.describe())
        if not src.get("path"):
            raise PlanError("missing socket path for external TPM device", tpm.describe())


def check_swtpm(tpm: Device, model: str | None, arm_virt: bool, swtpm: Callable[[], Swtpm]) -> None:
    """QEMU's first check of an emulated TPM: the host's swtpm can set up its version
    (``swtpm``: asked only for an emulator back end)."""
    f = _facts(tpm)
    if f.backend == "emulator":
        version = emulated_version(f, model, arm_virt)
        if version not in swtpm().versions:
            raise HostError(f"TPM version '{version}' is not supported", tpm.describe())
