"""The JSON Schemas of pciplan's JSON outputs (see docs/json.md).

>>> from pciplan import schemas
>>> schemas.load("tree-v1")["title"]
'pciplan tree, version 1'
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

NAMES = ("tree-v1", "diff-v1", "check-v1")


def load(name: str) -> dict[str, Any]:
    """The schema ``name`` (``tree-v1``, ``diff-v1`` or ``check-v1``) as a dict."""
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(NAMES)}")
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text("utf-8"))
