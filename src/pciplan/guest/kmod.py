"""Kernel modules without modprobe: read a ``.ko``'s ``.modinfo`` and order a set for insmod.

Debian's kernel packages ship no ``modules.dep`` (depmod makes it on
install), so the load order is worked out here from each module's
``depends=`` field, read straight from the ELF section.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ModInfo:
    name: str
    path: str                       # relative to lib/modules/<kver>
    depends: tuple[str, ...] = ()
    softdeps: tuple[str, ...] = ()  # "pre:" soft dependencies
    aliases: tuple[str, ...] = ()
    vermagic: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "path": self.path, "depends": list(self.depends),
                "softdeps": list(self.softdeps), "aliases": list(self.aliases), "vermagic": self.vermagic}

    @classmethod
    def from_json(cls, d: dict) -> "ModInfo":
        return cls(d["name"], d["path"], tuple(d["depends"]), tuple(d.get("softdeps", ())),
                   tuple(d["aliases"]), d.get("vermagic", ""))


def module_name(path: str | Path) -> str:
    """``.../xhci-pci.ko`` -> ``xhci_pci`` (the kernel's spelling)."""
    base = Path(path).name
    for ext in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return base.replace("-", "_")


def modinfo_section(data: bytes) -> bytes:
    """The raw ``.modinfo`` section of an ELF relocatable object (32/64-bit, either endian)."""
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
        fmt, off_i, size_i = end + "IIQQQQIIQQ", 4, 5
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)
        fmt, off_i, size_i = end + "IIIIIIIIII", 4, 5
    sections = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
    strtab = sections[shstrndx]
    names = data[strtab[off_i]: strtab[off_i] + strtab[size_i]]
    for s in sections:
        nm = names[s[0]: names.index(b"\0", s[0])]
        if nm == b".modinfo":
            return data[s[off_i]: s[off_i] + s[size_i]]
    return b""


def read_modinfo(data: bytes, path: str) -> ModInfo:
    fields: dict[str, list[str]] = {}
    for entry in modinfo_section(data).split(b"\0"):
        if b"=" in entry:
            k, v = entry.decode(errors="replace").split("=", 1)
            fields.setdefault(k, []).append(v)
    name = (fields.get("name") or [module_name(path)])[0]
    deps = tuple(d for d in ",".join(fields.get("depends", [])).split(",") if d)
    soft: list[str] = []
    for s in fields.get("softdep", []):
        # "pre: crc32c post: foo"
        words = s.split()
        mode = ""
        for w in words:
            if w.endswith(":"):
                mode = w[:-1]
            elif mode == "pre":
                soft.append(w.replace("-", "_"))
    return ModInfo(name, path, deps, tuple(soft), tuple(fields.get("alias", [])),
                   (fields.get("vermagic") or [""])[0])


def scan(moddir: Path) -> dict[str, ModInfo]:
    """name -> ModInfo of every ``.ko`` below ``moddir`` (``lib/modules/<kver>``)."""
    out: dict[str, ModInfo] = {}
    for p in sorted(moddir.rglob("*.ko")):
        rel = str(p.relative_to(moddir))
        info = read_modinfo(p.read_bytes(), rel)
        out[info.name] = info
    return out


@dataclass
class LoadOrder:
    order: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def load_order(wanted: list[str], mods: dict[str, ModInfo], builtin: set[str] = frozenset()) -> LoadOrder:
    """Every module ``wanted`` needs, dependencies first (depth-first, in ``wanted`` order).

    Built-in modules are skipped; names that are neither a module nor built in
    are reported in ``missing``.
    """
    result = LoadOrder()
    seen: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in seen or name in stack:
            return
        info = mods.get(name)
        if info is None:
            if name not in builtin and name not in result.missing:
                result.missing.append(name)
            seen.add(name)
            return
        for dep in info.softdeps + info.depends:
            if dep in mods or dep not in builtin:
                if dep in info.softdeps and dep not in mods:
                    continue   # a soft dependency that is neither a module nor needed
                visit(dep, stack + (name,))
        seen.add(name)
        result.order.append(name)

    for w in wanted:
        visit(w, ())
    return result
