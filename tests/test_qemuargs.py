"""qemu-args: the QEMU 7.2 arguments that realise a plan, reasoned from the plan.

No QEMU is run here (see test_verify.py for that): every expectation is what
the plan says (bus, slot, function, controller options) turned into QEMU's
spelling, the naming libvirt 9.0 uses, and the documented stand-ins.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
from click.testing import CliRunner

import pciplan
from pciplan import qemuargs, topology
from pciplan.address import PciAddress
from pciplan.cli import main
from support.paths import CORPUS_ABSENT, corpus_dir


def cfg_of(xml: str) -> qemuargs.QemuConfig:
    return qemuargs.build(topology.build(pciplan.plan_text(xml).plan))


def props(arg: str) -> tuple[str, dict[str, str]]:
    driver, *rest = arg.split(",")
    return driver, dict(p.split("=", 1) for p in rest)


def by_id(cfg: qemuargs.QemuConfig) -> dict[str, qemuargs.QemuDevice]:
    return {d.id: d for d in cfg.devices}


def dom(arch: str, machine: str, devices: str, extra: str = "") -> str:
    return (f"<domain type='qemu'><name>t</name><memory>1048576</memory>"
            f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os>{extra}"
            f"<devices>{devices}</devices></domain>")


NET = "<interface type='user'><mac address='52:54:00:00:00:{n:02x}'/><model type='{m}'/></interface>"

Q35 = dom("x86_64", "q35", """
  <disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>
  """ + NET.format(n=1, m="virtio") + """
  <hostdev mode='subsystem' type='pci' managed='yes'>
    <source><address domain='0x0000' bus='0x06' slot='0x00' function='0x0'/></source></hostdev>
  <controller type='usb' model='qemu-xhci' ports='15'/>
  <video><model type='qxl'/></video>
""", "<features><acpi/></features>")

PC = dom("x86_64", "pc", """
  <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
  """ + NET.format(n=1, m="e1000") + NET.format(n=2, m="virtio") + """
  <controller type='pci' index='1' model='pci-bridge'/>
  <interface type='user'><mac address='52:54:00:00:00:09'/><model type='rtl8139'/>
    <address type='pci' domain='0x0000' bus='0x01' slot='0x05' function='0x0'/></interface>
  <hostdev mode='subsystem' type='pci' managed='yes'>
    <source><address domain='0x0000' bus='0x06' slot='0x00' function='0x0'/></source></hostdev>
  <sound model='ac97'/>
  <video><model type='cirrus'/></video>
