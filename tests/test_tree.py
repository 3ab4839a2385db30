"""``pciplan tree``: the PCI tree as the guest sees it (text, JSON schema tree-v1, dot, svg).

Real documents: every accepted case of the libvirt 9.0 conformance corpus (its
libvirt outputs and its unplanned inputs).  Hand-written domains check facts
that follow from the PCI rules: where a device sits, PCI vs PCIe, hot-plug.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import pciplan
from pciplan import hostcaps, schemas, topology, tree
from pciplan.cli import main
from support.paths import CORPUS_ABSENT, corpus_dir

NO_JSONSCHEMA = "jsonschema is not installed (pip install -e '.[test]')"

CORPUS = corpus_dir()
ACCEPT = sorted((CORPUS / "accept").glob("*.xml")) if CORPUS else []
OUTPUTS = [p for p in ACCEPT if p.name.endswith(".out.xml")]
NO_DOT = "Graphviz `dot` is not installed (apt-get install graphviz)"


def domain(devices: str, arch: str = "x86_64", machine: str = "q35", name: str = "t", features: str = "") -> str:
    virt = "kvm" if hostcaps.this_host().kvm_runs(arch) else "qemu"  # (as the host takes it)
    return (f"<domain type='{virt}'><name>{name}</name><memory>1048576</memory>"
            f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os>{features}"
            f"<devices>{devices}</devices></domain>")


def addr(bus: int, slot: int, function: int = 0, extra: str = "") -> str:
    return (f"<address type='pci' domain='0x0000' bus='{bus:#04x}' slot='{slot:#04x}' "
            f"function='{function:#x}'{extra}/>")


def view(xml: str | bytes, name: str | None = "t") -> dict:
    r = pciplan.plan_text(xml)
    return tree.to_data(topology.build(r.plan), name=name)


def functions(data: dict) -> list[dict]:
    out: list[dict] = []

    def walk(bus: dict) -> None:
        for f in bus["functions"]:
            out.append(f)
            if f["child"] is not None:
                walk(f["child"])

    for root in data["roots"]:
        walk(root)
    return out


def buses(data: dict) -> list[dict]:
    out: list[dict] = []

    def walk(bus: dict) -> None:
        out.append(bus)
        for f in bus["functions"]:
            if f["child"] is not None:
                walk(f["child"])

    for root in data["roots"]:
        walk(root)
    return out


def by_label(data: dict, text: str) -> dict:
    hits = [f for f in functions(data) if text in f["label"]]
    assert len(hits) == 1, (text, [f["label"] for f in functions(data)])
    return hits[0]


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema", reason=NO_JSONSCHEMA)
    schema = schemas.load("tree-v1")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def run(*args: str, input: str | bytes | None = None, env: dict | None = None):
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


# ---- hand-written domains ------------------------------------------------------------------------
VIRTIO_Q35 = domain(
    "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>"
    "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>"
    "<controller type='usb' model='none'/><memballoon model='none'/>")

LEGACY_Q35 = domain(
    "<controller type='pci' index='0' model='pcie-root'/>"
    f"<controller type='pci' index='1' model='pcie-root-port'>{addr(0, 2)}</controller>"
    f"<controller type='pci' index='2' model='pcie-to-pci-bridge'>{addr(1, 0)}</controller>"
    f"<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>{addr(2, 1)}</interface>"
    f"<interface type='user'><mac address='52:54:00:00:00:02'/><model type='e1000e'/>{addr(2, 2)}</interface>"
    f"<interface type='user'><mac address='52:54:00:00:00:03'/><model type='virtio'/>{addr(0, 5)}</interface>"
    "<controller type='usb' model='none'/><memballoon model='none'/>")

PC_DEVICES = ("<interface type='user'><mac address='52:54:00:00:00:01'/><model type='e1000'/></interface>"
              "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>")
PC = domain(PC_DEVICES, machine="pc", features="<features><acpi/></features>")


def test_q35_virtio_devices_get_root_ports(validator):
    data = view(VIRTIO_Q35)
    assert not list(validator.iter_errors(data))
    assert data["domain"]["express"] and data["domain"]["family"] == "q35"
    assert data["planned"] is False
    [root] = data["roots"]
    assert root["model"] == "pcie-root" and root["express"] and not root["hotplug"]
    for text in ("disk vda", "interface virtio 52:54:00:00:00:01"):
        fn = by_label(data, text)
        # behind a pcie-root-port, at slot 0: PCIe and hot-pluggable
        assert fn["slot"] == 0 and fn["bus"] != 0
        assert fn["express"] and fn["hotpluggable"] and not fn["integrated"]
        assert fn["assigned"] and not fn["added"]
        port = next(f for f in root["functions"] if f["child"] and f["child"]["index"] == fn["bus"])
        assert port["element"] == "controller" and port["child"]["model"] == "pcie-root-port"
        assert port["added"] and not port["hotpluggable"]
    sata = by_label(data, "controller sata")
    assert sata["address"] == "0000:00:1f.2" and sata["integrated"] and not sata["hotpluggable"]
    # libvirt leaves an empty root port for hot-plug when it adds ports
    assert data["summary"]["hotplug_free_slots"] >= 1
    assert data["summary"]["bus_numbers"]["used"] == len(buses(data))
    assert {c["address"] for c in data["chipset"]} == {"0000:00:00.0", "0000:00:1f.0", "0000:00:1f.3"}
    assert 0x1F not in root["free_slots"]


def test_pcie_devices_on_a_pci_bridge_are_conventional_pci(validator):
    data = view(LEGACY_Q35)
    assert not list(validator.iter_errors(data))
    bridge = by_label(data, "pcie-to-pci-bridge")
    assert bridge["express"]  # the bridge itself is a PCIe function
    assert bridge["child"]["express"] is False and bridge["child"]["hotplug"]
    for mac in ("01", "02"):
        fn = by_label(data, f"52:54:00:00:00:{mac}")
        assert fn["bus"] == 2 and fn["express"] is False and fn["hotpluggable"]
    on_root = by_label(data, "52:54:00:00:00:03")
    assert on_root["address"] == "0000:00:05.0"
    assert on_root["express"] and on_root["integrated"] and not on_root["hotpluggable"]
    # a conventional bridge always forwards IO, so does the port above it
    assert data["summary"]["io_windows"]["used"] == 2
    assert {b["index"] for b in buses(data) if b["io_window"]} == {1, 2}


def test_pc_is_conventional_pci_with_hotplug_on_the_root():
    data = view(PC)
    assert data["domain"]["express"] is False
    [root] = data["roots"]
    assert root["model"] == "pci-root" and root["hotplug"] and not root["express"]
    assert [b["index"] for b in buses(data)] == [0]
    for f in functions(data):
        assert f["express"] is False and f["bus"] == 0
    nic = by_label(data, "interface e1000")
    assert nic["hotpluggable"]
    usb = by_label(data, "controller usb 0 piix3-uhci")
    assert usb["address"] == "0000:00:01.2" and not usb["hotpluggable"]  # PIIX3 chipset slot
    assert 1 not in root["free_slots"]  # the ISA bridge holds slot 1
    assert data["summary"]["io_windows"]["used"] == 0
    assert data["summary"]["hotplug_free_slots"] == len(root["free_slots"])


def test_pc_without_acpi_has_no_hotplug_on_the_root():
    # QEMU hot-plugs into pc's pci.0 through ACPI only ("Bus 'pci.0' does not support
    # hotplugging" without it): its devices cannot be unplugged, a pci-bridge's can
    data = view(domain(PC_DEVICES + "<controller type='pci' index='1' model='pci-bridge'/>", machine="pc"))
    root, bridge = buses(data)
    assert root["index"] == 0 and not root["hotplug"]
    assert bridge["model"] == "pci-bridge" and bridge["hotplug"]
    assert not by_label(data, "interface e1000")["hotpluggable"]
    assert data["summary"]["hotplug_free_slots"] == len(bridge["free_slots"])


def test_hotplug_off_port_is_not_hot_pluggable():
    data = view(domain(
        "<controller type='pci' index='1' model='pcie-root-port'><target hotplug='off'/></controller>"
        "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>"
        "<controller type='usb' model='none'/><memballoon model='none'/>"))
    disk = by_label(data, "disk vda")
    assert disk["bus"] == 1 and not disk["hotpluggable"] and disk["express"]
    assert "hotplug off" in by_label(data, "pcie-root-port")["label"]


def test_pseries_has_one_root_per_phb():
    data = view(domain(
        "<controller type='pci' index='0' model='pci-root'/>"
        "<controller type='pci' index='1' model='pci-root'><target index='1'/></controller>"
        f"<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>{addr(1, 1)}</interface>",
        arch="ppc64", machine="pseries"))
    assert [r["index"] for r in data["roots"]] == [0, 1]
    nic = by_label(data, "52:54:00:00:00:01")
    assert nic["bus"] == 1 and nic["express"] is False and nic["hotpluggable"]


def test_planned_document_marks_nothing():
    planned = pciplan.plan(VIRTIO_Q35)
    data = view(planned)
    assert data["planned"] is True
    assert not any(f["added"] or f["assigned"] for f in functions(data))
    # and it is the same tree as the unplanned one, marks aside
    strip = [{k: v for k, v in f.items() if k not in ("added", "assigned", "line", "child")}
             for f in functions(view(VIRTIO_Q35))]
    assert strip == [{k: v for k, v in f.items() if k not in ("added", "assigned", "line", "child")}
                     for f in functions(data)]


# ---- renderers -------------------------------------------------------------------------------------
def test_text_lines_name_every_function_once():
    data = view(LEGACY_Q35)
    text = tree.to_text(data)
    for f in functions(data):
        assert text.count(f["address"] + "  ") == 1, f["address"]
        assert f["label"] in text
    assert "Summary: 3 of 256 bus numbers" in text
    assert "2 IO windows (8 KiB) of the 64 KiB IO space (15 fit)" in text
    assert "+added" in text and "*placed" in text
    assert "bus 02: PCI, hot-plug" in text


def test_ascii_text_is_ascii():
    text = tree.to_text(view(LEGACY_Q35), ascii=True)
    assert text.isascii()
    assert "|-- " in text and "`-- " in text
    assert not tree.to_text(view(LEGACY_Q35)).isascii()


def test_dot_has_a_node_per_function():
    data = view(LEGACY_Q35)
    dot = tree.to_dot(data)
    assert dot.startswith("digraph pci {") and dot.rstrip().endswith("}")
    for f in functions(data):
        assert f"  {tree.node_id(f['address'])} [" in dot
        assert f"-> {tree.node_id(f['address'])};" in dot


# ---- CLI -------------------------------------------------------------------------------------------
def test_cli_text_is_plain_when_piped(tmp_path: Path):
    p = tmp_path / "g.xml"
    p.write_text(LEGACY_Q35)
    r = run("tree", str(p))
    assert r.exit_code == 0
    assert "\x1b[" not in r.stdout
    assert r.stdout == tree.to_text(view(LEGACY_Q35, name="t"))
    coloured = run("tree", "--color", str(p))
    assert coloured.exit_code == 0 and "\x1b[" in coloured.stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured.stdout) == r.stdout


def test_cli_reads_stdin_and_ascii():
    r = run("tree", "--ascii", "-", input=LEGACY_Q35)
    assert r.exit_code == 0 and r.stdout.isascii() and "0000:02:01.0" in r.stdout


def test_cli_json_follows_the_schema(tmp_path: Path, validator):
    p = tmp_path / "g.xml"
    p.write_text(VIRTIO_Q35)
    r = run("tree", "--format", "json", str(p))
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert not list(validator.iter_errors(data))
    assert data["format"] == "pciplan-tree" and data["version"] == 1 and data["domain"]["name"] == "t"


def test_cli_dot(tmp_path: Path):
    p = tmp_path / "g.xml"
    p.write_text(VIRTIO_Q35)
    r = run("tree", "-f", "dot", str(p))
    assert r.exit_code == 0 and r.stdout.startswith("digraph pci {")


@pytest.mark.skipif(shutil.which("dot") is None, reason=NO_DOT)
def test_cli_svg_has_a_node_per_device(tmp_path: Path):
    p = tmp_path / "g.xml"
    p.write_text(LEGACY_Q35)
    r = run("tree", "--format", "svg", str(p))
    assert r.exit_code == 0
    root = ET.fromstring(r.stdout_bytes)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    ns = {"s": "http://www.w3.org/2000/svg"}
    titles = {g.findtext("s:title", namespaces=ns) for g in root.iter("{http://www.w3.org/2000/svg}g")
              if g.get("class") == "node"}
    data = view(LEGACY_Q35)
    for f in functions(data):
        assert tree.node_id(f["address"]) in titles
    assert "bus_0" in titles


def test_cli_svg_without_dot_is_exit_2(tmp_path: Path):
    p = tmp_path / "g.xml"
    p.write_text(VIRTIO_Q35)
    r = run("tree", "--format", "svg", str(p), env={"PCIPLAN_DOT": str(tmp_path / "no-such-dot")})
    assert r.exit_code == 2
    assert "dot" in r.stderr and "graphviz" in r.stderr.lower()
    assert r.stdout == ""


def test_cli_exit_statuses(tmp_path: Path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<domain><unclosed></domain>")
    r = run("tree", str(bad))
    assert r.exit_code == 2 and r.stderr.startswith("error: ")
    notdom = tmp_path / "n.xml"
    notdom.write_text("<network/>")
    assert run("tree", str(notdom)).exit_code == 2
    assert run("tree", str(tmp_path / "missing.xml")).exit_code == 2
    refused = tmp_path / "r.xml"  # two PCI controllers with the same index: libvirt refuses
    refused.write_text(domain("<controller type='pci' index='1' model='pcie-root-port'/>"
                              "<controller type='pci' index='1' model='pcie-root-port'/>"))
    r = run("tree", str(refused))
    assert r.exit_code == 1 and "index '1'" in r.stderr
    assert run("tree", "--format", "png", str(refused)).exit_code == 2


# ---- the conformance corpus ------------------------------------------------------------------------
@pytest.mark.skipif(CORPUS is None, reason=CORPUS_ABSENT)
@pytest.mark.parametrize("case", ACCEPT, ids=lambda p: p.name)
def test_corpus(case: Path, validator):
    data = view(case.read_bytes())
    data = json.loads(json.dumps(data))
    errors = list(validator.iter_errors(data))
    assert not errors, errors[0].message
    r = pciplan.plan_text(case.read_bytes())
    addressed = [d for d in r.plan.domain.devices if d.pci_address is not None]
    fns = functions(data)
    # every PCI function once, each under the bus its address names
    assert sorted(f["address"] for f in fns) == sorted(str(d.pci_address) for d in addressed)
    for b in buses(data):
        for f in b["functions"]:
            assert f["bus"] == b["index"]
            assert f["slot"] not in b["free_slots"]
        assert set(b["hotplug_free_slots"]) <= set(b["free_slots"])
    pci_controllers = [d for d in r.plan.domain.controllers if d.type == "pci"]
    assert data["summary"]["bus_numbers"]["used"] == len(pci_controllers) == len(buses(data))
    if case.name.endswith(".out.xml"):
        assert data["planned"], "a libvirt output needs no planning"
    text = tree.to_text(data)
    dot = tree.to_dot(data)
    for f in fns:
        assert f["address"] in text
        assert tree.node_id(f["address"]) in dot


@pytest.mark.skipif(CORPUS is None, reason=CORPUS_ABSENT)
@pytest.mark.skipif(shutil.which("dot") is None, reason=NO_DOT)
def test_corpus_svg_parses():
    # a few of the biggest outputs through the real binary
    for case in sorted(OUTPUTS, key=lambda p: p.stat().st_size)[-3:]:
        data = view(case.read_bytes())
        from pciplan import graphviz
        root = ET.fromstring(graphviz.render_svg(tree.to_dot(data)))
        nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
        assert len(nodes) >= len(functions(data)) + len(data["roots"])


def test_machine_without_pci():
    data = view(domain("", arch="armv7l", machine="vexpress-a9"))
    assert data["roots"] == [] and data["summary"]["bus_numbers"]["used"] == 0
    assert "(no PCI bus on this machine)" in tree.to_text(data)
    assert tree.to_dot(data).startswith("digraph pci {")


def _tree_process(path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``pciplan tree PATH`` as a program whose stdout is a pipe: its output and its imports."""
    clean = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR")}
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "pciplan", "tree", str(path)],
                       capture_output=True, text=True, env={**clean, **env}, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    return p, names


def test_cli_piped_text_does_without_rich_unless_the_environment_forces_colour(tmp_path: Path):
    """Piped, the tree is plain and rich is not even loaded; FORCE_COLOR (force-color.org)
    and TTY_COMPATIBLE=1 still make rich colour it, as they make rich do everywhere."""
    p = tmp_path / "g.xml"
    p.write_text(LEGACY_Q35)
    plain, names = _tree_process(p, {})
    assert plain.returncode == 0 and plain.stdout == tree.to_text(view(LEGACY_Q35, name="t"))
    assert not any(n == "rich" or n.startswith("rich.") for n in names)
    for env in ({"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}):
        coloured, _ = _tree_process(p, env)
        assert coloured.returncode == 0 and "\x1b[" in coloured.stdout, env
        assert re.sub(r"\x1b\[[0-9;]*m", "", coloured.stdout) == plain.stdout
