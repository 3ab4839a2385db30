"""The errors pciplan raises, and what each means for a caller.

Every error carries ``element``: a short description of the XML element it is
about (``controller type='pci' index='3'``, ``interface #2``) or ``None`` when it
concerns the document as a whole.  ``str(err)`` is the one-line message the CLI
prints after ``error: ``.
"""

from __future__ import annotations

from typing import Callable, Union

#: an error's element: its description, or a function making it (called only when an
#: error is raised: the planner names every device it places, and rarely fails)
Element = Union[str, None, Callable[[], str]]


#: what libvirt's client says of a failure its daemon gave no reason for (a lease without a
#: lockspace, an NVRAM file its firmware cannot hold, an emulator it cannot read)
UNKNOWN_CAUSE = "An error occurred, but the cause is unknown"


class PciplanError(Exception):
    """Base class of every error pciplan raises on purpose."""

    #: CLI exit status for this kind of error.
    exit_status = 1

    def __init__(self, reason: str, element: Element = None, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.element: str | None = element() if callable(element) else element
        self.line = line

    def __str__(self) -> str:
        where = self.element or ""
        if self.line is not None:
            where = f"{where} (line {self.line})" if where else f"line {self.line}"
        return f"{where}: {self.reason}" if where else self.reason


class InputError(PciplanError):
    """The input is not a domain document at all: unreadable, not XML, not ``<domain>``."""

    exit_status = 2


class PlanError(PciplanError):
    """The configuration cannot be planned: libvirt 9.0 would refuse to define it.

    ``kind`` follows libvirt's error classes: ``"xml"`` for values the user wrote
    that are invalid, ``"unsupported"`` for valid values this machine cannot take,
    ``"internal"`` for a layout that cannot be completed (no slot left, ...).
    """

    def __init__(self, reason: str, element: Element = None, line: int | None = None,
                 kind: str = "xml") -> None:
        super().__init__(reason, element, line)
        self.kind = kind


class CapacityError(PlanError):
    """A PCI layout cannot be completed: no free slot, port or bus is left."""

    def __init__(self, reason: str, element: Element = None, line: int | None = None) -> None:
        super().__init__(reason, element, line, kind="internal")


class HostError(PlanError):
    """libvirt 9.0 would refuse the configuration on the host pciplan asked (``Options.host``:
    by default the machine it runs on), for what that host lacks: KVM for the guest's
    arch, the emulator, swtpm, SEV, SGX, SPICE's TLS in qemu.conf.  On a host that has it,
    the domain may be fine."""

    def __init__(self, reason: str, element: Element = None, line: int | None = None) -> None:
        super().__init__(reason, element, line, kind="unsupported")


class OutputError(PciplanError):
    """The result cannot be written (unwritable folder, disk full, ...); the input is untouched."""

    exit_status = 2
