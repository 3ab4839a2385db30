"""Properties of the options beyond libvirt: --hotplug-ports, --placement flat, --capacity max.

Over seeded random domains (support/randomdomain.py) of q35, pc, aarch64 virt
and pseries:

(a) stability: planning a planned document plus one new device moves no
    existing address, with and without the options;
(b) ``--hotplug-ports N`` leaves at least N empty hot-pluggable slots (counted
    here from the output XML, independently of hotplug.py) and moves no device
    compared with the plan without it;
(c) every plan made with the options is accepted by libvirt 9.0 unchanged
    (define, then the same PCI layout back; skipped without a daemon);
(d) flat: every endpoint pciplan places is on bus 0, or a CapacityError
    because the root bus is full;
(e) capacity max: a q35 with 240 virtio NICs and a pc with 950 e1000 NICs
    plan and libvirt accepts them unchanged; without it pciplan refuses
    exactly where libvirt does.

Environment: PCIPLAN_OPTIONS_N domains per family (default 40),
PCIPLAN_OPTIONS_SEED, PCIPLAN_OPTIONS_LIBVIRT_N domains per family and option
set defined in libvirt (default 12), PCIPLAN_DIFF_JOBS threads.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

import pciplan
from pciplan import hostcaps
from support import layout, libvirt_oracle, randomdomain

N = int(os.environ.get("PCIPLAN_OPTIONS_N", "40"))
SEED = os.environ.get("PCIPLAN_OPTIONS_SEED", "options-20261125")
LIBVIRT_N = int(os.environ.get("PCIPLAN_OPTIONS_LIBVIRT_N", "12"))
JOBS = int(os.environ.get("PCIPLAN_DIFF_JOBS", str(max(2, os.cpu_count() or 2))))
FAMILIES = ("q35", "pc", "aarch64-virt", "pseries")

OPTION_SETS = {
    "default": {},
    "hotplug-ports-3": {"hotplug_ports": 3},
    "hotplug-ports-8": {"hotplug_ports": 8},
    "flat": {"placement": "flat"},
    "flat+hotplug-ports-2": {"placement": "flat", "hotplug_ports": 2},
    "capacity-max+hotplug-ports-4": {"capacity": "max", "hotplug_ports": 4},
}

NEW_DEVICES = {
    "virtio-nic": "<interface type='user'><mac address='52:54:00:ff:ee:01'/><model type='virtio'/></interface>",
    "e1000-nic": "<interface type='user'><mac address='52:54:00:ff:ee:02'/><model type='e1000'/></interface>",
    "virtio-disk": "<disk type='file' device='disk'><source file='/x.img'/><target dev='vdzy' bus='virtio'/></disk>",
    "rng": "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>",
}


# ---- an independent reading of a planned document -------------------------------------------
#: bus models whose empty slots take a hot-plugged endpoint, and their slot ranges
#: (pcie-root, dmi-to-pci-bridge, switch upstream ports and pcie-expander-bus do not):
#: on a PCIe machine the PCIe ports (what a virtio or PCIe device needs), elsewhere
#: the conventional PCI buses
HOTPLUG_BUS_SLOTS_PCIE = {
    "pcie-root-port": range(0, 1),
    "pcie-switch-downstream-port": range(0, 1),
}
HOTPLUG_BUS_SLOTS_PCI = {
    "pci-root": range(1, 32),
    "pci-bridge": range(1, 32),
    "pcie-to-pci-bridge": range(1, 32),
    "pci-expander-bus": range(0, 32),
}


def _num(v: str | None) -> int:
    return int(v, 0) if v else 0


def used_slots(root: ET.Element) -> set[tuple[int, int]]:
    """(bus, slot) of every guest PCI address in the document (a host device's <source>
    address is the host's), plus the chipset's own slots."""
    used = set()
    for parent in root.iter():
        if parent.tag == "source":
            continue
        for a in parent.iterfind("address"):
            if a.get("type") == "pci" and _num(a.get("domain")) == 0:
                used.add((_num(a.get("bus")), _num(a.get("slot"))))
    if is_pc(root):
        used.add((0, 1))                      # PIIX3: ISA bridge, IDE, USB, ACPI
    return used


def is_pc(root: ET.Element) -> bool:
    machine = root.find("os/type").get("machine", "")
    return machine == "pc" or machine.startswith(("pc-i440fx", "pc-1", "pc-0"))


def empty_hotplug_slots(text: str) -> int:
    """Count empty slots a device could be hot-plugged into, from the XML alone."""
    root = ET.fromstring(text)
    used = used_slots(root)
    pcie = root.find("devices/controller[@type='pci'][@model='pcie-root']") is not None
    slots = HOTPLUG_BUS_SLOTS_PCIE if pcie else HOTPLUG_BUS_SLOTS_PCI
    n = 0
    for c in root.iter("controller"):
        if c.get("type") != "pci":
            continue
        model = c.get("model")
        t = c.find("target")
        if model not in slots or (t is not None and t.get("hotplug") == "off"):
            continue
        index = _num(c.get("index"))
        if index == 0 and is_pc(root) and root.find("features/acpi") is None:
            continue                          # QEMU hot-plugs into pc's pci.0 through ACPI only
        n += sum(1 for s in slots[model] if (index, s) not in used)
    return n


def where(entry) -> tuple | None:
    """domain:bus:slot.function (a new sibling may turn multifunction on)."""
    a = entry.address
    return None if a is None else (a.domain, a.bus, a.slot, a.function)


def moved(before_text: str, after_text: str) -> list[str]:
    before = layout.layout(ET.fromstring(before_text))
    after = layout.layout(ET.fromstring(after_text))
    out = []
    for key, e in before.items():
        a = after.get(key)
        if a is None:
            out.append(f"{e.label} disappeared")
        elif where(e) != where(a) or (e.pci_controller and (e.model, e.target) != (a.model, a.target)):
            out.append(f"{e.label}: {layout.format_address(e.address)} -> {layout.format_address(a.address)}")
    return out


def add_device(text: str, device: str) -> str:
    root = ET.fromstring(text)
    root.find("devices").append(ET.fromstring(device))
    return ET.tostring(root, encoding="unicode")


# ---- the domains -----------------------------------------------------------------------------
def _plan(xml: str, options: dict) -> pciplan.Result:
    # (host PCI devices planned as PCIe; the refusals of this machine's host, whose daemon
    # takes the plans, made)
    return pciplan.plan_text(xml, pciplan.Options(probe_host=False, host=hostcaps.this_host(), **options))


@pytest.fixture(scope="module")
def domains():
    """(family, index, input xml, default plan text) of domains libvirt would accept."""
    out = []
    for fam in FAMILIES:
        for i in range(N):
            g = randomdomain.generate(SEED, i, family=fam, kvm=False)
            try:
                out.append((fam, i, g.xml, _plan(g.xml, {}).text))
            except pciplan.PlanError:
                continue
    assert len(out) > len(FAMILIES) * N // 2, "the generator should mostly give plannable domains"
    return out


def _try(xml: str, options: dict):
    try:
        return _plan(xml, options)
    except pciplan.PlanError as err:
        return err


# ---- (a) stability ---------------------------------------------------------------------------
@pytest.mark.parametrize("opts", sorted(OPTION_SETS))
def test_adding_a_device_moves_nothing(domains, opts):
    options = OPTION_SETS[opts]
    checked = 0
    for fam, i, xml, _ in domains:
        first = _try(xml, options)
        if isinstance(first, pciplan.PlanError):
            continue
        for kind, dev in NEW_DEVICES.items():
            again = _try(add_device(first.text, dev), options)
            if isinstance(again, pciplan.PlanError):
                continue  # no room (or e.g. no e1000 on this machine): refusing is fine, moving is not
            bad = moved(first.text, again.text)
            assert not bad, f"{fam} #{i} {opts} + {kind}: {bad[:3]}"
            checked += 1
    assert checked > 0


# ---- (b) --hotplug-ports N -------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 8, 40])
def test_hotplug_ports_leaves_n_and_moves_nothing(domains, n):
    for fam, i, xml, default in domains:
        r = _plan(xml, {"hotplug_ports": n})
        have = empty_hotplug_slots(r.text)
        short = [w for w in r.plan.warnings if "--hotplug-ports" in w]
        if not ET.fromstring(r.text).findall("devices/controller[@type='pci']"):
            # (a board without PCI, ARM's and RISC-V's default machines: said so, nothing added)
            assert short and "has no PCI bus" in short[0], f"{fam} #{i}: {short}"
            assert not moved(default, r.text)
            continue
        assert have >= n or short, f"{fam} #{i}: --hotplug-ports {n} left {have} empty hot-pluggable slots"
        if n <= 8:
            assert not short, f"{fam} #{i}: {short}"
        bad = moved(default, r.text)
        assert not bad, f"{fam} #{i} --hotplug-ports {n} moved {bad[:3]}"


def test_hotplug_ports_count_matches_on_a_known_guest():
    """The independent count on a guest whose answer is known by hand."""
    xml = ("<domain type='qemu'><name>k</name><memory>131072</memory>"
           "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
           "<interface type='user'><model type='virtio'/></interface></devices></domain>")
    # libvirt: ports for the NIC, the USB controller, the balloon, and one spare
    assert empty_hotplug_slots(pciplan.plan(xml)) == 1
    assert empty_hotplug_slots(pciplan.plan(xml, pciplan.Options(hotplug_ports=5))) == 5


def test_hotplug_ports_on_q35_are_pcie_ports_even_with_a_legacy_bridge():
    """Free pcie-to-pci-bridge slots take no virtio/PCIe device: they do not count."""
    xml = ("<domain type='qemu'><name>k</name><memory>131072</memory>"
           "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
           "<interface type='user'><model type='e1000'/></interface>"
           "<interface type='user'><model type='virtio'/></interface></devices></domain>")
    text = pciplan.plan(xml, pciplan.Options(hotplug_ports=4))
    root = ET.fromstring(text)
    used = used_slots(root)
    ports = [c for c in root.iter("controller") if c.get("model") == "pcie-root-port"
             and (_num(c.get("index")), 0) not in used]
    assert len(ports) >= 4


# ---- (d) flat ----------------------------------------------------------------------------------
def _endpoints_placed(xml_in: str, text_out: str) -> list[tuple[str, tuple | None]]:
    """Devices (not PCI controllers) whose PCI address pciplan chose."""
    before = layout.layout(ET.fromstring(xml_in))
    after = layout.layout(ET.fromstring(text_out))
    out = []
    for key, a in after.items():
        if a.pci_controller or a.address is None:
            continue
        b = before.get(key)
        if b is not None and b.address is not None and not (b.address.bus == 0 and b.address.slot == 0
                                                             and b.address.domain == 0):
            continue  # the user's address
        out.append((a.label, where(a)))
    return out


@pytest.mark.parametrize("opts", ["flat", "flat+hotplug-ports-2"])
def test_flat_puts_every_endpoint_on_bus_0(domains, opts):
    placed = refused = 0
    for fam, i, xml, _ in domains:
        r = _try(xml, OPTION_SETS[opts])
        if isinstance(r, pciplan.PlanError):
            assert isinstance(r, pciplan.CapacityError), f"{fam} #{i}: {r}"
            assert "root bus" in str(r), f"{fam} #{i}: {r}"
            refused += 1
            continue
        off = [(label, a) for label, a in _endpoints_placed(xml, r.text) if a[1] != 0]
        assert not off, f"{fam} #{i}: {off[:3]}"
        placed += 1
    assert placed > refused


def _flat_root_full(n_nics: int, model: str, machine: str = "q35", arch: str = "x86_64"):
    nics = "".join(f"<interface type='user'><model type='{model}'/></interface>" for _ in range(n_nics))
    xml = (f"<domain type='qemu'><name>f</name><memory>131072</memory>"
           f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os><devices>{nics}</devices></domain>")
    return _try(xml, {"placement": "flat"})


def test_flat_root_bus_full_is_a_capacity_error():
    assert not isinstance(_flat_root_full(20, "virtio"), pciplan.PlanError)
    err = _flat_root_full(40, "virtio")
    assert isinstance(err, pciplan.CapacityError) and "root bus" in str(err)


def test_flat_keeps_user_addresses_off_bus_0():
    xml = ("<domain type='qemu'><name>u</name><memory>131072</memory>"
           "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
           "<controller type='usb' index='0' model='qemu-xhci'>"
           "<address type='pci' domain='0' bus='1' slot='0' function='0'/></controller>"
           "<controller type='pci' index='1' model='pcie-root-port'/>"
           "<interface type='user'><model type='virtio'/></interface></devices></domain>")
    r = _try(xml, {"placement": "flat"})
    assert not isinstance(r, pciplan.PlanError), r
    usb = ET.fromstring(r.text).find("devices/controller[@type='usb']/address")
    assert _num(usb.get("bus")) == 1
    nic = ET.fromstring(r.text).find("devices/interface/address")
    assert _num(nic.get("bus")) == 0


def test_flat_conventional_pci_on_q35():
    r = _flat_root_full(2, "e1000")
    assert not isinstance(r, pciplan.PlanError), r
    assert all(a[1] == 0 for _, a in _endpoints_placed("<domain><devices/></domain>", r.text))


# ---- (c) libvirt accepts the plans unchanged ----------------------------------------------------
needs_daemon = pytest.mark.skipif(not libvirt_oracle.available(),
                                  reason=libvirt_oracle.unavailable_reason() or "no libvirt daemon")


@needs_daemon
@pytest.mark.parametrize("opts", sorted(o for o in OPTION_SETS if o != "default"))
def test_libvirt_accepts_option_plans_unchanged(domains, opts):
    per_family: dict[str, int] = {}
    texts = []
    for fam, i, xml, _ in domains:
        if per_family.get(fam, 0) >= LIBVIRT_N:
            continue
        r = _try(xml, OPTION_SETS[opts])
        if isinstance(r, pciplan.PlanError):
            continue
        per_family[fam] = per_family.get(fam, 0) + 1
        texts.append((fam, i, r.text))
    oracle = libvirt_oracle.Oracle()
    with ThreadPoolExecutor(JOBS) as pool:
        answers = list(pool.map(lambda t: oracle.run(t[2]), texts))
    for (fam, i, text), (accepted, out) in zip(texts, answers):
        assert accepted, f"{fam} #{i} {opts}: libvirt refused pciplan's plan: {out}"
        diffs = layout.compare_xml(text, out)
        assert not diffs, f"{fam} #{i} {opts}: libvirt changed the layout: {[str(d) for d in diffs[:3]]}"


# ---- (e) capacity ------------------------------------------------------------------------------------
def nics_domain(machine: str, arch: str, model: str, n: int) -> str:
    nics = "".join(f"<interface type='user'><mac address='52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
                   f"{i & 255:02x}'/><model type='{model}'/></interface>" for i in range(n))
    return (f"<domain type='qemu'><name>cap-{machine}-{model}-{n}</name><memory>131072</memory>"
            f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os><devices>{nics}</devices></domain>")


BIG = [("q35", "x86_64", "virtio", 240), ("pc", "x86_64", "e1000", 950)]


@pytest.mark.parametrize("machine,arch,model,n", BIG, ids=[f"{m}-{n}-{mo}" for m, _, mo, n in BIG])
def test_capacity_max_plans_big_guests(machine, arch, model, n):
    xml = nics_domain(machine, arch, model, n)
    with pytest.raises(pciplan.CapacityError):
        _plan(xml, {})
    r = _plan(xml, {"capacity": "max"})
    root = ET.fromstring(r.text)
    nics = [i for i in root.iter("interface") if i.find("address") is not None]
    assert len(nics) == n
    assert len({(a.get("bus"), a.get("slot"), a.get("function")) for a in root.iter("address")
                if a.get("type") == "pci"}) == len(root.findall(".//address[@type='pci']"))


@needs_daemon
@pytest.mark.parametrize("machine,arch,model,n", BIG, ids=[f"{m}-{n}-{mo}" for m, _, mo, n in BIG])
def test_libvirt_accepts_capacity_max_plans_unchanged(machine, arch, model, n):
    text = _plan(nics_domain(machine, arch, model, n), {"capacity": "max"}).text
    accepted, out = libvirt_oracle.Oracle().run(text)
    assert accepted, out
    diffs = layout.compare_xml(text, out)
    assert not diffs, [str(d) for d in diffs[:3]]


#: where libvirt 9.0 starts and stops refusing N NICs of one model (docs/capacity.md):
#: conventional PCI devices are refused in windows that widen (58 e1000s fit a pc,
#: 59 do not, 60 do again...) up to the last accepted count (928 on pc, 931 on q35)
REFUSALS = {
    ("pc", "x86_64", "e1000"): [59, 89, 90, 119, 121, 659, 679, 929],
    ("q35", "x86_64", "e1000"): [62, 92, 93, 122, 124, 900, 901, 931, 932],
    ("q35", "x86_64", "virtio"): [238],
    ("virt", "aarch64", "virtio"): [248],
    ("pseries", "ppc64", "virtio"): [959],
}
AROUND = [(m, a, mo, n + d) for (m, a, mo), ns in REFUSALS.items() for n in ns for d in (-1, 0)]


@needs_daemon
@pytest.mark.parametrize("machine,arch,model,n", AROUND, ids=[f"{m}-{mo}-{n}" for m, _, mo, n in AROUND])
def test_without_capacity_max_pciplan_refuses_where_libvirt_does(machine, arch, model, n):
    xml = nics_domain(machine, arch, model, n)
    accepted, out = libvirt_oracle.Oracle().run(xml)
    mine = _try(xml, {})
    if accepted:
        assert not isinstance(mine, pciplan.PlanError), f"libvirt accepts {n}, pciplan: {mine}"
        assert not layout.compare_xml(mine.text, out)
    else:
        # (pSeries runs out of PHB target indexes: libvirt's "unsupported" error, a PlanError)
        assert isinstance(mine, pciplan.PlanError), f"libvirt refuses {n} ({out}), pciplan plans it"
        assert mine.reason in out, (mine.reason, out)


MAX_IN_WINDOWS = [("pc", "x86_64", "e1000", 59), ("pc", "x86_64", "e1000", 690),
                  ("q35", "x86_64", "e1000", 93), ("q35", "x86_64", "virtio", 249)]


@needs_daemon
@pytest.mark.parametrize("machine,arch,model,n", MAX_IN_WINDOWS,
                         ids=[f"{m}-{mo}-{n}" for m, _, mo, n in MAX_IN_WINDOWS])
def test_capacity_max_fills_libvirts_refusal_windows(machine, arch, model, n):
    xml = nics_domain(machine, arch, model, n)
    assert isinstance(_try(xml, {}), pciplan.CapacityError)
    text = _plan(xml, {"capacity": "max"}).text
    accepted, out = libvirt_oracle.Oracle().run(text)
    assert accepted, out
    assert not layout.compare_xml(text, out)


# ---- a machine name the emulator lacks -------------------------------------------------------
GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "golden")


def _machine_name_refusals() -> list[str]:
    """The golden inputs libvirt 9.0 refuses for their machine name (its answer, not ours)."""
    names = []
    for f in sorted(os.listdir(GOLDEN_DIR)):
        if f.endswith(".libvirt-error.txt"):
            with open(os.path.join(GOLDEN_DIR, f)) as fh:
                if "does not support machine type" in fh.read():
                    names.append(f[: -len(".libvirt-error.txt")])
    return names


@pytest.mark.parametrize("opts", [k for k in OPTION_SETS if k != "default"])
def test_a_refused_machine_name_stays_libvirts_refusal_under_every_option(opts):
    """libvirt lays out a guest whose machine name its emulator lacks before it refuses the
    name; pciplan's own policies must add nothing to that layout, nor a refusal of their own
    (a hot-plug pci-bridge on an x86 name without PCI was 'index must be larger than bus')."""
    names = _machine_name_refusals()
    assert len(names) >= 10, "the golden machine-name refusals are missing"
    for name in names:
        with open(os.path.join(GOLDEN_DIR, name + ".in.xml")) as fh:
            xml = fh.read()
        with open(os.path.join(GOLDEN_DIR, name + ".libvirt-error.txt")) as fh:
            expected = fh.read().strip().split(": ", 2)[-1]
        err = _try(xml, OPTION_SETS[opts])
        assert isinstance(err, pciplan.PlanError), f"{name}: planned with {opts}"
        assert err.reason == expected, f"{name} with {opts}: {err.reason!r}, libvirt: {expected!r}"
