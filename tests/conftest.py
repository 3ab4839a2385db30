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

if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None and "PYTHONPYCACHEPREFIX" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="pciplan-test-pycache-")
    os.environ["PYTHONPYCACHEPREFIX"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
