"""pciplan: plan the PCI/PCIe topology of QEMU/KVM guests exactly as libvirt 9.0 does.

>>> import pciplan
>>> planned_xml = pciplan.plan(open("guest.xml").read())

``plan_text`` returns the planned text together with the ``Plan``: which
controllers were added (``plan.added``), which addresses were chosen
(``plan.assigned``) and the final bus layout (``plan.addresses``).

The names below are loaded on first use (PEP 562), so that the ``pciplan``
command can set its process up before the planner and lxml are imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "plan": "api", "plan_text": "api", "plan_document": "api", "Result": "api",
    "PciplanError": "errors", "InputError": "errors", "PlanError": "errors", "CapacityError": "errors",
    "HostError": "errors",
    "Options": "planner", "Plan": "planner",
    "Document": "xmlio", "load": "xmlio",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .api import Result, plan, plan_document, plan_text
    from .errors import CapacityError, HostError, InputError, PciplanError, PlanError
    from .planner import Options, Plan
    from .xmlio import Document, load


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
