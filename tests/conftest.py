"""Set-up shared by every test module.

Many tests run the ``pciplan`` command as a child process, as users run it.  An
installed pciplan has its bytecode cached; a sandbox that sets
``PYTHONDONTWRITEBYTECODE`` (this one does) would make every such child compile
all of pciplan again, about five times the run of a cached start.  The children
get a bytecode cache of their own for the session instead; this process, which
read its settings at start, is not affected.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None and "PYTHONPYCACHEPREFIX" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="pciplan-test-pycache-")
    os.environ["PYTHONPYCACHEPREFIX"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)


# --------------------------------------------------------------------------- guests in the background
# Tests marked ``guest_boot`` boot Linux under QEMU (tests/test_guest_verify.py): about a third of
# the suite's time, on one core.  They run last, and their guests start booting as soon as the run's
# tests are known, on the core the rest of the suite leaves free; by the time the booting tests are
# reached most of their guests have reported.
_booting_modules: list = []


def _booting(items):
    return [item for item in items if item.get_closest_marker("guest_boot")]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    late = _booting(items)
    if late:
        ids = {id(item) for item in late}
        items[:] = [item for item in items if id(item) not in ids] + late


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    late = _booting(session.items)
    alone = len(late) == len(session.items)
    for module in dict.fromkeys(item.module for item in late):
        start = getattr(module, "start_boots", None)
        if start is not None:
            _booting_modules.append(module)
            start([item for item in late if item.module is module], alone)


def pytest_sessionfinish(session):
    for module in _booting_modules:
        module.stop_boots()


def pytest_terminal_summary(terminalreporter):
    for module in _booting_modules:
        line = module.boot_summary()
        if line:
            terminalreporter.write_line(line)
