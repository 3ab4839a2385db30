"""Import ``lxml.etree`` for a short-lived ``pciplan plan`` process, without the standard
modules it loads only for features that process never uses.

When lxml's C module initialises, it takes ``getfullargspec`` from ``inspect`` (for
XPath/XSLT extension functions) and ``GzipFile`` from ``gzip`` (for compressed output).
``inspect`` drags in ``ast``, ``dis``, ``tokenize`` and ``linecache``: together a
quarter to a third of a cold ``import lxml.etree`` (10-17 ms of a 45-55 ms
``pciplan plan`` on the 2-CPU machines of BENCHMARKS.md), for a document that is
parsed, planned and written without either.

``import_etree`` puts a stand-in for each module that is not loaded yet into
``sys.modules`` while lxml initialises, and takes them out again straight after.  A
stand-in hands lxml a forwarder for the names above, which imports the real module the
first time it is called, so every lxml feature works as before; any other name (a later
lxml taking more) loads the real module at once and costs only the time saved.  Nothing
else sees a stand-in: after ``import_etree`` returns, ``import inspect`` or ``import
gzip`` loads the real module as usual.  The fast path of ``pciplan plan`` (``fastplan``)
calls it only in a process that is the ``pciplan`` command itself; the library never
touches its caller's ``sys.modules``.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Callable

#: module -> the names lxml.etree takes from it when it initialises (lxml 5 and 6)
DEFERRED: dict[str, frozenset[str]] = {
    "inspect": frozenset({"getfullargspec"}),
    "gzip": frozenset({"GzipFile"}),
}


class _StandIn(types.ModuleType):
    """What ``sys.modules[name]`` holds while lxml.etree initialises."""

    def __init__(self, name: str, deferred: frozenset[str]):
        super().__init__(name)
        self._deferred = deferred

    def __getattr__(self, attr: str) -> Any:
        if attr in self._deferred:
            return _forwarder(self.__name__, attr)
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(_real(self.__name__), attr)


def _real(name: str) -> types.ModuleType:
    """The real module ``name`` (imported now if need be)."""
    if isinstance(sys.modules.get(name), _StandIn):
        del sys.modules[name]
    __import__(name)
    return sys.modules[name]


def _forwarder(module: str, attr: str) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return getattr(_real(module), attr)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = attr
    forward.__doc__ = f"{module}.{attr}, imported on first call."
    return forward


def import_etree() -> types.ModuleType:
    """``lxml.etree``, imported (if it is not yet) without loading ``DEFERRED``'s modules."""
    placed = [name for name in DEFERRED if name not in sys.modules]
    for name in placed:
        sys.modules[name] = _StandIn(name, DEFERRED[name])
    try:
        from lxml import etree
    finally:
        for name in placed:
            if isinstance(sys.modules.get(name), _StandIn):
                del sys.modules[name]
    return etree
