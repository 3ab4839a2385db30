"""What libvirt 9.0's parser refuses of a ``<tpm>``'s back end, in its order: one back
end, an emulator's version, encryption secret, persistent state and PCR banks, an
external one's source type (:func:`check_parse`).  Checked against the libvirt 9.0
daemon with pairs of mistakes.  (What depends on swtpm being installed is not judged.)
"""

from __future__ import annotations


from lxml import etree

from . import parsecheck, sources
from .errors import PlanError

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
        if stype is None:
            raise refuse("missing external TPM backend type")
        if stype not in parsecheck.CHARDEV_TYPES:
            raise refuse(f"unknown backend type '{stype}' for external TPM", "unsupported")
