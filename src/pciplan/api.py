"""The library entry points: plan a document, from text to text or to a ``Plan``."""

from __future__ import annotations

from . import defaults, guestconf, hostcaps, hostpci, machines, transports, validate, xmlio
from . import chardevs  # (after defaults)
from .errors import UNKNOWN_CAUSE, CapacityError, HostError, PlanError
from .planner import Options, Plan, assign
from .records import Value


class Result(Value):
    """A planned document: the text to write and the plan that made it."""

    text: str
    plan: Plan
    document: xmlio.Document

    def __init__(self, text, plan, document) -> None:
        self.text = text
        self.plan = plan
        self.document = document


def _with_host(options: Options | None) -> Options:
    options = options if options is not None else Options()
    if options.host_probe is None and options.probe_host:
        options = options.replace(host_probe=hostpci.is_conventional)
    if options.host is None:
        options = options.replace(host=hostcaps.this_host() if options.probe_host else hostcaps.ANY_HOST)
    return options


def _emulator(doc: xmlio.Document) -> str | None:
    """The path of the first ``<emulator>`` (libvirt's ``string(./devices/emulator[1])``),
    None when there is none or it is empty (libvirt then takes the arch's default)."""
    el = doc.tree.getroot().find("devices/emulator")
    if el is None:
        return None
    return (el.text if len(el) == 0 else str(el.xpath("string()"))) or None


def plan_document(doc: xmlio.Document, options: Options | None = None) -> Plan:
    """Plan a parsed document in place (its tree is updated)."""
    dom = doc.domain
    options = _with_host(options)
    emulator = machines.emulator_path(dom.arch, _emulator(doc))
    if emulator is None:
        raise PlanError(f"No emulator found for arch '{dom.arch}'", "os/type", kind="unsupported")
    # (libvirt looks the emulator's capabilities up right after the parse)
    if not options.host.has_emulator(emulator, machines.DEFAULT_EMULATORS.get(dom.arch)):
        raise HostError(f"Cannot check QEMU binary {emulator}: No such file or directory", "devices/emulator")
    if emulator in machines.UNPROBED_EMULATORS:
        raise PlanError(UNKNOWN_CAUSE, "devices/emulator", kind="internal")
    dom.emulator = emulator
    refusal = machines.unsupported(dom.arch, dom.machine, emulator)
    machine = machines.find(dom.arch, dom.machine)
    if machine is None:
        raise PlanError(refusal or f"Emulator for arch '{dom.arch}' does not support machine type "
                        f"'{dom.machine}'", "os/type", kind="unsupported")
    if refusal is not None:
        emu = machines.EMULATOR_MACHINES.get(emulator)
        if machine.zpci and emu is not None and not emu.zpci:
            # (libvirt's post-parse asks the emulator it has: without zPCI, no PCI root is
            # added or checked)
            machine = machine._replace(root=None, zpci=False)
        _refuse(dom, machine, options, refusal)
    try:
        result = _assign(dom, machine, options)
    except CapacityError:
        if options.capacity != "max":
            raise
        result = _assign_max(doc, machine, options)
    xmlio.apply(doc)
    result.warnings.extend(f"{tag} left out: its namespace prefix is not declared (xmlns:...), "
                           "and libvirt drops it too" for tag in doc.dropped)
    return result


def _refuse(dom, machine, options: Options, refusal: str) -> None:
    """Raise libvirt's refusal of a machine name the emulator lacks (``pc-1.0``, ``virt-2.5``).
    libvirt still takes the name for its family's (``machines.find``) and assigns addresses
    before it checks the name, so any error of its post-parse (``defaults.prepare``) or of its
    address passes (PCI, USB, memory slots: ``_assign`` without validation) wins, of whatever
    kind; its validation, which starts with the name's check, is not made."""
    guest = defaults.prepare(dom, machine, options.host)  # (post-parse: its refusals all come first)
    # libvirt's own plan: pciplan's policies (hot-plug ports, capacity, placement) add
    # nothing to a guest that is refused, nor any refusal of their own
    libvirt_only = options.replace(hotplug_ports=None, placement="libvirt", capacity="libvirt")
    _assign(dom, machine, libvirt_only, validation=False, guest=guest)
    # validation checks the os type first, then the emulator's arch, the domain type, the name
    facts = dom.conf or guestconf.GuestFacts()
    guestconf.validate_os_type(dom, facts)
    if not refusal.endswith(f"does not support arch '{dom.arch}'"):
        guestconf.validate_virt_type(dom, options.host)
    raise PlanError(refusal, "os/type", kind="unsupported")


def _assign(dom, machine, options: Options, margin: int | None = None,
            validation: bool = True, guest=None) -> Plan:
    if guest is None:
        guest = defaults.prepare(dom, machine, options.host)
    transports.mark_non_pci_transports(guest)
    transports.check_user_transport_addresses(guest)
    if margin is not None:
        from . import capacity  # only for --capacity max

        capacity.expand(guest, options, margin)
    plan = assign(guest, options)
    transports.retarget_after_pci(guest)
    transports.check_usb_addresses(guest)
    transports.check_memory_slots(guest)
    if validation:
        validate.validate_late(guest, options.host)
    chardevs.write_serial_into_console(guest)
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
