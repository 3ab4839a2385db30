"""The library entry points: plan a document, from text to text or to a ``Plan``."""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import defaults, hostpci, machines, xmlio
from .errors import CapacityError, PlanError
from .planner import Options, Plan, assign


@dataclass
class Result:
    """A planned document: the text to write and the plan that made it."""

    text: str
    plan: Plan
    document: xmlio.Document


def _with_host(options: Options | None) -> Options:
    options = options if options is not None else Options()
    if options.host_probe is None and options.probe_host:
        options = replace(options, host_probe=hostpci.is_conventional)
    return options


def plan_document(doc: xmlio.Document, options: Options | None = None) -> Plan:
    """Plan a parsed document in place (its tree is updated)."""
    dom = doc.domain
    machine = machines.find(dom.arch, dom.machine)
    if machine is None:
        raise PlanError(f"Emulator for arch '{dom.arch}' does not support machine type '{dom.machine}'",
                        "os/type", kind="unsupported")
    if not machine.zpci:
        for d in dom.devices:
            if d.address is not None and d.address.zpci is not None:
                raise PlanError("This QEMU binary doesn't support zPCI", d.describe(), d.line,
                                kind="unsupported")
    options = _with_host(options)
    try:
        result = _assign(dom, machine, options)
    except CapacityError:
        if options.capacity != "max":
            raise
        result = _assign_max(doc, machine, options)
    xmlio.apply(doc)
    return result


def _assign(dom, machine, options: Options, margin: int | None = None) -> Plan:
    guest = defaults.prepare(dom, machine)
    defaults.mark_non_pci_transports(guest)
    if margin is not None:
        from . import capacity  # only for --capacity max

        capacity.expand(guest, options, margin)
    plan = assign(guest, options)
    defaults.validate_late(guest)
    return plan


def _assign_max(doc: xmlio.Document, machine, options: Options) -> Plan:
    """Plan again from the untouched document, with the controllers a big guest needs."""
    last: CapacityError | None = None
    for margin in (0, 8, 24, 64):  # spare ports, in case the free root slots were overestimated
        doc.domain = xmlio.read_domain(doc.tree.getroot())
        try:
            return _assign(doc.domain, machine, options, margin)
        except CapacityError as err:
            last = err
    assert last is not None
    raise last


def plan_text(xml: str | bytes, options: Options | None = None) -> Result:
    doc = xmlio.load(xml)
    p = plan_document(doc, options)
    return Result(xmlio.tostring(doc), p, doc)


def plan(xml: str | bytes, options: Options | None = None) -> str:
    """Plan a libvirt domain XML document and return it with every PCI address filled in.

    Raises ``InputError`` when the text is not a domain document and
    ``PlanError`` when libvirt 9.0 would refuse the configuration.
    """
    return plan_text(xml, options).text
