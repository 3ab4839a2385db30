"""``pciplan check``: errors (what libvirt refuses) and warnings, with stable codes.

Each hand-written domain triggers one rule, for a reason that follows from the
PCI rules; the corpus gives real documents: every rejected case must be an
error, no accepted case may be one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pciplan import check, hostcaps, schemas
from pciplan.cli import main
from support.paths import CORPUS_ABSENT, corpus_dir

NO_JSONSCHEMA = "jsonschema is not installed (pip install -e '.[test]')"

CORPUS = corpus_dir()
ACCEPT = sorted((CORPUS / "accept").glob("*.xml")) if CORPUS else []
REJECT = sorted((CORPUS / "reject").glob("*.in.xml")) if CORPUS else []

WARNING_CODES = {"PCIE-ON-LEGACY", "VIRTIO-ON-LEGACY", "X86-ONLY-CONTROLLER", "NIC-MODEL", "ENDPOINT-ON-ROOT",
                 "NO-HOTPLUG-SLOT", "IO-SPACE", "BUS-NUMBERS", "MULTIFUNCTION-NO-FUNCTION0",
                 "MULTIFUNCTION-OFF", "MULTIFUNCTION-IMPLICIT"}
ERROR_CODES = {"INVALID-XML", "UNSUPPORTED", "NO-ROOM", "LAYOUT"}


def domain(devices: str, arch: str = "x86_64", machine: str = "q35", defaults: bool = True,
           acpi: bool = True) -> str:
    extra = "<controller type='usb' model='none'/><memballoon model='none'/>" if defaults else ""
    virt = "kvm" if hostcaps.this_host().kvm_runs(arch) else "qemu"  # (as the host takes it)
    # (a pc guest hot-plugs into its root bus through ACPI only: as virt-install writes it)
    features = "<features><acpi/></features>" if acpi and machine == "pc" else ""
    return (f"<domain type='{virt}'><name>t</name><memory>1048576</memory>"
            f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os>{features}"
            f"<devices>{devices}{extra}</devices></domain>")


def addr(bus: int, slot: int, function: int = 0, multifunction: str | None = None) -> str:
    mf = f" multifunction='{multifunction}'" if multifunction else ""
    return (f"<address type='pci' domain='0x0000' bus='{bus:#04x}' slot='{slot:#04x}' "
            f"function='{function:#x}'{mf}/>")


def disk(dev: str, address: str = "", model: str = "") -> str:
    m = f" model='{model}'" if model else ""
    return (f"<disk type='file' device='disk'{m}><source file='/{dev}.img'/>"
            f"<target dev='{dev}' bus='virtio'/>{address}</disk>")


def nic(model: str, mac: str, address: str = "") -> str:
    return f"<interface type='user'><mac address='{mac}'/><model type='{model}'/>{address}</interface>"


def port(index: int, address: str = "", extra: str = "") -> str:
    return f"<controller type='pci' index='{index}' model='pcie-root-port'>{extra}{address}</controller>"


def codes(xml: str) -> list[str]:
    return sorted(f.code for f in check.check(xml).findings)


def findings(xml: str, code: str) -> list[check.Finding]:
    return [f for f in check.check(xml).findings if f.code == code]


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema", reason=NO_JSONSCHEMA)
    schema = schemas.load("check-v1")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


# ---- a clean guest ---------------------------------------------------------------------------------
CLEAN = domain(disk("vda") + nic("virtio", "52:54:00:00:00:01"))


def test_libvirt_default_layout_is_clean():
    # every device on its own root port, one spare port for hot-plug: nothing to say
    report = check.check(CLEAN)
    assert report.findings == [] and report.exit_status() == 0 and report.exit_status(strict=True) == 0


# ---- warnings ----------------------------------------------------------------------------------------
LEGACY = domain(
    "<controller type='pci' index='0' model='pcie-root'/>"
    + port(1, addr(0, 2))
    + f"<controller type='pci' index='2' model='pcie-to-pci-bridge'>{addr(1, 0)}</controller>"
    + nic("virtio", "52:54:00:00:00:01", addr(2, 1))
    + nic("e1000e", "52:54:00:00:00:02", addr(2, 2))
    + nic("e1000", "52:54:00:00:00:03", addr(2, 3))
    + disk("vda", model="virtio-transitional"))


def test_pcie_and_virtio_devices_on_conventional_pci():
    report = check.check(LEGACY)
    by = {f.code: f for f in report.findings}
    assert sorted(by) == ["PCIE-ON-LEGACY", "VIRTIO-ON-LEGACY"]
    v = by["VIRTIO-ON-LEGACY"]
    assert v.severity == "warning" and v.address == "0000:02:01.0" and "52:54:00:00:00:01" in v.element
    assert "transitional" in v.why and "IO" in v.why
    # MSI-X keeps working there: the warning must not claim otherwise
    assert "MSI-X" in v.why and "no MSI" not in v.why
    p = by["PCIE-ON-LEGACY"]
    assert p.address == "0000:02:02.0" and "e1000e" in p.element
    assert "MSI and MSI-X still work" in p.why and "pcie-root-port" in p.fix
    # e1000 is conventional PCI anyway; a virtio-transitional disk is what the user asked for
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 1


def test_the_same_devices_on_a_pc_are_fine():
    # no PCI Express on i440fx: nothing is lost
    pc = domain(nic("virtio", "52:54:00:00:00:01", addr(0, 3)) + nic("e1000e", "52:54:00:00:00:02", addr(0, 4)),
                machine="pc")
    assert codes(pc) == []


def test_x86_only_controllers_on_aarch64():
    xml = domain("<controller type='pci' index='0' model='pcie-root'/>"
                 + port(1, extra="<model name='ioh3420'/>")
                 + "<controller type='pci' index='2' model='pcie-switch-upstream-port'/>"
                 + "<controller type='pci' index='3' model='pcie-switch-downstream-port'/>"
                 + disk("vda"), arch="aarch64", machine="virt")
    found = findings(xml, "X86-ONLY-CONTROLLER")
    names = sorted(f.message.split("(")[1].split(")")[0] for f in found)
    assert names == ["ioh3420", "x3130-upstream", "xio3130-downstream"]
    ioh = next(f for f in found if "ioh3420" in f.message)
    assert "index='1'" in ioh.element and "pcie-root-port" in ioh.fix
    # the same controllers on x86 are what they were made for
    x86 = xml.replace("arch='aarch64' machine='virt'", "arch='x86_64' machine='q35'")
    assert findings(x86, "X86-ONLY-CONTROLLER") == []


def test_nic_models_qemu_has_no_device_for():
    # the libvirt 9.0 daemon defines these guests, and QEMU 7.2 does not start them
    # ("'vlance' is not a valid device model name", "Device 'ne2k_isa' can't go on PCI bus")
    for model, words in (("vlance", "QEMU 7.2 has no NIC device named 'vlance'"),
                         ("e1000-82545EM", "no NIC device named 'e1000-82545EM'"),
                         ("ne2k_isa", "'ne2k_isa' is no PCI device")):
        [f] = findings(domain(nic(model, "52:54:00:00:00:01")), "NIC-MODEL")
        assert words in f.message and f.severity == "warning" and "virtio" in f.fix
    # models libvirt names itself, and QEMU's own names and aliases, start
    for model in ("virtio", "e1000", "E1000", "e1000e", "rtl8139", "e1000-82545em", "e1000-82540em",
                  "virtio-net-pci", "tulip", "vmxnet3"):
        assert findings(domain(nic(model, "52:54:00:00:00:01")), "NIC-MODEL") == [], model
    assert findings(domain(nic("sungem", "52:54:00:00:00:01"), arch="ppc64", machine="pseries"),
                    "NIC-MODEL") == []
    [f] = findings(domain(nic("e1000", "52:54:00:00:00:01"), arch="s390x", machine="s390-ccw-virtio"),
                   "NIC-MODEL")
    assert "'e1000'" in f.message


def test_dmi_to_pci_bridge_on_aarch64():
    xml = domain("<controller type='pci' index='0' model='pcie-root'/>"
                 "<controller type='pci' index='1' model='dmi-to-pci-bridge'/>" + disk("vda"),
                 arch="aarch64", machine="virt")
    [f] = findings(xml, "X86-ONLY-CONTROLLER")
    assert "i82801b11-bridge" in f.message and "pcie-to-pci-bridge" in f.fix


def test_endpoint_on_pcie_root():
    xml = domain(nic("virtio", "52:54:00:00:00:01", addr(0, 5)) + disk("vda"))
    [f] = findings(xml, "ENDPOINT-ON-ROOT")
    assert f.address == "0000:00:05.0" and "hot-plug" in f.why
    # the SATA controller at 00:1f.2 and the primary video at 00:01.0 belong there
    video = domain("<video><model type='vga'/></video>" + disk("vda"))
    assert findings(video, "ENDPOINT-ON-ROOT") == []


def test_no_hotplug_slot_left():
    # every address written: libvirt adds no spare root port
    full = domain("<controller type='pci' index='0' model='pcie-root'/>" + port(1, addr(0, 2))
                  + disk("vda", addr(1, 0)))
    [f] = findings(full, "NO-HOTPLUG-SLOT")
    assert f.element is None and "pcie-root-port" in f.fix
    # one empty root port is enough
    spare = full.replace("</devices>", port(2, addr(0, 3)) + "</devices>")
    assert findings(spare, "NO-HOTPLUG-SLOT") == []
    # on pc the root bus itself takes hot-plugged devices, through ACPI only
    assert findings(domain(disk("vda"), machine="pc"), "NO-HOTPLUG-SLOT") == []
    [f] = findings(domain(disk("vda"), machine="pc", acpi=False), "NO-HOTPLUG-SLOT")
    assert "<features><acpi/>" in f.fix
    bridge = "<controller type='pci' index='1' model='pci-bridge'/>"
    assert findings(domain(disk("vda") + bridge, machine="pc", acpi=False), "NO-HOTPLUG-SLOT") == []


def test_io_space():
    # an empty hot-pluggable root port gets a 4 KiB IO window: 15 fit, 16 do not
    def ports(n: int) -> str:
        return domain("".join(port(i) for i in range(1, n + 1)))
    assert findings(ports(15), "IO-SPACE") == []
    [f] = findings(ports(16), "IO-SPACE")
    assert f.message.startswith("16 bridges/ports") and "64 KiB" in f.message
    # ports with hotplug off and no device need no window
    off = domain("".join(port(i, extra="<target hotplug='off'/>") for i in range(1, 17)) + port(17))
    assert findings(off, "IO-SPACE") == []


def test_bus_numbers():
    # 240 root ports fill slots 01-1e of pcie-root, 8 functions each: 241 buses with the root
    many = domain("".join(port(i) for i in range(1, 241)))
    [f] = findings(many, "BUS-NUMBERS")
    assert f.message == "241 of 256 PCI bus numbers are used"
    assert findings(domain("".join(port(i) for i in range(1, 200))), "BUS-NUMBERS") == []


def test_multifunction_without_function_0():
    xml = domain(disk("vda", addr(0, 5, 1)) + disk("vdb", addr(0, 5, 2)), machine="pc")
    [f] = findings(xml, "MULTIFUNCTION-NO-FUNCTION0")
    assert "0000:00:05" in f.message and f.address == "0000:00:05.1"


def test_multifunction_off_on_a_shared_slot():
    xml = domain(disk("vda", addr(0, 5, 0, "off")) + disk("vdb", addr(0, 5, 1)), machine="pc")
    assert codes(xml) == ["MULTIFUNCTION-OFF"]
    [f] = findings(xml, "MULTIFUNCTION-OFF")
    assert f.address == "0000:00:05.0" and "multifunction='on'" in f.fix


def test_multifunction_implicit():
    xml = domain(disk("vda", addr(0, 5, 0)) + disk("vdb", addr(0, 5, 1)), machine="pc")
    [f] = findings(xml, "MULTIFUNCTION-IMPLICIT")
    assert f.address == "0000:00:05.0" and f.line is not None and "disk 'vda'" in f.element
    explicit = domain(disk("vda", addr(0, 5, 0, "on")) + disk("vdb", addr(0, 5, 1)), machine="pc")
    assert codes(explicit) == []


def test_chipset_slot_counts_as_function_0():
    # PIIX3's USB at 00:01.2 has no function 0 in the XML: the ISA bridge is there
    assert findings(domain(disk("vda"), machine="pc", defaults=False), "MULTIFUNCTION-NO-FUNCTION0") == []


# ---- errors --------------------------------------------------------------------------------------------
def test_plan_errors():
    dup = domain(port(1) + port(1))
    [f] = check.check(dup).findings
    assert (f.code, f.severity) == ("INVALID-XML", "error") and "index '1'" in f.message
    assert check.check(dup).exit_status() == 1
    full = domain("".join(port(i) for i in range(1, 242)))
    assert codes(full) == ["NO-ROOM"]
    # a PIIX3 USB controller anywhere but 00:01.2
    moved = domain(f"<controller type='usb' index='0' model='piix3-uhci'>{addr(0, 1, 3)}</controller>",
                   machine="pc", defaults=False)
    assert codes(moved) == ["LAYOUT"]


def test_input_errors_are_not_findings():
    from pciplan import InputError
    with pytest.raises(InputError):
        check.check("<domain")


# ---- CLI ---------------------------------------------------------------------------------------------
def test_cli_exit_statuses(tmp_path: Path):
    def f(name: str, text: str) -> str:
        p = tmp_path / name
        p.write_text(text)
        return str(p)
    clean, warn, bad = f("c.xml", CLEAN), f("w.xml", LEGACY), f("e.xml", domain(port(1) + port(1)))
    r = run("check", clean)
    assert r.exit_code == 0 and r.stdout == "No problems found.\n"
    assert run("check", "--strict", clean).exit_code == 0
    r = run("check", warn)
    assert r.exit_code == 0 and "warning: VIRTIO-ON-LEGACY:" in r.stdout and "  why: " in r.stdout
    assert r.stdout.rstrip().endswith("0 errors, 2 warnings.")
    assert run("check", "--strict", warn).exit_code == 1
    r = run("check", bad)
    assert r.exit_code == 1 and "error: INVALID-XML:" in r.stdout
    assert run("check", f("x.xml", "not xml")).exit_code == 2
    assert run("check", f("n.xml", "<network/>")).exit_code == 2
    assert run("check", str(tmp_path / "missing.xml")).exit_code == 2
    assert run("check", "-", input=CLEAN).exit_code == 0


def test_cli_json(tmp_path: Path, validator):
    p = tmp_path / "w.xml"
    p.write_text(LEGACY)
    for strict, status in ((False, 0), (True, 1)):
        r = run("check", "--json", *(["--strict"] if strict else []), str(p))
        assert r.exit_code == status
        data = json.loads(r.stdout)
        assert not list(validator.iter_errors(data))
        assert data["exit_status"] == status and data["strict"] is strict
        assert data["warnings"] == 2 and data["errors"] == 0
        assert {x["code"] for x in data["findings"]} == {"VIRTIO-ON-LEGACY", "PCIE-ON-LEGACY"}
    p.write_text(domain(port(1) + port(1)))
    r = run("check", "--json", str(p))
    data = json.loads(r.stdout)
    assert r.exit_code == 1 and not list(validator.iter_errors(data)) and data["planned"] is False


def test_check_changes_nothing(tmp_path: Path):
    p = tmp_path / "g.xml"
    p.write_text(LEGACY)
    run("check", str(p))
    assert p.read_text() == LEGACY


# ---- the conformance corpus ------------------------------------------------------------------------
@pytest.mark.skipif(CORPUS is None, reason=CORPUS_ABSENT)
def test_corpus(validator):
    seen: set[str] = set()
    for case in ACCEPT:
        report = check.check(case.read_bytes())
        assert not report.errors, (case.name, [f.message for f in report.errors])
        data = json.loads(json.dumps(check.to_data(report)))
        assert not list(validator.iter_errors(data)), case.name
        for f in report.findings:
            assert f.code in WARNING_CODES and f.why and f.fix
            seen.add(f.code)
        if case.name.endswith(".out.xml"):
            # libvirt writes multifunction='on' itself
            assert "MULTIFUNCTION-IMPLICIT" not in {f.code for f in report.findings}
    assert {"PCIE-ON-LEGACY", "X86-ONLY-CONTROLLER", "ENDPOINT-ON-ROOT", "IO-SPACE"} <= seen
    for case in REJECT:
        report = check.check(case.read_bytes())
        assert report.errors and report.exit_status() == 1, case.name
        assert {f.code for f in report.errors} <= ERROR_CODES
        data = json.loads(json.dumps(check.to_data(report)))
        assert not list(validator.iter_errors(data)), case.name


# ---- several files at once (a CI job linting a folder of domains) ---------------------------------
REFUSED = domain(disk("vda", addr(0, 3)) + disk("vdb", addr(0, 3)))  # two devices, one address


@pytest.fixture()
def three_files(tmp_path: Path) -> list[str]:
    files = {"clean.xml": CLEAN, "legacy.xml": LEGACY, "refused.xml": REFUSED}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return [str(tmp_path / name) for name in files]


def test_several_files_give_each_report_with_its_file_and_a_total(three_files):
    r = run("check", *three_files)
    singles = [run("check", f) for f in three_files]
    # each file's lines are the one-file output, every line naming the file (the
    # why/fix lines stay indented under their finding); one total at the end
    expected = []
    for f, single in zip(three_files, singles):
        lines = single.output.splitlines()
        body, summary = lines[:-1], lines[-1]
        expected += [ln if ln.startswith("  ") else f"{f}: {ln}" for ln in body]
        expected.append(f"{f}: {summary[0].lower() + summary[1:]}")
    errors = sum(len(check.check(Path(f).read_text()).errors) for f in three_files)
    warnings = sum(len(check.check(Path(f).read_text()).warnings) for f in three_files)
    assert errors >= 1 and warnings >= 1
    assert r.output.splitlines() == expected + [f"3 files: {check.counts(errors, warnings)}."]
    # the status is the worst file's: an error
    assert r.exit_code == 1 == max(s.exit_code for s in singles)


def test_several_files_strict_counts_warnings(three_files):
    clean, legacy, _ = three_files
    assert run("check", clean, legacy).exit_code == 0
    assert run("check", "--strict", clean, legacy).exit_code == 1


def test_a_file_that_is_not_a_domain_does_not_stop_the_others(three_files, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not xml at all")
    missing = str(tmp_path / "missing.xml")
    r = CliRunner().invoke(main, ["check", three_files[0], str(bad), missing, three_files[1]])
    assert r.exit_code == 2
    err = [ln for ln in r.stderr.splitlines()]
    assert len(err) == 2 and err[0].startswith(f"error: {bad}: ") and err[1].startswith(f"error: {missing}: ")
    assert f"{three_files[0]}: no problems found." in r.stdout
    assert f"{three_files[1]}: warning: " in r.stdout
    assert r.stdout.splitlines()[-1].endswith("; 2 not checked (see the errors above).")


def test_several_files_as_json_is_a_list_of_reports(three_files, validator):
    r = run("check", "--json", *three_files)
    data = json.loads(r.output)
    assert [d["file"] for d in data] == three_files
    for d, f in zip(data, three_files):
        validator.validate(d)
        single = json.loads(run("check", "--json", f).output)
        assert "file" not in single
        assert {k: v for k, v in d.items() if k != "file"} == single
    assert r.exit_code == 1
