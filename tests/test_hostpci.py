"""How a host PCI device is classified, as libvirt 9.0 reads sysfs (virPCIDeviceInit).

A device with the PCI Express capability is PCIe; without it (no capability list,
or a list without that capability) libvirt goes by the size of the config space:
256 bytes is conventional PCI, anything else (4096: extended config space) PCIe.
A device that cannot be read is unknown (libvirt then plans it as PCIe).
Checked against the real daemon on this sandbox's host bridge 0000:00:00.0, which
has a 4096-byte config space without a capability list: libvirt puts it on a
pcie-root-port (golden case q35-mistake-hostdev-source-without-address's input).
"""

from __future__ import annotations

from pciplan import hostpci

SOURCE = {"domain": "0x0000", "bus": "0x00", "slot": "0x03", "function": "0x0"}


def _device(tmp_path, config: bytes) -> None:
    d = tmp_path / "0000:00:03.0"
    d.mkdir()
    (d / "config").write_bytes(config)


def _config(size: int, caps: list[int] | None) -> bytes:
    c = bytearray(size)
    if caps:
        c[6] = hostpci.CAP_LIST_BIT
        ptr = 0x40
        c[hostpci.CAP_POINTER] = ptr
        for i, cap in enumerate(caps):
            c[ptr] = cap
            c[ptr + 1] = ptr + 0x10 if i + 1 < len(caps) else 0
            ptr += 0x10
    return bytes(c)


def test_express_capability_means_pcie(tmp_path):
    _device(tmp_path, _config(4096, [0x01, 0x05, hostpci.CAP_ID_EXP]))
    assert hostpci.is_conventional(SOURCE, tmp_path) is False


def test_256_bytes_without_express_capability_is_conventional(tmp_path):
    _device(tmp_path, _config(256, [0x01, 0x05]))
    assert hostpci.is_conventional(SOURCE, tmp_path) is True


def test_256_bytes_without_capability_list_is_conventional(tmp_path):
    _device(tmp_path, _config(256, None))
    assert hostpci.is_conventional(SOURCE, tmp_path) is True


def test_extended_config_space_without_capability_list_is_pcie(tmp_path):
    # libvirt's fallback: the capability search fails, the size is not 256
    _device(tmp_path, _config(4096, None))
    assert hostpci.is_conventional(SOURCE, tmp_path) is False


def test_absent_device_is_unknown(tmp_path):
    assert hostpci.is_conventional(SOURCE, tmp_path) is None
    assert hostpci.is_conventional({"bus": "zz"}, tmp_path) is None
