"""Plans made with --hotplug-ports and --capacity max, checked by a real QEMU (``pciplan verify``).

QEMU builds the planned tree (TCG, paused) and every device must sit where the
plan says; into empty hot-pluggable slots a device is hot-plugged.  Skipped
while ``pciplan verify`` is not there, or without the QEMU binary.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pciplan.verify") is None
                       or importlib.util.find_spec("pciplan.cli.qemu") is None,
                       reason="pciplan verify is not available yet"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 is not installed"),
]


def nics(model: str, n: int) -> str:
    return "".join(f"<interface type='user'><mac address='52:54:00:{i >> 8 & 255:02x}:{i & 255:02x}:01'/>"
                   f"<model type='{model}'/></interface>" for i in range(n))


def domain(machine: str, devices: str) -> str:
    return (f"<domain type='qemu'><name>v</name><memory>262144</memory>"
            f"<os><type arch='x86_64' machine='{machine}'>hvm</type></os><devices>{devices}</devices></domain>")


def verify(tmp_path, xml: str, *args: str) -> subprocess.CompletedProcess:
    f = tmp_path / "guest.xml"
    f.write_text(xml)
    return subprocess.run([sys.executable, "-m", "pciplan", "verify", str(f), "--timeout", "120", *args],
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_hotplug_ports_4_plan_on_qemu(tmp_path, machine):
    devs = nics("virtio", 2) + nics("e1000", 1) + "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
    r = verify(tmp_path, domain(machine, devs), "--hotplug-ports", "4", "--hotplug-all")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("OK:"), r.stdout
    if machine == "q35":
        assert "hot-plug into 4 " in r.stdout or "hot-plug into" in r.stdout, r.stdout


@pytest.mark.parametrize("machine,model,n", [("q35", "virtio", 240), ("pc", "e1000", 59)],
                         ids=["q35-240-virtio", "pc-59-e1000"])
def test_capacity_max_plan_on_qemu(tmp_path, machine, model, n):
    r = verify(tmp_path, domain(machine, nics(model, n)), "--capacity", "max")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("OK:"), r.stdout
