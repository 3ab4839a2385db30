"""Parse what the guest's ``/init`` printed (see ``initscript``) and decode config space.

Kernel messages share the console, so every line is matched on its own and
anchored at ``PCIPLAN <word> ``; anything else is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ADDR = r"([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])"
_DEV = re.compile(
    r"PCIPLAN dev " + _ADDR + r" ([0-9a-f]{4}) ([0-9a-f]{4}) ([0-9a-f]{6}) (\S+) (.+?)"
    r" msi=(\d+) msix=(\d+) irq=(\d+)\s*$")
_BRIDGE = re.compile(r"PCIPLAN bridge " + _ADDR + r" (\d+) (\d+)\s*$")
_CFG = re.compile(r"PCIPLAN cfg " + _ADDR + r"\s*$")
_HEX = re.compile(r"^\s*(?:[0-9a-f]{2}\s+)*[0-9a-f]{2}\s*$")
_SIMPLE = re.compile(r"PCIPLAN (begin|end|init|insmod-failed|module-missing) ?(.*?)\s*$")

GuestAddr = tuple[int, int, int, int]   # domain, bus number, slot, function


def fmt(a: GuestAddr) -> str:
    return f"{a[0]:04x}:{a[1]:02x}:{a[2]:02x}.{a[3]:x}"


@dataclass
class Caps:
    """What config space says (decoded on the host from the guest's hex dump)."""

    msi: bool = False
    msi_enabled: bool = False
    msix: bool = False
    msix_enabled: bool = False
    msix_table: int = 0
    #: PCIe device/port type (0 endpoint, 4 root port, 7 PCIe-to-PCI bridge...), None: no PCIe cap
    pcie_type: int | None = None
    names: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return ",".join(self.names) or "none"


def decode_caps(cfg: bytes) -> Caps:
    """The standard capability list of a function's config space (first 256 bytes)."""
    caps = Caps()
    if len(cfg) < 64 or not (cfg[6] & 0x10):
        return caps
    p, guard = cfg[0x34] & 0xFC, 0
    while 0x40 <= p < len(cfg) - 3 and guard < 48:
        cid, nxt = cfg[p], cfg[p + 1]
        ctl = cfg[p + 2] | cfg[p + 3] << 8
        if cid == 0x05:
            caps.msi, caps.msi_enabled = True, bool(ctl & 1)
            caps.names.append("MSI" + ("+" if ctl & 1 else "-"))
        elif cid == 0x11:
            caps.msix, caps.msix_enabled = True, bool(ctl & 0x8000)
            caps.msix_table = (ctl & 0x7FF) + 1
            caps.names.append(f"MSI-X{'+' if ctl & 0x8000 else '-'}({caps.msix_table})")
        elif cid == 0x10:
            caps.pcie_type = (cfg[p + 2] >> 4) & 0xF
            caps.names.append(f"PCIe({caps.pcie_type})")
        else:
            caps.names.append({0x01: "PM", 0x09: "Vendor", 0x0D: "SSVID", 0x0C: "SHPC", 0x12: "SATA",
                               0x13: "AF"}.get(cid, f"cap{cid:02x}"))
        p, guard = nxt & 0xFC, guard + 1
    return caps


@dataclass
class GuestDev:
    addr: GuestAddr
    vendor: int
    device: int
    cls: int
    mode: str            # MSI-X, MSI, INTx, none, unbound
    driver: str          # "-" when none is bound
    msi: int
    msix: int
    irq: int
    secondary: int | None = None
    subordinate: int | None = None
    config: bytes = b""

    @property
    def caps(self) -> Caps:
        return decode_caps(self.config)

    @property
    def pin(self) -> int:
        """Interrupt pin (1-4 = INTA-INTD, 0 = none) from config space."""
        return self.config[0x3D] if len(self.config) > 0x3D else 0

    @property
    def ids(self) -> str:
        return f"{self.vendor:04x}:{self.device:04x}"

    @property
    def has_interrupt(self) -> bool:
        """Can the function raise an interrupt at all (a pin, MSI or MSI-X)?"""
        c = self.caps
        return bool(self.pin or c.msi or c.msix)


@dataclass
class GuestReport:
    devices: dict[GuestAddr, GuestDev] = field(default_factory=dict)
    kernel: str = ""
    began: float | None = None    # guest uptime when the report started
    ended: float | None = None
    init_at: float | None = None  # guest uptime when /init started
    complete: bool = False
    insmod_failed: list[str] = field(default_factory=list)
    module_missing: list[str] = field(default_factory=list)

    def at(self, a: GuestAddr) -> GuestDev | None:
        return self.devices.get(a)


def _addr(m: re.Match, i: int = 1) -> GuestAddr:
    return (int(m.group(i), 16), int(m.group(i + 1), 16), int(m.group(i + 2), 16), int(m.group(i + 3)))


def _float(text: str) -> float | None:
    try:
        return float(text.split()[-1])
    except (ValueError, IndexError):
        return None


def parse(console: str) -> GuestReport:
    rep = GuestReport()
    cfg_for: GuestDev | None = None
    cfg_hex: list[str] = []

    def flush() -> None:
        nonlocal cfg_for, cfg_hex
        if cfg_for is not None:
            try:
                cfg_for.config = bytes.fromhex("".join(cfg_hex))
            except ValueError:
                cfg_for.config = b""
            if cfg_for.mode == "INTx" and not cfg_for.has_interrupt:
                cfg_for.mode = "none"
        cfg_for, cfg_hex = None, []

    for raw in console.splitlines():
        line = raw.replace("\r", "")
        if cfg_for is not None:
            if _HEX.match(line):
                cfg_hex.append(line)
                continue
            flush()
        i = line.find("PCIPLAN ")
        if i < 0:
            continue
        line = line[i:]
        m = _DEV.match(line)
        if m:
            a = _addr(m)
            rep.devices[a] = GuestDev(a, int(m.group(5), 16), int(m.group(6), 16), int(m.group(7), 16),
                                      m.group(8), m.group(9), int(m.group(10)), int(m.group(11)),
                                      int(m.group(12)))
            continue
        m = _BRIDGE.match(line)
        if m:
            d = rep.devices.get(_addr(m))
            if d is not None:
                d.secondary, d.subordinate = int(m.group(5)), int(m.group(6))
            continue
        m = _CFG.match(line)
        if m:
            cfg_for = rep.devices.get(_addr(m))
            cfg_hex = []
            continue
        m = _SIMPLE.match(line)
        if not m:
            continue
        word, rest = m.group(1), m.group(2)
        if word == "init":
            rep.init_at = _float(rest)
        elif word == "begin":
            rep.kernel = rest.split()[0] if rest else ""
            rep.began = _float(rest)
        elif word == "end":
            rep.ended = _float(rest)
            rep.complete = True
        elif word == "insmod-failed":
            rep.insmod_failed.append(rest)
        elif word == "module-missing":
            rep.module_missing.append(rest)
    flush()
    return rep
