"""pciplan: plan the PCI/PCIe topology of QEMU/KVM guests exactly as libvirt 9.0 does.

>>> import pciplan
>>> planned_xml = pciplan.plan(open("guest.xml").read())

``plan_text`` returns the planned text together with the ``Plan``: which
controllers were added (``plan.added``), which addresses were chosen
(``plan.assigned``) and the final bus layout (``plan.addresses``).
"""

from .api import Result, plan, plan_document, plan_text
from .errors import CapacityError, InputError, PciplanError, PlanError
from .planner import Options, Plan
from .xmlio import Document, load

__version__ = "0.1.0"

__all__ = ["plan", "plan_text", "plan_document", "load", "Options", "Plan", "Result",
           "Document", "PciplanError", "InputError", "PlanError", "CapacityError", "__version__"]
