"""The ``pciplan`` package as a library user imports it.

Its public names are loaded on first use (``pciplan/__init__.py``), so that the
``pciplan`` command can set its process up before lxml and the planner are
imported.  These tests hold the names to what ``__all__`` promises, and the
command to its cheap start.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import pciplan


@pytest.mark.parametrize("name", [n for n in pciplan.__all__ if n != "__version__"])
def test_every_public_name_is_the_defining_modules_object(name):
    module = pciplan._EXPORTS[name]
    defining = __import__(f"pciplan.{module}", fromlist=[name])
    assert getattr(pciplan, name) is getattr(defining, name)
    ns: dict = {}
    exec(f"from pciplan import {name}", ns)
    assert ns[name] is getattr(defining, name)


def test_all_lists_exactly_the_exported_names_and_dir_shows_them():
    assert set(pciplan.__all__) == set(pciplan._EXPORTS) | {"__version__"}
    assert set(pciplan.__all__) <= set(dir(pciplan))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'plann'"):
        pciplan.plann  # noqa: B018
    with pytest.raises(ImportError):
        exec("from pciplan import plann", {})


def test_star_import_gives_the_public_names():
    ns: dict = {}
    exec("from pciplan import *", ns)
    assert {n for n in ns if not n.startswith("__")} | {"__version__"} == set(pciplan.__all__)
    assert ns["plan"] is pciplan.plan


def test_the_command_loads_neither_lxml_nor_the_planner_nor_click_before_it_runs():
    """What the console script imports before ``main()``: ``pciplan.cli`` alone.  lxml,
    the planner and click come after the command has looked at its arguments."""
    code = ("import sys, pciplan.cli; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('lxml', 'click', 'pciplan'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["pciplan", "pciplan.cli", "pciplan.errors"]


def test_planning_through_the_package_names(tmp_path):
    xml = ("<domain type='kvm'><name>p</name><memory>1048576</memory>"
           "<os><type arch='x86_64' machine='q35'>hvm</type></os>"
           "<devices><interface type='network'><source network='default'/><model type='virtio'/>"
           "</interface></devices></domain>")
    out = pciplan.plan(xml)
    assert "pcie-root-port" in out and "<address type='pci'" in out
    with pytest.raises(pciplan.InputError):
        pciplan.plan("<notadomain/>")
