"""The ``pciplan`` package as a library user imports it: any module, or any public name,
first thing in a fresh interpreter.  (The test process has long imported everything, so
only a new interpreter shows an import that works only after another one.)  ``import
pciplan`` loads its public names on first use, so the command can set its process up
before lxml and the planner load."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import pciplan

SRC = Path(pciplan.__file__).resolve().parent
MODULES = sorted(
    ".".join(("pciplan", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
    for p in SRC.rglob("*.py") if p.name != "__main__.py")


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_every_module_imports_first_in_a_fresh_interpreter():
    # one interpreter per module (their imports would otherwise help one another),
    # a few at a time to keep the test short
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(MODULES, pool.map(lambda m: _fresh(f"import {m}"), MODULES)))
    failed = {m: (p.stderr.strip().splitlines() or ["?"])[-1] for m, p in runs.items() if p.returncode}
    assert not failed, failed
    assert "pciplan.xmlio" in MODULES and "pciplan.cli.fastplan" in MODULES


@pytest.mark.parametrize("name", [n for n in pciplan.__all__ if n != "__version__"])
def test_every_public_name_imports_first_in_a_fresh_interpreter(name):
    p = _fresh(f"from pciplan import {name}; import pciplan; assert {name} is pciplan.{name}")
    assert p.returncode == 0, p.stderr


def test_star_import_gives_the_public_names():
    ns: dict = {}
    exec("from pciplan import *", ns)
    assert {n for n in ns if not n.startswith("__")} | {"__version__"} == set(pciplan.__all__)
    assert ns["plan"] is pciplan.plan


def test_all_lists_exactly_the_exported_names_and_dir_shows_them():
    assert set(pciplan.__all__) == set(pciplan._EXPORTS) | {"__version__"}
    assert set(pciplan.__all__) <= set(dir(pciplan))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'plann'"):
        pciplan.plann  # noqa: B018
    with pytest.raises(ImportError):
        exec("from pciplan import plann", {})


def test_the_command_loads_neither_lxml_nor_the_planner_nor_click_before_it_runs():
    """What the console script imports before ``main()``: ``pciplan.cli``, which leaves
    lxml, the planner and click until the command has looked at its arguments (and,
    for a plain ``pciplan plan``, turned the garbage collector off: ``cli.fastplan``)."""
    p = _fresh("import sys, pciplan.cli; print(' '.join(sorted(m for m in sys.modules "
               "if m.split('.')[0] in ('lxml', 'click', 'pciplan'))))")
    assert p.stdout.split() == ["pciplan", "pciplan.cli", "pciplan.errors"], p.stderr