""", "<features><acpi/></features>")


# ---- bus naming and controllers --------------------------------------------------------------
def test_q35_root_ports_follow_the_plan():
    t = topology.build(pciplan.plan_text(Q35).plan)
    cfg = qemuargs.build(t)
    ports = [f for f in t.functions if f.device.tag == "controller" and f.device.model == "pcie-root-port"]
    assert ports
    devs = by_id(cfg)
    for f in ports:
        c = f.device
        d = devs[f"pci.{c.index}"]
        driver, p = props(d.arg())
        assert driver == "pcie-root-port"
        assert p["bus"] == "pcie.0"
        assert int(p["port"], 0) == int(c.target["port"], 0) == (f.address.slot << 3) + f.address.function
        assert p["chassis"] == c.target["chassis"] == str(c.index)
        assert p["addr"] == (f"0x{f.address.slot:x}" if f.address.function == 0
                             else f"0x{f.address.slot:x}.0x{f.address.function:x}")
        # multifunction exactly where the planned address has it
        assert p.get("multifunction") == c.address.multifunction
    # the first of a full slot's ports says multifunction=on
    assert any(props(devs[f"pci.{f.device.index}"].arg())[1].get("multifunction") == "on" for f in ports)


def test_q35_endpoints_sit_on_their_ports_and_chipset_sata_is_not_emitted():
    t = topology.build(pciplan.plan_text(Q35).plan)
    cfg = qemuargs.build(t)
    for f in t.functions:
        if f.device.tag == "controller" and f.device.type == "sata":
            assert f.address == PciAddress(0, 0, 0x1F, 2)
            assert [x.driver for x in cfg.fixed if x.function is f] == ["ich9-ahci"]
            assert all(d.function is not f for d in cfg.devices)
            continue
        (d,) = [d for d in cfg.devices if d.function is f]
        _, p = props(d.arg())
        assert p["bus"] == ("pcie.0" if f.address.bus == 0 else f"pci.{f.address.bus}")
    assert not any(d.driver == "ich9-ahci" for d in cfg.devices)
    assert cfg.machine == "pc-q35-7.2"
    assert cfg.emulator == "qemu-system-x86_64"


def test_q35_device_models_and_backends():
    cfg = cfg_of(Q35)
    drivers = {d.element.split(" ")[0]: d for d in cfg.devices}
    assert drivers["disk"].driver == "virtio-blk-pci"
    assert drivers["disk"].backends == [("-blockdev", "driver=null-co,node-name=drive-virtio-disk0")]
    assert "drive=drive-virtio-disk0" in drivers["disk"].arg()
    assert drivers["interface"].driver == "virtio-net-pci"
    assert drivers["video"].driver == "qxl-vga"          # the primary qxl
    usb = by_id(cfg)["usb"]
    assert usb.driver == "qemu-xhci" and "p2=15" in usb.arg() and "p3=15" in usb.arg()
    # the host device is a PCIe endpoint on q35: the e1000e stand-in, at its planned port
    hd = by_id(cfg)["hostdev0"]
    assert (hd.driver, hd.stand_in_for) == ("e1000e", "vfio-pci")
    assert hd.function.express and hd.address.bus != 0


def test_pc_bridges_fixed_functions_and_conventional_standin():
    t = topology.build(pciplan.plan_text(PC).plan)
    cfg = qemuargs.build(t)
    devs = by_id(cfg)
    assert cfg.bus_names[0] == "pci.0"
    br = devs["pci.1"]
    assert br.driver == "pci-bridge"
    _, p = props(br.arg())
    assert p["chassis_nr"] == "1" and p["bus"] == "pci.0"
    # the user's address behind the bridge
    (nic,) = [d for d in cfg.devices if d.driver == "rtl8139"]
    assert props(nic.arg())[1]["bus"] == "pci.1" and props(nic.arg())[1]["addr"] == "0x5"
    # the IDE controller at 00:01.1 and PIIX3 USB at 00:01.2 are the chipset's
    fixed = {(str(f.address), f.driver) for f in cfg.fixed}
    assert ("0000:00:01.1", "piix3-ide") in fixed
    assert ("0000:00:01.2", "piix3-usb-uhci") in fixed
    assert cfg.machine_options == {"usb": "on"}
    assert "pc-i440fx-7.2,usb=on" in cfg.argv()
    assert not any(d.driver in ("piix3-ide", "piix3-usb-uhci") for d in cfg.devices)
    # a host device on a conventional root bus: the e1000 stand-in
    assert (devs["hostdev0"].driver, devs["hostdev0"].stand_in_for) == ("e1000", "vfio-pci")
    # AC97 needs an audio backend
    (ac97,) = [d for d in cfg.devices if d.driver == "AC97"]
    assert "audiodev=audio0" in ac97.arg() and ("-audiodev", "none,id=audio0") in cfg.objects
    assert [d.driver for d in cfg.devices if d.element.startswith("video")] == ["cirrus-vga"]


def test_bridges_come_before_what_plugs_into_them():
    xml = dom("x86_64", "q35", """
      <controller type='pci' index='0' model='pcie-root'/>
      <controller type='pci' index='1' model='pcie-root-port'/>
      <controller type='pci' index='2' model='pcie-switch-upstream-port'/>
      <controller type='pci' index='3' model='pcie-switch-downstream-port'/>
      <controller type='pci' index='4' model='pcie-switch-downstream-port'/>
      <controller type='pci' index='5' model='pcie-to-pci-bridge'/>
      <controller type='pci' index='6' model='pci-bridge'/>
      <controller type='pci' index='7' model='dmi-to-pci-bridge'/>
    """ + NET.format(n=1, m="virtio") + NET.format(n=2, m="e1000"))
    cfg = cfg_of(xml)
    seen: set[str] = {"pcie.0"}
    for opt, val in cfg.device_options():
        if opt != "-device":
            continue
        _, p = props(val)
        assert p.get("bus") in seen, f"{val} before its bus"
        if "id" in p:
            seen.add(p["id"])
    drivers = {d.id: d.driver for d in cfg.devices}
    assert drivers["pci.2"] == "x3130-upstream"
    assert drivers["pci.3"] == drivers["pci.4"] == "xio3130-downstream"
    assert drivers["pci.5"] == "pcie-pci-bridge"
    assert drivers["pci.6"] == "pci-bridge"
    assert drivers["pci.7"] == "i82801b11-bridge"
    down = by_id(cfg)["pci.4"]
    _, p = props(down.arg())
    assert p["port"] == f"0x{down.address.slot:x}" and p["chassis"] == "4"


def test_expander_bus_nr_and_numa_node():
    xml = dom("x86_64", "pc", """
      <controller type='pci' index='0' model='pci-root'/>
      <controller type='pci' index='1' model='pci-expander-bus'>
        <target busNr='252'><node>1</node></target></controller>
      <interface type='user'><mac address='52:54:00:00:00:01'/><model type='e1000'/>
        <address type='pci' domain='0x0000' bus='0x01' slot='0x02' function='0x0'/></interface>
    """, "<cpu><numa><cell id='0' cpus='0' memory='524288'/><cell id='1' cpus='1' memory='524288'/>"
         "</numa></cpu><vcpu>2</vcpu>")
    cfg = cfg_of(xml)
    pxb = by_id(cfg)["pci.1"]
    assert pxb.driver == "pxb"
    _, p = props(pxb.arg())
    assert p["bus_nr"] == "252" and p["numa_node"] == "1"
    assert ("-numa", "node,nodeid=1,memdev=ram-node1") in cfg.objects
    assert cfg.memory == "256M"
    (nic,) = [d for d in cfg.devices if d.driver == "e1000"]
    assert props(nic.arg())[1]["bus"] == "pci.1"


def test_pseries_phb_and_its_bus_name():
    xml = dom("ppc64", "pseries", """
      <controller type='pci' index='0' model='pci-root'/>
      <controller type='pci' index='1' model='pci-root'><target index='1'/></controller>
      <interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>
        <address type='pci' domain='0x0000' bus='0x01' slot='0x03' function='0x0'/></interface>
    """)
    cfg = cfg_of(xml)
    phb = by_id(cfg)["pci.1"]
    assert phb.arg() == "spapr-pci-host-bridge,index=1,id=pci.1"
    assert phb.function is None and phb.provides == 1
    assert cfg.bus_names == {0: "pci.0", 1: "pci.1.0"}
    (nic,) = [d for d in cfg.devices if d.driver == "virtio-net-pci"]
    assert props(nic.arg())[1]["bus"] == "pci.1.0"
    # the PHB comes first
    assert cfg.devices[0] is phb
    assert cfg.emulator == "qemu-system-ppc64"


def test_aarch64_virt_video_and_cpu():
    xml = dom("aarch64", "virt", """
      <video><model type='virtio' primary='yes'/></video>
      <controller type='usb' model='qemu-xhci'/>
    """)
    cfg = cfg_of(xml)
    assert cfg.cpu == "cortex-a57" and cfg.emulator == "qemu-system-aarch64"
    assert cfg.bus_names[0] == "pcie.0"
    # qemu-system-aarch64 has no virtio-vga
    assert [d.driver for d in cfg.devices if d.element.startswith("video")] == ["virtio-gpu-pci"]


def test_transitional_models():
    xml = dom("x86_64", "q35", """
      <disk type='file' device='disk' model='virtio-transitional'><source file='/a'/>
        <target dev='vda' bus='virtio'/></disk>
      <interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio-non-transitional'/></interface>
      <rng model='virtio-transitional'><backend model='random'>/dev/urandom</backend></rng>
      <memballoon model='virtio-non-transitional'/>
    """)
    drivers = sorted(d.driver for d in cfg_of(xml).devices if not d.driver.startswith(("pcie", "pci-", "i828")))
    assert "virtio-blk-pci-transitional" in drivers
    assert "virtio-net-pci-non-transitional" in drivers
    assert "virtio-rng-pci-transitional" in drivers
    assert "virtio-balloon-pci-non-transitional" in drivers


def test_primary_video_first_and_ehci_master_first():
    xml = dom("x86_64", "pc", """
      <controller type='usb' index='0' model='ich9-uhci1'><master startport='0'/></controller>
      <controller type='usb' index='0' model='ich9-ehci1'/>
      <video><model type='qxl' heads='1'/></video>
      <video><model type='qxl' primary='yes'/></video>
    """)
    cfg = cfg_of(xml)
    order = [d.driver for d in cfg.devices]
    assert order.index("ich9-usb-ehci1") < order.index("ich9-usb-uhci1")
    assert order.index("qxl-vga") < order.index("qxl")
    (uhci,) = [d for d in cfg.devices if d.driver == "ich9-usb-uhci1"]
    _, p = props(uhci.arg())
    assert p["masterbus"] == "usb.0" and p["firstport"] == "0"
    assert by_id(cfg)["usb"].driver == "ich9-usb-ehci1"


def test_documented_standins():
    xml = dom("x86_64", "q35", """
      <vsock model='virtio'><cid auto='yes'/></vsock>
      <filesystem type='mount'><driver type='virtiofs'/><source dir='/srv'/><target dir='srv'/></filesystem>
      <shmem name='s'><model type='ivshmem-doorbell'/><server path='/tmp/s'/></shmem>
      <interface type='user'><mac address='52:54:00:00:00:01'/><model type='igb'/></interface>
      <input type='passthrough' bus='virtio'><source evdev='/dev/input/event1'/></input>
    """, "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>")
    cfg = cfg_of(xml)
    got = {(d.element.split(" ")[0], d.driver, d.stand_in_for) for d in cfg.devices
           if d.stand_in_for}
    assert ("vsock", "virtio-rng-pci", "vhost-vsock-pci") in got
    assert ("filesystem", "virtio-9p-pci", "vhost-user-fs-pci") in got
    assert ("shmem", "ivshmem-plain", "ivshmem-doorbell") in got
    assert ("interface", "e1000e", "igb") in got           # igb is PCIe; QEMU 7.2 has none
    assert ("input", "virtio-keyboard-pci", "virtio-input-host-pci") in got
    (fs,) = [d for d in cfg.devices if d.element.startswith("filesystem")]
    assert fs.backends == [("-fsdev", "synth,id=fsdev-fs0")]


def test_s390x_zpci_goes_before_its_device():
    xml = dom("s390x", "s390-ccw-virtio", """
      <hostdev mode='subsystem' type='pci' managed='yes'>
        <source><address domain='0x0000' bus='0x0a' slot='0x00' function='0x0'/></source>
        <address type='pci'><zpci uid='0x0007' fid='0x00000009'/></address></hostdev>
    """)
    cfg = cfg_of(xml)
    (hd,) = [d for d in cfg.devices if d.id == "hostdev0"]
    assert hd.driver == "virtio-net-pci"              # s390x has no emulated NICs
    assert hd.backends == [("-device", "zpci,uid=7,fid=9,target=hostdev0,id=zpci7")]
    opts = cfg.device_options()
    assert opts.index(("-device", "zpci,uid=7,fid=9,target=hostdev0,id=zpci7")) < opts.index(("-device", hd.arg()))


def test_availability_table():
    assert qemuargs.available("virtio-vga", "x86_64")
    assert not qemuargs.available("virtio-vga", "aarch64")
    assert not qemuargs.available("e1000", "s390x")
    assert qemuargs.available("virtio-net-pci", "s390x")
    assert not qemuargs.available("igb", "x86_64")


# ---- every planned function exactly once, over the corpus ---------------------------------------
def _corpus_cases():
    d = corpus_dir()
    return sorted((d / "accept").glob("*.in.xml")) if d else []


@pytest.mark.skipif(corpus_dir() is None, reason=CORPUS_ABSENT)
def test_corpus_every_function_once_at_its_address():
    checked = 0
    for path in _corpus_cases():
        t = topology.build(pciplan.plan_text(path.read_bytes()).plan)
        cfg = qemuargs.build(t)
        ids = [d.id for d in cfg.devices]
        assert len(ids) == len(set(ids)), path.name
        placed = {id(d.function): d for d in cfg.devices if d.function is not None}
        fixed = {id(f.function) for f in cfg.fixed}
        for f in t.functions:
            if f.device.tag == "console":
                continue            # libvirt's alias of the serial device at the same address
            assert (id(f) in placed) != (id(f) in fixed), (path.name, f.device.describe())
            if id(f) in placed:
                _, p = props(placed[id(f)].arg())
                assert p["bus"] == cfg.bus_names[f.address.bus], path.name
                m = re.fullmatch(r"0x([0-9a-f]+)(?:\.0x([0-7]))?", p["addr"])
                assert m and int(m[1], 16) == f.address.slot and int(m[2] or "0", 16) == f.address.function
            checked += 1
    assert checked > 1000


# ---- the command ------------------------------------------------------------------------------
def test_cli_formats(tmp_path):
    f = tmp_path / "q35.xml"
    f.write_text(Q35)
    r = CliRunner().invoke(main, ["qemu-args", str(f)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert all(ln.startswith(("-device ", "-blockdev ")) for ln in lines)
    assert "-device qxl-vga,id=video0,bus=pcie.0,addr=0x1" in lines

    r = CliRunner().invoke(main, ["qemu-args", "--format", "shell", str(f)])
    assert r.exit_code == 0
    argv = shlex.split(r.output.replace("\\\n", " "))
    assert argv[:7] == ["qemu-system-x86_64", "-machine", "pc-q35-7.2", "-accel", "tcg", "-nodefaults",
                        "-device"]

    r = CliRunner().invoke(main, ["qemu-args", "--format", "json", str(f)])
    assert r.exit_code == 0
    data = json.loads(r.output)
    assert data["schema"] == "qemu-args-v1"
    assert data["argv"] == argv
    assert {b["name"] for b in data["buses"]} >= {"pcie.0", "pci.1"}
    dev = next(d for d in data["devices"] if d["id"] == "hostdev0")
    assert dev["stand_in_for"] == "vfio-pci" and dev["driver"] == "e1000e"
    assert dev["address"].startswith("0000:0") and dev["bus"] == dev["props"]["bus"]
    assert data["fixed"] == [{"address": "0000:00:1f.2", "driver": "ich9-ahci",
                              "element": "controller type='sata' index='0'"}]


def test_cli_errors(tmp_path):
    r = CliRunner().invoke(main, ["qemu-args", str(tmp_path / "missing.xml")])
    assert r.exit_code == 2
    bad = tmp_path / "bad.xml"
    bad.write_text(dom("x86_64", "pc", """
      <controller type='pci' index='1' model='pcie-root-port'/>"""))
    r = CliRunner().invoke(main, ["qemu-args", str(bad)])
    assert r.exit_code == 1 and r.output.startswith("error: ")
