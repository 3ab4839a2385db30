"""The machine-name table (``machines.EMULATOR_MACHINES``): QEMU 7.2's names, and libvirt's
exact refusal of the others (the golden test blanks quoted names; this one does not)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import pciplan
from pciplan import machines

GOLDEN = Path(__file__).resolve().parent / "golden"
_REFUSAL = re.compile(r"^error: unsupported configuration: ((Emulator '[^']*' does not support "
                      r"(machine type|arch) '[^']*')|No emulator found for arch '[^']*')$")
CASES = sorted(p for p in GOLDEN.glob("*.libvirt-error.txt") if _REFUSAL.match(p.read_text().strip()))


@pytest.mark.parametrize("error", CASES, ids=lambda p: p.name[: -len(".libvirt-error.txt")])
def test_refusal_is_libvirts_word_for_word(error):
    inp = error.with_name(error.name.replace(".libvirt-error.txt", ".in.xml"))
    with pytest.raises(pciplan.PlanError) as raised:
        pciplan.plan(inp.read_text())
    assert raised.value.reason == _REFUSAL.match(error.read_text().strip()).group(1)


def test_every_arch_has_its_default_machine_and_aliases():
    for arch, path in machines.DEFAULT_EMULATORS.items():
        emu = machines.EMULATOR_MACHINES[path]
        assert arch in emu.arches
        assert machines.default_machine(arch) in emu.machines
        for (arches, alias), full in machines.ALIASES.items():
            if arch in arches and alias in emu.machines:
                assert full in emu.machines, (arch, alias)


@pytest.mark.parametrize("path", sorted(machines.EMULATOR_MACHINES))
def test_table_is_what_the_emulator_offers(path):
    """``-machine help`` less ``none`` (libvirt never lists it), where the binary is installed."""
    if shutil.which(path) is None:
        pytest.skip(f"{path} not installed")
    out = subprocess.run([path, "-machine", "help"], capture_output=True, text=True, check=True).stdout
    if "7.2" not in subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split("\n")[0]:
        pytest.skip(f"{path} is not QEMU 7.2")
    offered = {line.split()[0] for line in out.splitlines()[1:] if line.strip()} - {"none"}
    assert machines.EMULATOR_MACHINES[path].machines == offered


@pytest.mark.parametrize("path", sorted(machines.MAX_CPUS))
def test_vcpu_limits_name_only_machines_the_emulator_has(path):
    """Every machine of the maxCpus table is a name of the same emulator (a name cut in two
    when the table was written would silently fall back to the emulator's usual count)."""
    _, others = machines.MAX_CPUS[path]
    named = {n for text in others.values() for n in text.split()}
    assert named <= machines.EMULATOR_MACHINES[path].machines, named - machines.EMULATOR_MACHINES[path].machines
