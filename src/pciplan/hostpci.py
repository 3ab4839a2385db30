"""Ask the host about a PCI device, the way libvirt does when it plans a ``<hostdev>``.

libvirt places a host PCI device behind a conventional PCI bridge when the
device exists on the host and is not PCI Express; a device that does not exist
(or cannot be read) is assumed to be PCI Express.
"""

from __future__ import annotations

import os

#: where the host's PCI devices are (a str or any path-like works; no pathlib,
#: which would cost the CLI's start-up time)
SYSFS = "/sys/bus/pci/devices"
CAP_LIST_BIT = 0x10          # status register: capabilities list present
CAP_POINTER = 0x34
CAP_ID_EXP = 0x10            # PCI Express capability
CONVENTIONAL_CONFIG_SIZE = 256


def _addr(source: dict[str, str]) -> str | None:
    try:
        parts = [int(source.get(k, "0"), 0) for k in ("domain", "bus", "slot", "function")]
    except ValueError:
        return None
    return "%04x:%02x:%02x.%x" % tuple(parts)


def virtual_function_path(source: dict[str, str], sysfs: str = SYSFS) -> str | None:
    """The sysfs link an SR-IOV virtual function has to its physical function."""
    name = _addr(source)
    return None if name is None else os.path.join(sysfs, name, "physfn")


def is_conventional(source: dict[str, str], sysfs: "str | os.PathLike[str]" = SYSFS) -> bool | None:
    """True: exists and is conventional PCI; False: exists and is PCIe; None: unknown."""
    name = _addr(source)
    if name is None:
        return None
    try:
        with open(os.path.join(sysfs, name, "config"), "rb") as f:
            config = f.read()
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    if _has_express_capability(config):
        return False
    # no PCI Express capability found (or no capability list, or only the first 64 bytes
    # readable): libvirt 9.0 then goes by the size of the config space, 256 bytes being
    # conventional PCI's (sysfs gives the size even when it lets less be read)
    return (size or len(config)) == CONVENTIONAL_CONFIG_SIZE


def _has_express_capability(config: bytes) -> bool:
    if len(config) < 64 or not config[6] & CAP_LIST_BIT:
        return False
    ptr = config[CAP_POINTER] & 0xFC
    seen = set()
    while ptr and ptr not in seen and ptr + 1 < len(config):
        seen.add(ptr)
        if config[ptr] == CAP_ID_EXP:
            return True
        ptr = config[ptr + 1] & 0xFC
    return False
