"""Where the tests find things that live outside the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "conformance" / "libvirt-9.0"


def corpus_dir() -> Path | None:
    """The libvirt 9.0 conformance corpus: $PCIPLAN_CORPUS or ../shared/conformance/libvirt-9.0."""
    env = os.environ.get("PCIPLAN_CORPUS")
    path = Path(env) if env else DEFAULT_CORPUS
    return path if (path / "accept").is_dir() else None


CORPUS_ABSENT = ("conformance corpus not found (set PCIPLAN_CORPUS or put it at "
                 f"{DEFAULT_CORPUS})")
