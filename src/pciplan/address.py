"""PCI addresses: the value type, parsing of libvirt's attribute spellings, formatting."""

from __future__ import annotations

from .records import Row

DOMAIN_LAST = 0xFFFF
BUS_LAST = 0xFF
SLOT_LAST = 0x1F
FUNCTION_LAST = 7
SLOTS_PER_BUS = SLOT_LAST + 1
FUNCTIONS_PER_SLOT = FUNCTION_LAST + 1


class PciAddress(Row):
    """domain:bus:slot.function of one PCI function (ordered as that tuple)."""

    domain: int = 0
    bus: int = 0
    slot: int = 0
    function: int = 0

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}"

    @property
    def is_empty(self) -> bool:
        """libvirt's "empty" address: domain, bus and slot all zero (function ignored)."""
        return not (self.domain or self.bus or self.slot)

    def with_bus(self, bus: int) -> "PciAddress":
        return PciAddress(self.domain, bus, self.slot, self.function)


def parse_number(text: str) -> int:
    """Parse a number the way libvirt's address parser does: decimal, or 0x-hex.

    A leading ``0`` means octal to libvirt's strtol(..., 0); we follow it.
    Raises ``ValueError`` for anything else.
    """
    s = text.strip()
    if not s:
        raise ValueError(text)
    neg = s.startswith("-")
    body = s[1:] if neg or s.startswith("+") else s
    if body.lower().startswith("0x"):
        value = int(body[2:], 16)
    elif len(body) > 1 and body.startswith("0"):
        value = int(body[1:], 8)
    else:
        value = int(body, 10)
    return -value if neg else value


def format_hex(value: int, width: int) -> str:
    return f"0x{value:0{width}x}"
