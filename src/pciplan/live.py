"""The libvirt edge: read a running domain's XML and hot-plug a device (libvirt-python).

libvirt-python is optional (``pip install 'pciplan[libvirt]'``); it is imported
only here, only when a command asks for a live domain.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InputError, PciplanError

INSTALL_HINT = ("libvirt-python is not installed: `pip install 'pciplan[libvirt]'` "
                "(building it needs the libvirt-dev and pkg-config packages)")

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


class LiveError(PciplanError):
    """libvirt refused an operation on a running domain (exit status 1)."""


def _libvirt() -> Any:
    try:
        import libvirt  # type: ignore[import-not-found]
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return libvirt


def _message(err: Exception) -> str:
    get = getattr(err, "get_error_message", None)
    return (get() if get else None) or str(err)


class LiveDomain:
    """A domain of a libvirt connection, looked up by name (or UUID)."""

    def __init__(self, uri: str | None, name: str) -> None:
        libvirt = _libvirt()
        # errors are reported as exceptions; keep libvirt from printing them too
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        self.libvirt = libvirt
        self.name = name
        try:
            self.conn = libvirt.open(uri)
        except libvirt.libvirtError as err:
            raise InputError(f"cannot connect to {uri or 'the default libvirt URI'}: {_message(err)}") from None
        try:
            if UUID_RE.fullmatch(name):
                self.dom = self.conn.lookupByUUIDString(name)
            else:
                self.dom = self.conn.lookupByName(name)
        except libvirt.libvirtError as err:
            self.conn.close()
            raise InputError(f"no domain '{name}' at {uri or 'the default libvirt URI'}: "
                             f"{_message(err)}") from None

    def xml(self) -> str:
        """The live XML of a running domain (the persistent one when it is shut off)."""
        try:
            return self.dom.XMLDesc(0)
        except self.libvirt.libvirtError as err:
            raise InputError(f"cannot read the XML of domain '{self.name}': {_message(err)}") from None

    def is_active(self) -> bool:
        return bool(self.dom.isActive())

    def networks(self) -> dict[str, bool] | None:
        """The virtual networks of the domain's host: name -> active (None: not listable)."""
        try:
            return {n.name(): bool(n.isActive()) for n in self.conn.listAllNetworks()}
        except self.libvirt.libvirtError:
            return None

    def attach(self, device_xml: str) -> None:
        """Hot-plug a device into the running domain (live only, not the persistent config)."""
        try:
            self.dom.attachDeviceFlags(device_xml, self.libvirt.VIR_DOMAIN_AFFECT_LIVE)
        except self.libvirt.libvirtError as err:
            raise LiveError(f"libvirt refused the attach: {_message(err)}",
                            f"domain '{self.name}'") from None

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
