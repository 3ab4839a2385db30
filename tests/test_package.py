"""The ``pciplan`` package as a library user imports it: any module, or any public name,
first thing in a fresh interpreter.  (The test process has long imported everything, so
only a new interpreter shows an import that works only after another one.)  ``import
pciplan`` loads its public names on first use, so the command can set its process up
before lxml and the planner load."""

from __future__ import annotations

import os
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


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "q35-guest.xml"


def _imported(argv: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -m pciplan ARGV`` (the command as a program) and list what it imported."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "pciplan", *argv],
                       capture_output=True, text=True, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    return p, names - {"package"}


def test_a_plain_plan_imports_lxml_without_inspect_or_gzip():
    """lxml.etree loads ``inspect`` (with ast, dis, tokenize) and ``gzip`` when it starts,
    for extension functions and compressed output; ``pciplan plan FILE`` plans without
    either (``cli.lxmlimport``) and its output is the library's."""
    p, names = _imported(["plan", str(EXAMPLE)])
    assert p.returncode == 0, p.stderr
    assert "lxml.etree" in names and "pciplan.planner" in names
    assert not names & {"inspect", "gzip", "ast", "dis", "tokenize"}, sorted(names)
    assert p.stdout.rstrip("\n") == pciplan.plan(EXAMPLE.read_text()).rstrip("\n")


def test_lxml_imported_lean_still_has_every_feature_and_the_real_modules_stay_importable():
    code = r"""
import io, sys
from pciplan.cli.lxmlimport import import_etree
etree = import_etree()
assert "inspect" not in sys.modules and "gzip" not in sys.modules, "stand-ins left behind"
root = etree.fromstring("<a><b>x</b></a>")
out = io.BytesIO()
etree.ElementTree(root).write(out, compression=9)
import gzip
assert isinstance(gzip.GzipFile, type) and gzip.decompress(out.getvalue()).endswith(b"<a><b>x</b></a>")
def ext(ctx, a, b=1):
    return "got " + str(a)
assert etree.XPathEvaluator(root, extensions={(None, "f"): ext})("f(string(b))") == "got x"
xsl = etree.XSLT(etree.fromstring('<xsl:stylesheet version="1.0" '
    'xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:e="urn:e">'
    '<xsl:template match="/"><r><xsl:value-of select="e:g(\'y\')"/></r></xsl:template>'
    '</xsl:stylesheet>'), extensions={("urn:e", "g"): ext})
assert xsl(root).getroot().text == "got y"
import inspect
assert inspect.getfullargspec(ext).args == ["ctx", "a", "b"] and inspect.ismodule(inspect)
print("ok")
"""
    p = _fresh(code)
    assert p.stdout.strip() == "ok", p.stderr


def test_lxml_imported_lean_leaves_modules_already_loaded_alone():
    p = _fresh("import sys, inspect; from pciplan.cli.lxmlimport import import_etree; "
               "import_etree(); assert sys.modules['inspect'] is inspect and 'gzip' not in sys.modules; "
               "print('ok')")
    assert p.stdout.strip() == "ok", p.stderr


def test_a_name_lxml_takes_that_is_not_deferred_loads_the_real_module():
    """Should a later lxml take more from a deferred module, it gets the real thing."""
    p = _fresh("import sys; from pciplan.cli import lxmlimport; "
               "stand_in = lxmlimport._StandIn('gzip', frozenset()); sys.modules['gzip'] = stand_in; "
               "compress = stand_in.compress; import gzip; "
               "assert gzip is not stand_in and compress is gzip.compress; print('ok')")
    assert p.stdout.strip() == "ok", p.stderr


def test_a_plain_plan_that_warns_or_fails_does_without_click(tmp_path):
    """Warnings and errors of ``pciplan plan FILE`` are plain lines on stderr; printing
    them does not load click (20 ms) after the plan."""
    ports = "".join(f"<controller type='pci' index='{i}' model='pcie-root-port'/>" for i in range(30, 46))
    warns = tmp_path / "ports.xml"
    warns.write_text(EXAMPLE.read_text().replace("</devices>", ports + "</devices>"))
    p, names = _imported(["plan", str(warns)])
    assert p.returncode == 0 and "click" not in names, p.stderr
    [line] = [x for x in p.stderr.splitlines() if not x.startswith("import time:")]
    assert line.startswith("warning: ") and "bridges/ports need a 4 KiB IO window" in line
    broken = tmp_path / "broken.xml"
    broken.write_text(EXAMPLE.read_text().replace("</devices>", "<controller type='pci' index='0' "
                                                  "model='pci-bridge'/></devices>"))
    p, names = _imported(["plan", str(broken)])
    [line] = [x for x in p.stderr.splitlines() if not x.startswith("import time:")]
    assert p.returncode == 1 and "click" not in names, p.stderr
    assert line.startswith("error: ") and "pci-bridge" in line


def test_the_version_has_one_source_and_the_command_prints_it_without_package_metadata():
    """pyproject.toml takes the version from ``pciplan.__version__``; ``pciplan --version``
    prints that string (reading the installed metadata instead costs 35 ms)."""
    import importlib.metadata

    assert importlib.metadata.version("pciplan") == pciplan.__version__
    p, names = _imported(["--version"])
    assert p.returncode == 0 and p.stdout.endswith(f"pciplan, version {pciplan.__version__}\n"), p.stderr
    assert "importlib.metadata" not in names


@pytest.mark.parametrize("argv", [["plan", str(EXAMPLE)], ["tree", str(EXAMPLE)]])
def test_a_missing_dependency_is_one_line_that_says_so(tmp_path, argv):
    """A broken installation (here an lxml that cannot import what it needs) is named as
    such, in one line with status 2, on the fast path and through click alike."""
    (tmp_path / "lxml").mkdir()
    (tmp_path / "lxml" / "__init__.py").write_text("import _no_such_module_for_this_test\n")
    p = subprocess.run([sys.executable, "-m", "pciplan", *argv], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == ("error: a module pciplan needs is not installed: No module named "
                        "'_no_such_module_for_this_test' (reinstall pciplan with its dependencies)\n")


def test_a_missing_module_of_pciplan_itself_is_still_reported_as_a_bug(capsys):
    from pciplan.cli import INTERNAL_ERROR, exit_for

    with pytest.raises(SystemExit) as stop:
        exit_for(ModuleNotFoundError("No module named 'pciplan.nothing'", name="pciplan.nothing"))
    assert stop.value.code == INTERNAL_ERROR
    assert "internal error: ModuleNotFoundError" in capsys.readouterr().err
