"""``attach.place`` and ``pciplan hotplug`` on documents (no daemon needed).

The live check against libvirt is tests/test_hotplug_attach.py; these pin the
rule itself: only existing empty hot-pluggable slots, function 0, libvirt's
refusals, and which transports are not PCI at all.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import pciplan
from pciplan import attach, xmlio
from pciplan.address import PciAddress
from pciplan.connect import Connect
from pciplan.errors import CapacityError, PlanError


def domain(machine: str, devices: str = "", arch: str = "x86_64", features: str = "") -> str:
    return (f"<domain type='qemu'><name>t</name><memory>131072</memory>"
            f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os>{features}"
            f"<devices>{devices}</devices></domain>")


VIRTIO_NIC = "<interface type='user'><model type='virtio'/></interface>"
E1000 = "<interface type='user'><model type='e1000'/></interface>"


def planned(xml: str, **options) -> pciplan.Plan:
    return pciplan.plan_text(xml, pciplan.Options(**options)).plan


def place(plan: pciplan.Plan, device: str) -> attach.Placement:
    return attach.place(plan, xmlio.load_device(device).device)


def test_q35_takes_the_empty_root_ports_in_order_then_no_room():
    xml = domain("q35", VIRTIO_NIC)
    text = pciplan.plan(xml, pciplan.Options(hotplug_ports=2))
    plan = planned(text)
    first = place(plan, VIRTIO_NIC)
    assert first.address is not None and first.room == 2
    bus = plan.guest.find_controller("pci", first.address.bus)
    assert bus is not None and bus.model == "pcie-root-port"
    assert first.address == PciAddress(0, first.address.bus, 0, 0)
    # the same guest with that NIC attached: the next port, then nothing
    nic = f"<interface type='user'><model type='virtio'/><address type='pci' bus='{first.address.bus}' slot='0'/></interface>"
    plan2 = planned(text.replace("</devices>", nic + "</devices>"))
    second = place(plan2, VIRTIO_NIC)
    assert second.address is not None and second.address.bus > first.address.bus and second.room == 1
    nic2 = nic.replace(f"bus='{first.address.bus}'", f"bus='{second.address.bus}'")
    plan3 = planned(text.replace("</devices>", nic + nic2 + "</devices>"))
    with pytest.raises(CapacityError, match="No more available PCI slots.*pcie-root-port"):
        place(plan3, VIRTIO_NIC)


def test_q35_conventional_pci_needs_a_bridge_slot():
    plan = planned(domain("q35", VIRTIO_NIC), hotplug_ports=4)
    with pytest.raises(CapacityError, match="standard PCI device.*pcie-to-pci-bridge"):
        place(plan, E1000)
    assert "pcie-to-pci-bridge" in attach.remedy(plan, Connect.PCI_DEVICE)
    assert "--hotplug-ports N" in attach.remedy(plan, Connect.PCIE_DEVICE)
    with_bridge = planned(domain("q35", VIRTIO_NIC + "<controller type='pci' index='9' model='pcie-to-pci-bridge'/>"))
    p = place(with_bridge, E1000)
    assert p.address is not None and p.address.bus == 9 and p.address.slot == 1


def test_port_with_hotplug_off_is_not_used():
    xml = domain("q35", "<controller type='usb' model='none'/><memballoon model='none'/>"
                        "<controller type='pci' index='1' model='pcie-root-port'><target hotplug='off'/></controller>"
                        "<controller type='pci' index='2' model='pcie-root-port'/>")
    plan = planned(xml)
    assert place(plan, VIRTIO_NIC).address == PciAddress(0, 2, 0, 0)


def test_pcie_root_is_never_hotpluggable():
    plan = planned(domain("q35"))
    with pytest.raises(PlanError, match="requires hotplug capability"):
        place(plan, "<interface type='user'><model type='virtio'/><address type='pci' bus='0' slot='9'/></interface>")


def test_user_address_rules():
    plan = planned(domain("pc", features="<features><acpi/></features>"))
    p = place(plan, "<interface type='user'><model type='e1000'/><address type='pci' bus='0' slot='0x10'/></interface>")
    assert p.address == PciAddress(0, 0, 0x10, 0) and not p.warnings
    with pytest.raises(PlanError, match="function=0"):
        place(plan, "<interface type='user'><model type='e1000'/><address type='pci' bus='0' slot='0x10' function='1'/></interface>")
    with pytest.raises(PlanError, match="Attempted double use of PCI Address 0000:00:01.0"):
        place(plan, "<interface type='user'><model type='e1000'/><address type='pci' bus='0' slot='1'/></interface>")


def test_pc_root_bus_needs_acpi():
    # libvirt picks a root-bus slot, and QEMU refuses it without ACPI ("Bus 'pci.0' does
    # not support hotplugging"): pciplan takes a pci-bridge slot, or says what to do
    with pytest.raises(CapacityError, match="through ACPI only.*<features><acpi/>"):
        place(planned(domain("pc")), E1000)
    assert "<features><acpi/>" in attach.remedy(planned(domain("pc")), Connect.PCI_DEVICE)
    bridge = planned(domain("pc", "<controller type='pci' index='1' model='pci-bridge'/>"))
    bridge_slot = place(bridge, E1000).address
    assert bridge_slot is not None and bridge_slot.bus == 1
    p = place(planned(domain("pc", "<controller type='pci' index='1' model='pci-bridge'/>",
                             features="<features><acpi/></features>")), E1000)
    assert p.address is not None and p.address.bus == 0 and not p.warnings


def test_pseries_spapr_vio_devices_are_refused():
    # libvirt 9.0 puts them on PCI (its spapr-vio pass runs at define only) or on a bus
    # that takes no hot-plug; QEMU 7.2 refuses with these words
    plan = planned(domain("pseries", arch="ppc64"))
    with pytest.raises(PlanError, match="Device 'spapr-vlan' can't go on PCI bus"):
        place(plan, "<interface type='user'><model type='spapr-vlan'/></interface>")
    with pytest.raises(PlanError, match="Device 'spapr-vscsi' can't go on PCI bus"):
        place(plan, "<controller type='scsi' index='1'/>")
    with pytest.raises(PlanError, match="Bus 'spapr-vio' does not support hotplugging"):
        place(plan, "<serial type='pty'><target type='spapr-vio-serial' port='1'/></serial>")


def test_pseries_and_aarch64_virt():
    p = place(planned(domain("pseries", arch="ppc64")), VIRTIO_NIC)
    assert p.address is not None and p.address.bus == 0
    arm = planned(domain("virt", VIRTIO_NIC, arch="aarch64"), hotplug_ports=1)
    p = place(arm, "<disk type='file' device='disk'><source file='/x'/><target dev='vdb' bus='virtio'/></disk>")
    assert p.address is not None and p.address.bus > 0  # PCI (not virtio-mmio) on a root port


def test_not_pci_at_all():
    s390 = planned(domain("s390-ccw-virtio", arch="s390x"))
    p = place(s390, VIRTIO_NIC)
    assert p.address is None and p.transport == "ccw"
    usb = place(planned(domain("q35")), "<input type='tablet' bus='usb'/>")
    assert usb.address is None


def test_refusals():
    plan = planned(domain("q35"))
    with pytest.raises(PlanError, match="'pci' controller cannot be hot plugged."):
        place(plan, "<controller type='pci' model='pcie-root-port'><model name='pcie-root-port'/>"
                    "<target chassis='9' port='0x20'/></controller>")
    with pytest.raises(PlanError, match="live attach of device 'sound' is not supported"):
        place(plan, "<sound model='ich9'/>")
    with pytest.raises(PlanError, match="live attach of device 'video' is not supported"):
        place(plan, "<video><model type='virtio'/></video>")
    scsi = place(planned(domain("q35"), hotplug_ports=1), "<controller type='scsi' model='virtio-scsi'/>")
    assert scsi.address is not None


def test_place_does_not_change_the_plan():
    plan = planned(domain("q35"), hotplug_ports=3)
    a = place(plan, VIRTIO_NIC)
    b = place(plan, VIRTIO_NIC)
    assert a.address == b.address


# ---- the command line ---------------------------------------------------------------------
def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pciplan", "hotplug", *args], capture_output=True,
                          text=True, input=stdin, timeout=60)


@pytest.fixture
def files(tmp_path):
    dom = tmp_path / "dom.xml"
    dom.write_text(pciplan.plan(domain("q35", VIRTIO_NIC), pciplan.Options(hotplug_ports=1)))
    nic = tmp_path / "nic.xml"
    nic.write_text("<interface type='user'>\n  <mac address='52:54:00:00:00:09'/>\n  <model type='virtio'/>\n</interface>\n")
    return dom, nic


def test_cli_prints_the_device_with_its_address(files):
    dom, nic = files
    r = run(str(dom), str(nic))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<interface type='user'>\n  <mac address='52:54:00:00:00:09'/>")
    assert "  <address type='pci' domain='0x0000' bus=" in r.stdout and r.stdout.endswith("</interface>\n")
    assert "pcie-root-port" in r.stderr


def test_cli_host_device_gets_its_source_in_libvirts_spelling(files, tmp_path):
    # a host address written as users write it ('0', '10'): libvirt writes it back as
    # 0x0000:0x0a:0x00.0x0, and so does the printed device
    dom, _ = files
    hostdev = tmp_path / "hostdev.xml"
    hostdev.write_text("<hostdev mode='subsystem' type='pci' managed='yes'><source>"
                       "<address domain='0' bus='10' slot='0' function='0'/></source></hostdev>\n")
    r = run(str(dom), str(hostdev))
    assert r.returncode == 0, r.stderr
    assert "<address domain='0x0000' bus='0x0a' slot='0x00' function='0x0'/></source>" in r.stdout
    assert "<address type='pci' domain='0x0000' bus=" in r.stdout


def test_cli_no_room_exits_1_with_the_fix(files, tmp_path):
    dom, nic = files
    full = tmp_path / "full.xml"
    r = run(str(dom), str(nic))
    full.write_text(dom.read_text().replace("</devices>", r.stdout + "</devices>"))
    r = run(str(full), str(nic))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1
    assert "re-plan the domain with `pciplan plan --hotplug-ports N` and restart it" in r.stderr


def test_cli_usage_errors(files):
    dom, nic = files
    assert run(str(nic)).returncode == 2                        # DOMAIN missing
    assert run("--attach", str(dom), str(nic)).returncode == 2   # --attach needs --domain
    r = run(str(nic), str(dom))                                 # swapped
    assert r.returncode == 2 and "a DOMAIN was given where a DEVICE was expected" in r.stderr
    r = run(str(dom), str(dom))
    assert r.returncode == 2 and "not a device element" in r.stderr


def test_clashes_with_the_running_guest():
    # libvirt 9.0's refusals, in its words (checked on a running q35 guest)
    plan = planned(domain("q35", "<disk type='file' device='disk'><source file='/a.img'/>"
                                 "<target dev='vdb' bus='virtio'/></disk>"
                                 "<disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>"
                                 "<controller type='scsi' index='0' model='virtio-scsi'/>"
                                 "<watchdog model='i6300esb'/>", features="<features><acpi/></features>"),
                   hotplug_ports=2)
    with pytest.raises(PlanError, match="target 'vdb' duplicated for disk sources '/a.img' and '/b.img'"):
        place(plan, "<disk type='file' device='disk'><source file='/b.img'/><target dev='vdb' bus='virtio'/></disk>")
    with pytest.raises(PlanError, match="target scsi:0 already exists$"):
        place(plan, "<controller type='scsi' index='0' model='virtio-scsi'/>")
    with pytest.raises(PlanError, match="domain already has a watchdog"):
        place(plan, "<watchdog model='i6300esb'/>")
    with pytest.raises(PlanError, match="hotplug of watchdog of model ib700 is not supported"):
        place(planned(domain("q35")), "<watchdog model='ib700'/>")
    # a cdrom at a cdrom's target is a medium change: no new device, no slot
    p = place(plan, "<disk type='file' device='cdrom'><source file='/x.iso'/><target dev='sda' bus='sata'/></disk>")
    assert p.address is None and "medium" in p.transport
    with pytest.raises(PlanError, match="not removable"):
        place(plan, "<disk type='file' device='cdrom'><target dev='vdb' bus='sata'/></disk>")
    # a MAC, an RNG or a controller index the guest does not have yet: no clash
    assert place(plan, "<controller type='scsi' index='1' model='virtio-scsi'/>").address is not None
    assert place(plan, "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>").address is not None


def test_scsi_disk_brings_its_controllers():
    # libvirt hot-plugs every missing SCSI controller from 0 to the disk's before the disk,
    # of the model of the guest's last SCSI controller, else the machine's default
    # (checked on running guests, and by liveprobe)
    acpi = "<features><acpi/></features>"
    sdb = "<disk type='file' device='disk'><source file='/a.img'/><target dev='sdb' bus='scsi'/></disk>"
    p = place(planned(domain("pc", features=acpi)), sdb)
    assert [(c.device.index, c.device.model) for c in p.first] == [(0, "lsilogic")]
    plan = planned(domain("pc", "<controller type='scsi' index='1' model='virtio-scsi'/>", features=acpi))
    p = place(plan, "<disk type='file' device='disk'><source file='/a.img'/><target dev='sdp' bus='scsi'/>"
                    "<address type='drive' controller='2' bus='0' target='0' unit='0'/></disk>")
    assert p.address is None
    assert [(c.device.index, c.device.model) for c in p.first] == [(0, "virtio-scsi"), (2, "virtio-scsi")]
    slots = [c.address for c in p.first]
    assert all(a is not None and a.bus == 0 for a in slots) and len(set(slots)) == 2
    # controller 1 is there, 0 is not: libvirt adds it all the same
    p = place(plan, "<disk type='file' device='disk'><source file='/b.img'/><target dev='sdb' bus='scsi'/>"
                    "<address type='drive' controller='1'/></disk>")
    assert [c.device.index for c in p.first] == [0]
    with pytest.raises(PlanError, match="Invalid address type 'pci' for the disk 'sdc' with the bus type 'scsi'"):
        place(plan, "<disk type='file' device='disk'><target dev='sdc' bus='scsi'/><address type='pci'/></disk>")


def test_disk_buses_libvirt_does_not_hot_plug():
    # (libvirt's and QEMU's words, checked on running guests: QEMU names the IDE bus or AHCI port)
    plan = planned(domain("q35", features="<features><acpi/></features>"))
    for machine, dst, bus, qemu_bus in (("q35", "sdb", "sata", "ide.1"), ("q35", "sdf", "sata", "ide.5"),
                                        ("pc", "hdb", "ide", "ide.0"), ("pc", "hdc", "ide", "ide.1")):
        with pytest.raises(PlanError, match=f"Bus '{qemu_bus}' does not support hotplugging"):
            place(planned(domain(machine, features="<features><acpi/></features>")),
                  f"<disk type='file' device='disk'><source file='/a.img'/><target dev='{dst}' bus='{bus}'/></disk>")
    with pytest.raises(PlanError, match="floppy device hotplug isn't supported"):
        place(plan, "<disk type='file' device='floppy'><source file='/a.img'/><target dev='fdb' bus='fdc'/></disk>")


def test_buses_the_guest_lacks():
    # libvirt's words on a running q35 guest with <controller type='usb' model='none'/>
    plan = planned(domain("q35", "<controller type='usb' model='none'/>", features="<features><acpi/></features>"))
    for dev in ("<input type='tablet' bus='usb'/>",
                "<disk type='file' device='disk'><source file='/a.img'/><target dev='sdb' bus='usb'/></disk>"):
        with pytest.raises(PlanError, match="Device configuration is not compatible: Domain has no USB bus support"):
            place(plan, dev)
    with pytest.raises(PlanError, match="cannot add redirected USB device: USB is disabled for this domain"):
        place(plan, "<redirdev bus='usb' type='pty'/>")
    # no virtio-serial controller: libvirt adds none on hot-plug
    for dev in ("<channel type='pty'><target type='virtio' name='a.b'/></channel>",
                "<console type='pty'><target type='virtio'/></console>"):
        with pytest.raises(PlanError, match="no virtio-serial controllers are available"):
            place(plan, dev)
    with_serial = planned(domain("q35", "<controller type='virtio-serial' index='0'/>"))
    assert place(with_serial, "<channel type='pty'><target type='virtio' name='a.b'/></channel>").address is None


def test_a_serial_port_is_validated_as_a_defined_one():
    plan = planned(domain("s390-ccw-virtio", arch="s390x"))
    with pytest.raises(PlanError, match="Target type 'sclp-serial' cannot have an associated address"):
        place(plan, "<serial type='pty'><target type='sclp-serial' port='3'/>"
                    "<address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></serial>")
    p = place(planned(domain("pc", features="<features><acpi/></features>")),
              "<serial type='pty'><target type='pci-serial' port='3'/></serial>")
    assert p.address is not None and p.address.bus == 0


def test_chardevs_on_buses_without_hotplug():
    # QEMU's words, through libvirt, on running q35 and s390x guests
    q35 = planned(domain("q35"))
    for dev in ("<serial type='pty'/>", "<serial type='pty'><target type='isa-serial' port='1'/></serial>",
                "<parallel type='pty'/>"):
        with pytest.raises(PlanError, match="Bus 'isa.0' does not support hotplugging"):
            place(q35, dev)
    with pytest.raises(PlanError, match="unsupported console target type serial"):
        place(q35, "<console type='pty'><target type='serial'/></console>")
    with pytest.raises(PlanError, match="Bus 's390-sclp-events-bus.0' does not support hotplugging"):
        place(planned(domain("s390-ccw-virtio", arch="s390x")),
              "<serial type='pty'><target type='sclp-serial' port='3'/></serial>")
    # a USB or PCI serial port is hot-plugged
    assert place(q35, "<serial type='pty'><target type='usb-serial' port='2'/></serial>").address is None


# ---- memory devices (each refusal as the libvirt 9.0 daemon gave it on a running guest) -----
ACPI = "<features><acpi/></features>"


def memory_guest(machine: str, arch: str = "x86_64", slots: int = 4, numa: bool = True,
                 features: str = ACPI, cpu: str = "", devices: str = "", os_extra: str = "",
                 unit: int = 128) -> str:
    max_memory = f"<maxMemory slots='{slots}' unit='MiB'>{8 * unit}</maxMemory>" if slots else ""
    cells = f"<numa><cell id='0' cpus='0' memory='{unit}' unit='MiB'/></numa>" if numa else ""
    return (f"<domain type='qemu'><name>t</name>{max_memory}<memory unit='MiB'>{unit}</memory>"
            f"<vcpu>1</vcpu><os><type arch='{arch}' machine='{machine}'>hvm</type>{os_extra}</os>{features}"
            f"<cpu mode='custom' match='exact'>{cpu}{cells}</cpu><devices>{devices}</devices></domain>")


def dimm(size: int = 128, node: str = "<node>0</node>", model: str = "dimm", extra: str = "") -> str:
    source = "<source><path>/tmp/nv.img</path></source>" if model == "nvdimm" else ""
    return (f"<memory model='{model}'>{source}<target><size unit='MiB'>{size}</size>{node}</target>"
            f"{extra}</memory>")


VIRTIO_MEM = ("<memory model='virtio-mem'><target><size unit='MiB'>128</size><node>0</node>"
              "<block unit='MiB'>2</block><requested unit='MiB'>0</requested></target></memory>")
VIRTIO_PMEM = ("<memory model='virtio-pmem' access='shared'><source><path>/tmp/p.img</path></source>"
               "<target><size unit='MiB'>16</size></target></memory>")


def test_memory_devices_go_where_libvirt_and_qemu_take_them():
    q35 = planned(memory_guest("q35"), hotplug_ports=1)
    assert place(q35, dimm()).address is None  # (DIMM slots are not PCI)
    p = place(q35, VIRTIO_MEM)
    assert p.address is not None and p.flags & Connect.PCIE_DEVICE
    pc = planned(memory_guest("pc"))
    p = place(pc, VIRTIO_PMEM)
    assert p.address is not None and p.address.bus == 0
    # a guest started with an NVDIMM takes another one
    with_nvdimm = planned(memory_guest("q35", devices=dimm(16, model="nvdimm")))
    assert place(with_nvdimm, dimm(16, model="nvdimm")).address is None


def test_memory_device_is_validated_as_a_defined_one():
    # the device's own checks first: its NUMA node, the emulator's models
    no_numa = planned(memory_guest("q35", slots=0, numa=False))
    with pytest.raises(PlanError, match="can't add memory backend as guest has no NUMA nodes configured"):
        place(no_numa, dimm())
    pseries = planned(memory_guest("pseries", arch="ppc64", unit=256,
                                   devices="<interface type='user'><alias name='ua-nic1'/></interface>"))
    with pytest.raises(PlanError, match="virtio-mem isn't supported by this QEMU binary"):
        place(pseries, VIRTIO_MEM)
    # (before the compatibility checks: an alias the guest has, liveprobe seed m7)
    with pytest.raises(PlanError, match="virtio-mem isn't supported by this QEMU binary"):
        place(pseries, VIRTIO_MEM.replace("</memory>", "<alias name='ua-nic1'/></memory>"))
    arm = planned(memory_guest("virt", arch="aarch64", features=""))
    with pytest.raises(PlanError, match="virtio-pmem isn't supported by this QEMU binary"):
        place(arm, VIRTIO_PMEM)
    # (pSeries aligns the module first: an NVDIMM of 256 MiB and a label is too small)
    nvdimm = ("<memory model='nvdimm'><uuid>49545eb3-75e1-2d0a-acdd-f0294406c99e</uuid><source><path>/x</path>"
              "</source><target><size unit='MiB'>256</size><node>0</node><label><size unit='KiB'>128</size>"
              "</label></target></memory>")
    with pytest.raises(PlanError, match="minimum target size for the NVDIMM must be 256MB plus the label size"):
        place(pseries, nvdimm)
    assert place(pseries, nvdimm.replace("'MiB'>256<", "'MiB'>512<")).address is None


def test_memory_device_against_max_memory():
    # virtio-pmem needs no NUMA node: the guest's missing <maxMemory> is what is refused
    with pytest.raises(PlanError, match="cannot use/hotplug a memory device when domain 'maxMemory' is not defined"):
        place(planned(memory_guest("q35", slots=0, numa=False)), VIRTIO_PMEM)
    # ...and it comes before the device's NUMA node and address
    no_max = planned(memory_guest("q35", slots=0))
    for dev in (dimm(node=""), dimm(extra="<address type='pci'/>")):
        with pytest.raises(PlanError, match="'maxMemory' is not defined"):
            place(no_max, dev)
    # a guest of 256 MiB (a DIMM of 128 in) that may grow to 512, with one slot
    full = planned(memory_guest("q35", slots=1, devices=dimm()).replace("<memory unit='MiB'>128</memory>",
                                                                       "<memory unit='MiB'>256</memory>")
                   .replace(f"{8 * 128}</maxMemory>", "512</maxMemory>"))
    with pytest.raises(PlanError, match="Attaching memory device with size '393216' would exceed domain's "
                                        "maxMemory config size '524288'"):
        place(full, dimm(384))
    with pytest.raises(PlanError, match="target NUMA node needs to be specified for memory device"):
        place(full, dimm(node=""))
    with pytest.raises(PlanError, match="only 'dimm' addresses are supported for the pc-dimm device"):
        place(full, dimm(extra="<address type='pci' bus='0' slot='9'/>"))
    with pytest.raises(PlanError, match="memory device slot '3' exceeds slots count '1'"):
        place(full, dimm(extra="<address type='dimm' slot='3'/>"))
    with pytest.raises(PlanError, match="memory device count '2' exceeds slots count '1'"):
        place(full, dimm())


GED = "memory hotplug is not enabled: missing acpi-ged device"


@pytest.mark.parametrize("machine,arch,features,cpu,firmware,refusal", [
    # QEMU plugs a PC's memory through ACPI
    ("q35", "x86_64", "", "", "", "memory hotplug is not enabled: missing acpi device or acpi disabled"),
    ("pc", "x86_64", "", "", "", "memory hotplug is not enabled: missing acpi device or acpi disabled"),
    # ARM's virt board through the ACPI GED, made for a 64-bit CPU with ACPI and firmware
    ("virt", "aarch64", "", "<model>cortex-a57</model>", False, GED),
    ("virt", "aarch64", ACPI, "", True, GED),  # (TCG's default CPU: a 32-bit Cortex-A15)
    ("virt", "aarch64", ACPI, "<model>cortex-a15</model>", True, GED),
    ("virt", "aarch64", ACPI, "<model>cortex-a57</model>", True, None),
    ("virt", "aarch64", ACPI, "<model>max</model>", True, None),
    ("q35", "x86_64", ACPI, "", "", None),
    ("pseries", "ppc64", "", "", "", None),
])
def test_qemu_plugs_dimms_through_acpi(machine, arch, features, cpu, firmware, refusal):
    loader = ("<loader readonly='yes' type='pflash'>/usr/share/AAVMF/AAVMF_CODE.fd</loader>"
              if firmware else "")
    unit = 256 if arch == "ppc64" else 128
    plan = planned(memory_guest(machine, arch, features=features, cpu=cpu, os_extra=loader, unit=unit),
                   probe_host=False)
    if refusal is None:
        assert place(plan, dimm(unit)).address is None
    else:
        with pytest.raises(PlanError, match=f"unable to execute QEMU command 'device_add': {refusal}"):
            place(plan, dimm(unit))


def test_nvdimm_needs_the_machine_started_with_one():
    with pytest.raises(PlanError, match="nvdimm is not enabled: missing 'nvdimm' in '-M'"):
        place(planned(memory_guest("q35")), dimm(16, model="nvdimm"))
    arm = planned(memory_guest("virt", "aarch64", cpu="<model>cortex-a57</model>",
                               os_extra="<loader readonly='yes' type='pflash'>/usr/share/AAVMF/AAVMF_CODE.fd</loader>"),
                  probe_host=False)
    with pytest.raises(PlanError, match="nvdimm is not enabled: add 'nvdimm=on' to '-M'"):
        place(arm, dimm(16, model="nvdimm"))


def test_an_address_on_a_bus_qemu_refuses_gets_qemus_words():
    # pc without ACPI: libvirt takes a root-bus address the user gives, QEMU refuses it
    plan = planned(domain("pc", "<controller type='pci' index='1' model='pci-bridge'/>"))
    with pytest.raises(PlanError, match="unable to execute QEMU command 'device_add': Bus 'pci.0' does not "
                                        "support hotplugging"):
        place(plan, "<interface type='user'><model type='e1000'/><address type='pci' bus='0' slot='9'/></interface>")
    # ...after QEMU looks the device up (liveprobe seed 17)
    with pytest.raises(PlanError, match="'vlance' is not a valid device model name"):
        place(plan, "<interface type='user'><model type='vlance'/><address type='pci' bus='0' slot='9'/></interface>")
    # ...and after libvirt's own checks of the address
    with pytest.raises(PlanError, match="Attempted double use of PCI Address 0000:00:01.0"):
        place(plan, "<interface type='user'><model type='e1000'/><address type='pci' bus='0' slot='1'/></interface>")


def test_devices_are_validated_as_defined_ones_first():
    # libvirt validates the device as it parses it, before anything else (the libvirt 9.0
    # daemon's words on a running q35 guest without SPICE, shared memory or virtio-serial)
    plan = planned(domain("q35", features=ACPI), hotplug_ports=2)
    with pytest.raises(PlanError, match="chardev 'spicevmc' not supported without spice graphics"):
        place(plan, "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>")
    with pytest.raises(PlanError, match="'virtiofs' requires shared memory"):
        place(plan, "<filesystem type='mount'><driver type='virtiofs'/><source dir='/s'/><target dir='t'/></filesystem>")
    # ...then whether it can be hot-plugged at all: a 9p share cannot
    with pytest.raises(PlanError, match="only virtiofs filesystems can be hotplugged"):
        place(plan, "<filesystem type='mount' accessmode='mapped'><source dir='/s'/><target dir='t'/></filesystem>")
    shared = planned(domain("q35", features=ACPI).replace(
        "<os>", "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking><os>"), hotplug_ports=2)
    p = place(shared, "<filesystem type='mount'><driver type='virtiofs'/><source dir='/s'/><target dir='t'/></filesystem>")
    assert p.address is not None and p.flags & Connect.PCIE_DEVICE


def test_a_tpm_is_validated_then_refused():
    # libvirt 9.0 hot-plugs no TPM; its own checks of the device come first
    plan = planned(domain("q35", features=ACPI))
    with pytest.raises(PlanError, match="live attach of device 'tpm' is not supported"):
        place(plan, "<tpm model='tpm-crb'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>")
    with pytest.raises(PlanError, match="does not support TPM model tpm-spapr"):
        place(plan, "<tpm model='tpm-spapr'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>")


def test_kinds_libvirt_does_not_hot_plug():
    # the libvirt 9.0 daemon's words on a running q35 guest
    plan = planned(domain("q35", features=ACPI))
    for dev, words in (("<crypto model='virtio' type='qemu'><backend model='builtin' queues='1'/></crypto>",
                        "unknown device type 'crypto'"),
                       ("<pstore backend='acpi-erst'><path>/x</path><size unit='KiB'>8</size></pstore>",
                        "unknown device type 'pstore'"),
                       ("<redirfilter><usbdev allow='yes'/></redirfilter>", "unknown device type 'redirfilter'"),
                       ("<nvram><address type='spapr-vio' reg='0x3000'/></nvram>",
                        "nvram device is only supported for PPC64"),
                       ("<memballoon model='virtio'/>", "live attach of device 'memballoon' is not supported"),
                       ("<controller type='usb' index='1' model='qemu-xhci'/>",
                        "'usb' controller cannot be hot plugged."),
                       ("<input type='tablet' bus='ps2'/>", "ps2 bus does not support tablet input device")):
        with pytest.raises(PlanError, match=re.escape(words)):
            place(plan, dev)


#: devices of kinds libvirt validates against the running guest before it says it cannot
#: hot-plug them, or refuses as it plugs them: the libvirt 9.0 daemon's words on running guests
#: (pc: VNC graphics, so an audio backend id 1; q35: no free root port, a pcie-to-pci-bridge)
VALIDATED_ATTACHES = [
    ("pc", "<audio id='1' type='none'/>", "audio ID 1 is used multiple times"),
    ("pc", "<audio id='2' type='spice'/>", "Spice audio is not supported without spice graphics"),
    ("pc", "<audio id='2' type='none'/>", "live attach of device 'audio' is not supported"),
    ("pc", "<sound model='ich9'><audio id='5'/></sound>", "no audio device with ID 5"),
    ("pc", "<sound model='ich9'><audio id='1'/></sound>", "live attach of device 'sound' is not supported"),
    ("pc", "<smartcard mode='host'/>", "this QEMU binary lacks multiple smartcard support"),
    ("pc", "<smartcard mode='host'><address type='ccid' controller='0' slot='1'/></smartcard>",
     "this QEMU binary lacks multiple smartcard support"),
    ("pc", "<smartcard mode='host'><address type='usb' bus='0' port='3'/></smartcard>",
     "Controllers must use the 'ccid' address type"),
    ("pc", "<smartcard mode='host'><address type='ccid' controller='0' slot='0'/></smartcard>",
     "live attach of device 'smartcard' is not supported"),
    ("pc", "<iommu model='intel'/>", "IOMMU device: 'intel' is only supported with Q35 machines"),
    ("pc", "<iommu model='virtio'/>", "IOMMU device: 'virtio' is only supported with Q35 and ARM Virt machines"),
    ("q35-noacpi", "<iommu model='virtio'/>", "IOMMU device: 'virtio' requires ACPI"),
    ("pc", "<input type='mouse' bus='ps2'/>", "input device on bus 'ps2' cannot be hot plugged."),
    ("pc", "<input type='keyboard'/>", "input device on bus 'ps2' cannot be hot plugged."),
    ("pc", "<input type='evdev'><source dev='/dev/input/event7'/></input>",
     "input device on bus 'none' cannot be hot plugged."),
    ("pc", "<interface type='mcast'><source address='230.0.0.1' port='5558'/><model type='rtl8139'/></interface>",
     "hotplug of interface type of mcast is not implemented yet"),
    ("q35-full", "<interface type='mcast'><source address='230.0.0.1' port='5558'/><model type='virtio'/></interface>",
     "No more available PCI slots"),  # (the NIC's address first)
    ("q35-full", "<interface type='mcast'><source address='230.0.0.1' port='5558'/><model type='rtl8139'/></interface>",
     "hotplug of interface type of mcast is not implemented yet"),
    ("q35-full", "<disk type='file' device='cdrom'><source file='/tmp/c.iso'/><target dev='sdz' bus='sata'/></disk>",
     "Could not find sata controller with index 4 required for device"),
    ("q35-full", "<disk type='file' device='cdrom'><source file='/tmp/c.iso'/><target dev='sdb' bus='sata'/></disk>",
     "unable to execute QEMU command 'device_add': Bus 'ide.1' does not support hotplugging"),
    ("pc", "<disk type='file' device='disk'><source file='/tmp/c.iso'/><target dev='hdd' bus='ide'/></disk>",
     "unable to execute QEMU command 'device_add': Bus 'ide.1' does not support hotplugging"),
    ("pc", "<disk type='file' device='disk'><source file='/tmp/c.img'/><target dev='sdf' bus='sata'/></disk>",
     "Could not find sata controller with index 0 required for device"),  # (pc has no built-in AHCI)
    # a drive without a medium: libvirt 9.0 hands QEMU no file name, after the controllers
    ("pc", "<disk type='file' device='cdrom'><target dev='sdg' bus='scsi'/></disk>",
     "argument key 'filename' must not have null value"),
    ("pc", "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>",
     "argument key 'filename' must not have null value"),
    ("q35-full", "<disk type='block' device='cdrom'><target dev='sdh' bus='usb'/></disk>",
     "argument key 'filename' must not have null value"),
    ("q35-full", "<disk type='network' device='cdrom'><target dev='sdj' bus='scsi'/></disk>",
     "argument key 'filename' must not have null value"),
    ("q35-full", "<disk type='dir' device='disk'><source dir='/tmp/d'/><target dev='vdd' bus='virtio'/></disk>",
     "storage type 'dir' requires use of storage format 'fat'"),
]
VALIDATED_ATTACHES += [
    # libvirt's refusal of the NIC's type comes before QEMU's of its bus or device (liveprobe o2)
    ("pc-pxb", "<interface type='udp'><source address='230.0.0.1' port='5558'><local address='127.0.0.1' "
               "port='5559'/></source><model type='rtl8139'/><address type='pci' bus='1' slot='0x14'/></interface>",
     "hotplug of interface type of udp is not implemented yet"),
    ("pc-pxb", "<interface type='user'><model type='rtl8139'/><address type='pci' bus='1' slot='0x14'/></interface>",
     "unable to execute QEMU command 'device_add': Bus 'pci.1' does not support hotplugging"),
    ("pseries", "<interface type='null'><model type='spapr-vlan'/></interface>",
     "hotplug of interface type of null is not implemented yet"),
    ("pseries", "<interface type='user'><model type='spapr-vlan'/></interface>",
     "unable to execute QEMU command 'device_add': Device 'spapr-vlan' can't go on PCI bus"),
]
GUESTS = {
    "pc": domain("pc", "<graphics type='vnc'/>", features=ACPI),
    "q35-noacpi": domain("q35", "<graphics type='vnc'/>"),
    "q35-full": domain("q35", "<controller type='pci' index='1' model='pcie-root-port'/>"
                              "<controller type='pci' index='2' model='pcie-root-port'/>"
                              "<controller type='pci' index='3' model='pcie-to-pci-bridge'/><graphics type='vnc'/>",
                       features=ACPI),
}


VALIDATED_ATTACHES.append(("aarch64", "<input type='keyboard'><address type='pci'/></input>",
                           "Invalid address for a USB device"))  # (USB by default there, then no USB bus)
GUESTS["pc-pxb"] = domain("pc", "<controller type='pci' index='1' model='pci-expander-bus'><target busNr='254'/>"
                                "</controller>", features=ACPI)
GUESTS["pseries"] = domain("pseries", arch="ppc64")
GUESTS["s390x"] = domain("s390-ccw-virtio", arch="s390x")
VALIDATED_ATTACHES.append(("s390x", "<hub type='usb'/>", "usb-hub not supported by QEMU binary"))  # (liveprobe o3)
VALIDATED_ATTACHES.append(("s390x", "<interface type='user'><model type='e1000-82540em'/></interface>",
                           "'e1000-82540em' (alias 'e1000') is not a valid device model name"))  # (s1)


def test_an_attached_device_is_validated_before_it_has_its_ccw_address():
    # libvirt validates an attached passthrough input without an address (its CCW one comes
    # later): s390x's QEMU has virtio-input-host, not virtio-input-host-ccw, so it passes
    # there (and the host's event device is asked); a defined one is refused (liveprobe h2)
    from pciplan import hostcaps

    evdev = "<input type='passthrough' bus='virtio'><source evdev='/dev/input/event9'/></input>"
    assert place(planned(GUESTS["s390x"]), evdev).transport == "ccw"
    with pytest.raises(PlanError, match=re.escape("Path '/dev/input/event9' is not accessible")):
        attach.place(planned(GUESTS["s390x"]), xmlio.load_device(evdev).device,
                     pciplan.Options(host=hostcaps.Host(installed=lambda path: False)))
    with pytest.raises(PlanError, match="virtio-input-host is not supported by this QEMU binary"):
        planned(domain("s390-ccw-virtio", evdev, arch="s390x"))
GUESTS["aarch64"] = domain("virt", "<controller type='usb' model='none'/>", arch="aarch64")


@pytest.mark.parametrize("guest, dev, words", VALIDATED_ATTACHES)
def test_devices_are_checked_against_the_running_guest(guest, dev, words):
    plan = planned(GUESTS[guest])
    with pytest.raises(PlanError, match=re.escape(words)):
        place(plan, dev)


@pytest.mark.parametrize("dev", ["<input type='tablet'/>", "<input type='tablet' bus='usb'/>",
                                 "<lease><lockspace>ls</lockspace><key>k</key><target path='/tmp/l'/></lease>"])
def test_devices_libvirt_attaches_without_a_pci_address(dev):
    # (a tablet without a bus is a USB one on x86, as in a domain)
    p = place(planned(GUESTS["pc"]), dev)
    assert p.address is None


def test_files_a_device_needs_are_asked_of_the_guests_host():
    from pciplan import hostcaps

    plan = planned(GUESTS["pc"])
    bare = hostcaps.Host(installed=lambda path: False)
    vsock = "<vsock model='virtio'><cid auto='yes'/></vsock>"
    evdev = "<input type='passthrough' bus='virtio'><source evdev='/dev/input/event1'/></input>"
    with pytest.raises(PlanError, match="unable to open vhost-vsock device"):
        attach.place(plan, xmlio.load_device(vsock).device, pciplan.Options(host=bare))
    with pytest.raises(PlanError, match=re.escape("Path '/dev/input/event1' is not accessible: "
                                                  "No such file or directory")):
        attach.place(plan, xmlio.load_device(evdev).device, pciplan.Options(host=bare))
    # any host (a guest on another machine): placed
    for dev in (vsock, evdev):
        assert place(plan, dev).address is not None
    # with no free slot the address fails first, as libvirt's does
    with pytest.raises(CapacityError):
        attach.place(planned(GUESTS["q35-full"]), xmlio.load_device(vsock).device, pciplan.Options(host=bare))


HOSTDEV = "<hostdev mode='subsystem' type='pci' managed='yes'>{driver}<source><address domain='0' bus='6' slot='0x12' function='5'/></source></hostdev>"
HOSTDEV_NIC = "<interface type='hostdev' managed='yes'>{driver}<source><address type='pci' domain='0' bus='6' slot='0x12' function='5'/></source></interface>"
#: a host PCI device attached on a host without an IOMMU or VFIO (the daemon's words on this
#: VM); q35-full has no free slot, so these come before the slot is looked for
PASSTHROUGH = [
    (HOSTDEV, "", "host doesn't support passthrough of host PCI devices"),
    (HOSTDEV, "<driver name='vfio'/>", "host doesn't support VFIO PCI passthrough"),
    (HOSTDEV, "<driver name='kvm'/>", "host doesn't support legacy PCI passthrough"),
    (HOSTDEV, "<driver name='xen'/>", "QEMU does not support device assignment mode 'xen'"),
    (HOSTDEV_NIC, "", "host doesn't support passthrough of host PCI devices"),
    (HOSTDEV_NIC, "<driver name='kvm'/>", "host doesn't support legacy PCI passthrough"),
    (HOSTDEV_NIC, "<driver name='xen'/>",
     "Interface type hostdev is currently supported on SR-IOV Virtual Functions only"),
]


@pytest.mark.parametrize("template, driver, words", PASSTHROUGH)
def test_a_host_pci_device_is_prepared_on_the_guests_host_before_its_slot(template, driver, words):
    from pciplan import hostcaps

    bare = hostcaps.Host(installed=lambda path: False, vfio=False)
    dev = template.format(driver=driver)
    with pytest.raises(PlanError, match=re.escape(words)):
        attach.place(planned(GUESTS["q35-full"]), xmlio.load_device(dev).device, pciplan.Options(host=bare))
    # a host with VFIO and the device, as a DOMAIN file's guest is taken to run on: legacy KVM
    # and Xen back ends are still refused, the others get as far as the slot
    if driver in ("<driver name='kvm'/>", "<driver name='xen'/>"):
        with pytest.raises(PlanError, match="legacy PCI passthrough|device assignment mode 'xen'"):
            place(planned(GUESTS["pc"]), dev)
    else:
        assert place(planned(GUESTS["pc"]), dev).address is not None
        with pytest.raises(CapacityError):
            place(planned(GUESTS["q35-full"]), dev)


def test_a_mediated_device_needs_vfio_once_it_has_a_slot():
    from pciplan import hostcaps

    bare = hostcaps.Host(vfio=False)
    mdev = xmlio.load_device("<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
                             "<address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source></hostdev>").device
    with pytest.raises(PlanError, match="Mediated host device assignment requires VFIO support"):
        attach.place(planned(GUESTS["pc"]), mdev, pciplan.Options(host=bare))
    with pytest.raises(CapacityError):
        attach.place(planned(GUESTS["q35-full"]), mdev, pciplan.Options(host=bare))


@pytest.mark.parametrize("dev", [
    "<disk type='file' device='disk'><source file='/tmp/nosuch.img'/><target dev='vdb' bus='virtio'/></disk>",
    "<disk type='block' device='cdrom'><source dev='/dev/nosuch'/><target dev='sdc' bus='scsi'/></disk>",
    # (before the IDE bus refusal and the address checks, as libvirt's storage set-up)
    "<disk type='file' device='disk'><source file='/tmp/nosuch.img'/><target dev='hdb' bus='ide'/></disk>",
    "<disk type='file' device='disk'><source file='/tmp/nosuch.img'/><target dev='vdb' bus='virtio'/>"
    "<address type='pci' bus='0' slot='0x1f' function='3'/></disk>",
])
def test_a_disks_storage_is_asked_of_the_guests_host(dev):
    from pciplan import hostcaps

    bare = hostcaps.Host(installed=lambda path: False)
    path = re.search(r"(?:file|dev)='(/[^']+)'", dev).group(1)
    for guest in ("pc", "q35-full"):
        with pytest.raises(PlanError, match=re.escape(f"Cannot access storage file '{path}': "
                                                      "No such file or directory")):
            attach.place(planned(GUESTS[guest]), xmlio.load_device(dev).device, pciplan.Options(host=bare))


#: a NIC's host side on a host with no network, bridge or interface of these names (the
#: daemon's words); pc has free slots, q35-full none for a virtio NIC
HOST_NICS = [
    ("pc", "<interface type='network'><source network='default'/><model type='e1000'/></interface>",
     "Network not found: no network with matching name 'default'"),
    ("q35-full", "<interface type='network'><source network='default'/><model type='virtio'/></interface>",
     "Network not found: no network with matching name 'default'"),  # (looked up before the slot)
    ("pc", "<interface type='network'><source network='idle'/><model type='virtio'/></interface>",
     "network 'idle' is not active"),
    ("pc", "<interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>",
     "Cannot get interface MTU on 'br0': No such device"),
    ("q35-full", "<interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>",
     "No more available PCI slots"),  # (the bridge is asked once the NIC has its slot)
    ("pc", "<interface type='ethernet'><target dev='tapx' managed='no'/><model type='e1000'/></interface>",
     "target managed='no' but specified dev doesn't exist"),
    ("pc", "<interface type='direct'><source dev='eth7' mode='bridge'/><model type='e1000'/></interface>",
     "Unable to get index for interface eth7: No such device"),
]


@pytest.mark.parametrize("guest, dev, words", HOST_NICS)
def test_a_nics_host_side_is_asked_of_the_guests_host(guest, dev, words):
    from pciplan import hostcaps

    bare = hostcaps.Host(installed=lambda path: False, networks={"idle": False})
    with pytest.raises((PlanError, CapacityError), match=re.escape(words)):
        attach.place(planned(GUESTS[guest]), xmlio.load_device(dev).device, pciplan.Options(host=bare))
    if guest == "pc":  # (any host: placed)
        assert place(planned(GUESTS[guest]), dev).address is not None


def test_only_a_local_daemons_guests_run_here():
    from pciplan.cli.hotplug import is_local

    assert is_local("qemu:///system") and is_local("qemu+unix:///system") and is_local("qemu://localhost/system")
    assert not is_local("qemu+ssh://root@kvm7/system") and not is_local("qemu+tls://host.example/system")


def test_qemu_refuses_a_nic_model_it_has_no_device_for():
    # libvirt 9.0 passes a model it does not name itself on to QEMU as the device's name
    # (QEMU 7.2's words, on running q35 and s390x guests)
    plan = planned(domain("q35", "<controller type='pci' index='1' model='pcie-root-port'/>"
                                 "<controller type='pci' index='2' model='pcie-to-pci-bridge'/>", features=ACPI),
                   hotplug_ports=2)
    for model in ("vlance", "bogus", "82540EM"):
        with pytest.raises(PlanError, match=f"'device_add': '{model}' is not a valid device model name"):
            place(plan, f"<interface type='user'><model type='{model}'/></interface>")
    for model in ("ne2k_isa", "virtio-net-device"):
        with pytest.raises(PlanError, match=f"Device '{model}' can't go on PCIE bus"):
            place(plan, f"<interface type='user'><model type='{model}'/></interface>")
    for model in ("virtio-net", "virtio-net-pci", "e1000-82540em", "tulip", "i82559er", "E1000"):
        assert place(plan, f"<interface type='user'><model type='{model}'/></interface>").address is not None
    s390 = planned(domain("s390-ccw-virtio", arch="s390x"))
    with pytest.raises(PlanError, match="'e1000' is not a valid device model name"):
        place(s390, "<interface type='user'><model type='e1000'/></interface>")


def test_a_virtio_channel_gets_a_port_in_place_of_a_pci_address(tmp_path):
    # libvirt 9.0 attaches it on a virtio-serial port, as it defines one (liveprobe seed 13)
    dom = tmp_path / "dom.xml"
    dom.write_text(domain("q35", "<controller type='virtio-serial' index='0'/>", features=ACPI))
    dev = tmp_path / "ch.xml"
    dev.write_text("<channel type='pty'><target type='virtio' name='org.example.1'/><address type='pci'/></channel>")
    r = subprocess.run([sys.executable, "-m", "pciplan", "hotplug", str(dom), str(dev)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "<address" not in r.stdout and "virtio-serial port" in r.stderr


def test_a_controller_is_validated_before_the_hot_plug():
    # the libvirt 9.0 daemon's words on a running q35 guest
    plan = planned(domain("q35", features=ACPI), hotplug_ports=2)
    for dev, words in (("<controller type='scsi' index='2' model='buslogic'/>",
                        "Unsupported controller model: buslogic"),
                       ("<controller type='scsi' index='2' model='ncr53c90'/>",
                        "ncr53c90 can only be used as first SCSI controller"),
                       ("<controller type='ide' index='0'/>",
                        "IDE controllers are unsupported for this QEMU binary or machine type"),
                       ("<controller type='virtio-serial' index='1'/>",
                        "'virtio-serial' controller cannot be hot plugged.")):
        with pytest.raises(PlanError, match=re.escape(words)):
            place(plan, dev)


#: a PCI controller attached to a running guest: libvirt 9.0's words (daemon, running guests);
#: nothing fills in its index (-1), model name or options, so validation refuses what it lacks
PCI_CONTROLLER_ATTACHES = [
    ("q35", "<controller type='pci' model='pcie-root-port'/>",
     "Required option 'modelName' is not set for PCI controller with index '-1', model "
     "'pcie-root-port' and modelName 'none'"),
    ("q35", "<controller type='pci' index='0' model='pcie-root-port'/>",
     "Required option 'modelName' is not set for PCI controller with index '0', model "
     "'pcie-root-port' and modelName 'none'"),
    ("q35", "<controller type='pci' model='pcie-root-port'><model name='pcie-root-port'/></controller>",
     "Required option 'chassis' is not set for PCI controller with index '-1'"),
    ("q35", "<controller type='pci' model='pcie-root-port'><model name='pcie-root-port'/>"
            "<target chassis='9'/></controller>", "Required option 'port' is not set"),
    ("q35", "<controller type='pci' model='pcie-root-port'><model name='pcie-root-port'/>"
            "<target chassis='9' port='0x20' busNr='5'/></controller>",
     "Option 'busNr' is not valid for PCI controller with index '-1', model 'pcie-root-port' and "
     "modelName 'pcie-root-port'"),
    ("q35", "<controller type='pci' model='pcie-root-port'><model name='pci-bridge'/></controller>",
     "Option 'modelName' has invalid value for PCI controller with index '-1', model "
     "'pcie-root-port' and modelName 'pci-bridge'"),
    ("q35", "<controller type='pci' model='pcie-root'/>",
     "pci-root and pcie-root controllers should have index 0"),
    ("q35", "<controller type='pci'/>", "Unexpected enum value -1 for virDomainControllerModelPCI"),
    ("q35", "<controller type='pci' model='pci-expander-bus'/>",
     "pci-expander-bus controllers are only supported on 440fx-based machinetypes"),
    ("q35", "<controller type='pci' model='pci-bridge'><model name='pci-bridge'/></controller>",
     "Required option 'chassisNr' is not set for PCI controller with index '-1'"),
    ("pc", "<controller type='pci' model='pci-expander-bus'><model name='pxb'/><target busNr='100'>"
           "<node>1</node></target></controller>",
     "pci-expander-bus with index -1 is configured for a NUMA node (1) not present in the "
     "domain's <cpu><numa> array (0)"),
    ("pc", "<controller type='pci' model='pcie-expander-bus'><model name='pxb-pcie'/>"
           "<target busNr='100'/></controller>",
     "pcie-expander-bus controllers are not supported with this machine type"),
    ("pc", "<controller type='pci' model='pci-bridge'><model name='pci-bridge'/>"
           "<target chassisNr='5' hotplug='off'/></controller>", "Option 'hotplug' is not valid"),
    ("pc", "<controller type='pci' index='0' model='pci-root'><model name='spapr-pci-host-bridge'/>"
           "</controller>",
     "Option 'modelName' is not valid for PCI controller with index '0', model 'pci-root' and "
     "modelName 'spapr-pci-host-bridge'"),
    # complete ones get as far as the hot-plug itself
    ("q35", "<controller type='pci' model='pcie-root-port'><model name='pcie-root-port'/>"
            "<target chassis='9' port='0x20'/></controller>", "'pci' controller cannot be hot plugged."),
    ("q35", "<controller type='pci' index='0' model='pcie-root'/>", "'pci' controller cannot be hot plugged."),
    ("q35", "<controller type='pci' model='pcie-expander-bus'><model name='pxb-pcie'/>"
            "<target busNr='100'/></controller>", "'pci' controller cannot be hot plugged."),
    ("pc", "<controller type='pci' model='pci-expander-bus'><model name='pxb'/><target busNr='100'/>"
           "</controller>", "'pci' controller cannot be hot plugged."),
]


@pytest.mark.parametrize("machine, dev, words", PCI_CONTROLLER_ATTACHES)
def test_a_pci_controller_is_validated_as_libvirt_parses_it_then_refused(machine, dev, words):
    plan = planned(domain(machine, "<graphics type='vnc'/>", features=ACPI))
    with pytest.raises(PlanError, match=re.escape(words)):
        place(plan, dev)


def test_a_clashing_user_alias_comes_before_the_usb_bus():
    # (liveprobe r1: a USB disk whose alias the guest has, on a guest without USB)
    plan = planned(domain("q35", "<controller type='usb' model='none'/>"
                                 "<interface type='user'><alias name='ua-x'/><model type='virtio'/></interface>"))
    with pytest.raises(PlanError, match="non unique alias detected: ua-x"):
        place(plan, "<disk type='file' device='disk'><source file='/tmp/d.img'/><target dev='sdd' bus='usb'/>"
                    "<alias name='ua-x'/></disk>")


def test_a_user_alias_the_guest_has_is_refused():
    # libvirt 9.0's compatibility check, on a running q35 guest (only ua- aliases are kept)
    plan = planned(domain("q35", "<interface type='user'><alias name='ua-net0'/><model type='virtio'/></interface>",
                          features=ACPI), hotplug_ports=2)
    with pytest.raises(PlanError, match="non unique alias detected: ua-net0"):
        place(plan, "<rng model='virtio'><alias name='ua-net0'/><backend model='random'>/dev/urandom</backend></rng>")
    assert place(plan, "<interface type='user'><alias name='ua-net1'/><model type='virtio'/></interface>").address
    assert place(plan, "<interface type='user'><alias name='net0'/><model type='virtio'/></interface>").address


def test_an_s390_nic_gets_a_ccw_address_whatever_its_model():
    # libvirt 9.0's hot-plug (its define gives a model it does not know as virtio PCI)
    s390 = planned(domain("s390-ccw-virtio", arch="s390x"))
    p = place(s390, "<interface type='user'><model type='virtio-net'/></interface>")
    assert p.address is None and p.transport == "ccw"
    # (with a PCI address asked for, a zPCI one)
    p = place(s390, "<interface type='user'><model type='virtio'/><address type='pci'/></interface>")
    assert p.address is not None
    # QEMU's virtio-net-pci takes no CCW address (liveprobe seed 15)
    with pytest.raises(PlanError, match=re.escape("Property 'virtio-net-pci.devno' not found")):
        place(s390, "<interface type='user'><model type='virtio-net-pci'/></interface>")


def test_a_device_is_validated_before_the_guest_is_asked():
    # libvirt validates the device while parsing it, before its compatibility checks (the
    # libvirt 9.0 daemon's words on running guests: liveprobe seed 14)
    s390 = planned(domain("s390-ccw-virtio", arch="s390x"))
    with pytest.raises(PlanError, match="This QEMU doesn't support '-device usb-storage'"):
        place(s390, "<disk type='file' device='disk'><source file='/a.img'/><target dev='sdb' bus='usb'/></disk>")
    no_usb = planned(domain("q35", "<controller type='usb' model='none'/>", features=ACPI))
    with pytest.raises(PlanError, match="usb-serial requires address of usb type"):
        place(no_usb, "<serial type='pty'><target type='usb-serial' port='1'/><address type='pci'/></serial>")


def test_a_spapr_vio_device_at_a_pci_address():
    # libvirt 9.0 hot-plugs it onto PCI at the address written (its spapr-vio pass runs at
    # define only): the address is checked first, then QEMU refuses (on a running pSeries guest)
    plan = planned(domain("pseries", arch="ppc64"))

    def vlan(bus: int, slot: int, function: int) -> str:
        return (f"<interface type='user'><model type='spapr-vlan'/><address type='pci' domain='0x0000' "
                f"bus='{bus:#04x}' slot='{slot:#04x}' function='{function:#x}'/></interface>")
    with pytest.raises(PlanError, match="Only PCI device addresses with function=0 are supported"):
        place(plan, vlan(0, 5, 3))
    with pytest.raises(PlanError, match=re.escape("Invalid PCI address 0000:02:15.0. Only PCI buses up to 0 "
                                                  "are available")):
        place(plan, vlan(2, 0x15, 0))
    with pytest.raises(PlanError, match="Device 'spapr-vlan' can't go on PCI bus"):
        place(plan, vlan(0, 0x15, 0))


def test_the_device_printed_keeps_the_way_it_was_written():
    # only the address is new: mixed quotes, a start tag over two lines, Windows line
    # endings and an empty element written <x></x> stay as they were
    plan = planned(pciplan.plan(domain("q35", VIRTIO_NIC), pciplan.Options(hotplug_ports=2)))
    nic = ("<interface type=\"user\">\r\n  <mac address='52:54:00:00:00:07'\r\n       />\r\n"
           "  <model type=\"virtio\"></model>\r\n</interface>\r\n")
    doc = xmlio.load_device(nic)
    placed = attach.place(plan, doc.device)
    attach.apply(placed)
    out = xmlio.device_tostring(doc)
    assert placed.address is not None
    assert out.startswith(nic[:-len("</interface>\r\n")] + "  <address type=\"pci\" domain=\"0x0000\" bus=")
    assert out.endswith("/>\r\n</interface>")
