"""The libvirt oracle the differential tests stand on (support/libvirt_oracle.py).

libvirt 9.0 crashes on a few inputs of its own test suite, and a CI machine has no service
manager to start it again: the oracle does, or every test after the crash would fail.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from support import libvirt_oracle

MINIMAL = (Path(__file__).parent / "golden" / "q35-minimal-headless.in.xml").read_text()


def _libvirtd_pids() -> set[str]:
    return set(subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True).stdout.split())


@pytest.mark.skipif(not libvirt_oracle.available(), reason=libvirt_oracle.unavailable_reason() or "-")
@pytest.mark.skipif(os.geteuid() != 0 or not os.access(libvirt_oracle.LIBVIRTD, os.X_OK)
                    or libvirt_oracle._uri(None) != libvirt_oracle.DEFAULT_URI,
                    reason="starting the daemon again needs root and the local libvirtd")
def test_a_daemon_that_died_is_started_again():
    before = _libvirtd_pids()
    subprocess.run(["pkill", "-x", "libvirtd"], check=True)
    deadline = time.monotonic() + 30
    while before & _libvirtd_pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not before & _libvirtd_pids(), "libvirtd did not stop"
    accepted, text = libvirt_oracle.Oracle(cache_dir=False).run(MINIMAL)
    assert accepted and "<controller type='pci'" in text
    assert _libvirtd_pids()
