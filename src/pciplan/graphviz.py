"""Run Graphviz's ``dot`` binary (Debian package ``graphviz``) to turn DOT source into SVG."""

from __future__ import annotations

import os
import shutil
import subprocess


class GraphvizMissing(RuntimeError):
    """The ``dot`` binary cannot be found or run."""


class GraphvizFailed(RuntimeError):
    """``dot`` ran but refused the input."""


def dot_binary() -> str | None:
    """Path of ``dot`` ($PCIPLAN_DOT overrides the search in PATH)."""
    override = os.environ.get("PCIPLAN_DOT")
    if override:
        return override if os.path.isfile(override) and os.access(override, os.X_OK) else None
    return shutil.which("dot")


def render_svg(source: str, timeout: float = 60.0) -> bytes:
    """SVG bytes of a DOT graph.  Raises ``GraphvizMissing`` when ``dot`` is not installed."""
    binary = dot_binary()
    if binary is None:
        raise GraphvizMissing("Graphviz's `dot` program was not found: install it "
                              "(Debian/Ubuntu: apt-get install graphviz) or use --format dot")
    try:
        proc = subprocess.run([binary, "-Tsvg"], input=source.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except OSError as err:
        raise GraphvizMissing(f"cannot run {binary}: {err.strerror or err}") from None
    except subprocess.TimeoutExpired:
        raise GraphvizFailed(f"{binary} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GraphvizFailed(f"{binary} failed: {msg[-1] if msg else 'exit status ' + str(proc.returncode)}")
    return proc.stdout
