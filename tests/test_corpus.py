"""The libvirt 9.0 conformance corpus through the `pciplan plan` CLI.

The corpus lives outside the repository: $PCIPLAN_CORPUS, or
../shared/conformance/libvirt-9.0 next to the repository.  Each
accept/<case>.in.xml must give the PCI layout of accept/<case>.out.xml; each
reject/<case>.in.xml must exit 1 with a single stderr line starting "error: "
and no XML on stdout.  When the corpus is absent the tests are skipped.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import layout
from support.paths import CORPUS_ABSENT, corpus_dir

CORPUS = corpus_dir()
ABSENT = CORPUS_ABSENT


def _cases(kind: str):
    if CORPUS is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=ABSENT), id=f"{kind}-corpus-absent")]
    files = sorted((CORPUS / kind).glob("*.in.xml"))
    return [pytest.param(f, id=f.name[: -len(".in.xml")]) for f in files]


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "pciplan"
    if script.exists():
        return [str(script), "plan"]
    return [sys.executable, "-m", "pciplan", "plan"]


def run_cli(path: Path):
    p = subprocess.run(cli_command() + [str(path)], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


_results: dict[Path, tuple] = {}


@pytest.fixture(scope="module")
def cli_results(request):
    """Run the CLI on every selected case up front, in parallel (2+ CPUs)."""
    wanted = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is request.module and callspec and callspec.params.get("case"):
            wanted.append(callspec.params["case"])
    todo = [p for p in wanted if p not in _results]
    with cf.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
        for path, res in zip(todo, ex.map(run_cli, todo)):
            _results[path] = res
    return _results


@pytest.mark.parametrize("case", _cases("accept"))
def test_accept_case(case, cli_results):
    rc, out, err = cli_results.get(case) or run_cli(case)
    assert rc == 0, f"pciplan plan exited {rc}: {err.strip()[-500:]}"
    expected = case.with_name(case.name.replace(".in.xml", ".out.xml"))
    try:
        diffs = layout.compare_xml(expected.read_text(), out)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"output is not a comparable domain XML: {e}\n{out[:500]}")
    assert not diffs, "PCI layout differs from libvirt's:\n" + "\n".join(str(d) for d in diffs)


@pytest.mark.parametrize("case", _cases("reject"))
def test_reject_case(case, cli_results):
    rc, out, err = cli_results.get(case) or run_cli(case)
    libvirt_err = case.with_name(case.name.replace(".in.xml", ".err.txt"))
    why = libvirt_err.read_text().strip() if libvirt_err.exists() else "?"
    assert rc == 1, f"expected exit 1 (libvirt: {why}), got {rc}; stderr: {err.strip()[-300:]}"
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), \
        f"stderr must be one line starting 'error: ', got: {err!r}"
    assert "<domain" not in out, "a rejected domain must not print XML"
