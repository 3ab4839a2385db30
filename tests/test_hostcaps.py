"""Refusals that depend on the host libvirt runs on: KVM for the guest's arch, swtpm for an
emulated TPM, SEV.  What libvirt 9.0 says on a host without swtpm or SEV is pinned by the
``host-*`` golden cases (made with the real daemon); here, the same domains on other hosts,
and how pciplan learns what this host has."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import pciplan
from pciplan import hostcaps
from pciplan.hostcaps import ANY_HOST, Host, Swtpm

GOLDEN = Path(__file__).resolve().parent / "golden"
WIN11 = (GOLDEN / "host-q35-win11-tpm-crb-emulator.in.xml").read_text()
NO_SWTPM = Swtpm(False, frozenset())
X86_BARE = Host("x86_64", NO_SWTPM, sev=False, spice_tls=False, sgx=False)


def plan(xml: str, host: Host | None = None, **options) -> str:
    return pciplan.plan(xml, pciplan.Options(host=host, **options))


def refusal(xml: str, host: Host, for_the_host: bool = True) -> str:
    """libvirt's message; the error says whether it is for what the host lacks."""
    with pytest.raises(pciplan.PlanError) as raised:
        plan(xml, host)
    assert isinstance(raised.value, pciplan.HostError) == for_the_host, raised.value
    return raised.value.reason


def domain(arch: str, machine: str, devices: str = "", virt: str = "kvm", extra: str = "") -> str:
    return (f"<domain type='{virt}'><name>t</name><memory>524288</memory>"
            f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os>"
            f"<devices>{devices}</devices>{extra}</domain>")


def _asked_afresh(probe):
    """A cached probe's answer, asked again now (and forgotten after, for the other tests)."""
    probe.cache_clear()
    try:
        return probe()
    finally:
        probe.cache_clear()


def tpm(model: str | None, backend: str = "<backend type='emulator'/>") -> str:
    return f"<tpm{f' model={chr(39)}{model}{chr(39)}' if model else ''}>{backend}</tpm>"


# ---- swtpm -------------------------------------------------------------------------------
def test_an_emulated_tpm_needs_swtpm_for_its_version():
    assert refusal(WIN11, X86_BARE) == "TPM version '2.0' is not supported"
    assert "<tpm model='tpm-crb'>" in plan(WIN11, ANY_HOST)
    only_2 = Host("x86_64", Swtpm(True, frozenset({"2.0"})), sev=False)
    assert "<tpm model='tpm-crb'>" in plan(WIN11, only_2)
    # tpm-tis, the x86 default model, defaults to TPM 1.2
    assert refusal(domain("x86_64", "q35", tpm(None)), only_2) == "TPM version '1.2' is not supported"


def test_passthrough_needs_no_swtpm_and_external_needs_it_installed():
    passthrough = domain("x86_64", "q35", tpm("tpm-tis", "<backend type='passthrough'><device path='/dev/tpm0'/>"
                                                         "</backend>"))
    assert "type='passthrough'" in plan(passthrough, X86_BARE)
    external = domain("x86_64", "q35", tpm("tpm-crb", "<backend type='external'><source type='unix' "
                                                      "mode='connect' path='/run/s.sock'/></backend>"))
    assert refusal(external, X86_BARE) == ("The QEMU executable /usr/bin/qemu-system-x86_64 does not "
                                           "support TPM backend type external")
    assert "type='external'" in plan(external, Host("x86_64", Swtpm(True, frozenset()), sev=False))


def test_on_a_host_with_swtpm_the_front_end_checks_follow():
    # (a tpm-crb on aarch64: with swtpm, QEMU's lack of the model is what is left)
    arm = domain("aarch64", "virt", tpm("tpm-crb"), virt="qemu")
    assert refusal(arm, ANY_HOST, for_the_host=False) == \
        "The QEMU executable /usr/bin/qemu-system-aarch64 does not support TPM model tpm-crb"
    assert refusal(arm, Host("x86_64", NO_SWTPM)) == "TPM version '2.0' is not supported"


# ---- KVM ---------------------------------------------------------------------------------
@pytest.mark.parametrize("host_arch, guest_arch, machine, runs", [
    ("x86_64", "x86_64", "q35", True), ("x86_64", "i686", "pc", True),
    ("x86_64", "aarch64", "virt", False), ("x86_64", "s390x", "s390-ccw-virtio", False),
    ("aarch64", "aarch64", "virt", True), ("aarch64", "armv7l", "virt", True),
    ("aarch64", "x86_64", "q35", False), ("ppc64le", "ppc64", "pseries", True),
    ("ppc64le", "ppc64le", "pseries", True), ("s390x", "s390x", "s390-ccw-virtio", True),
])
def test_kvm_runs_the_host_arch_and_its_native_companions(host_arch, guest_arch, machine, runs):
    xml = domain(guest_arch, machine)
    host = Host(host_arch, NO_SWTPM, sev=False)
    if runs:
        assert plan(xml, host).startswith("<domain type='kvm'>")
    else:
        assert refusal(xml, host).endswith("does not support virt type 'kvm'")
    assert plan(domain(guest_arch, machine, virt="qemu"), host)  # TCG runs anywhere
    assert refusal(domain(guest_arch, machine, virt="xen"), host, for_the_host=False) \
        .endswith("does not support virt type 'xen'")  # (and no host runs Xen under QEMU)


# ---- SEV ---------------------------------------------------------------------------------
SEV = "<launchSecurity type='sev'><policy>0x0003</policy></launchSecurity>"


def test_sev_needs_an_x86_guest_on_a_host_that_runs_it():
    q35 = domain("x86_64", "q35", extra=SEV)
    assert refusal(q35, X86_BARE) == "SEV launch security is not supported with this QEMU binary"
    assert "<launchSecurity type='sev'>" in plan(q35, Host("x86_64", NO_SWTPM, sev=True))
    # (no QEMU but x86's has SEV: refused on any host)
    assert refusal(domain("aarch64", "virt", virt="qemu", extra=SEV), ANY_HOST, for_the_host=False) == \
        "SEV launch security is not supported with this QEMU binary"


def test_s390_protected_virtualization_needs_an_s390x_host():
    pv = domain("s390x", "s390-ccw-virtio", virt="qemu", extra="<launchSecurity type='s390-pv'/>")
    assert refusal(pv, X86_BARE) == "S390 PV launch security is not supported with this QEMU binary"
    assert plan(pv, Host("s390x", NO_SWTPM, sev=False))
    x86 = domain("x86_64", "q35", extra="<launchSecurity type='s390-pv'/>")
    assert refusal(x86, ANY_HOST, for_the_host=False) == \
        "S390 PV launch security is not supported with this QEMU binary"


# ---- SPICE TLS ---------------------------------------------------------------------------
def test_a_spice_tls_port_needs_tls_turned_on_in_qemu_conf():
    xml = domain("x86_64", "q35", "<graphics type='spice' port='5900' tlsPort='5901' autoport='no'/>")
    assert refusal(xml, X86_BARE) == "spice TLS port set in XML configuration, but TLS is disabled in qemu.conf"
    assert "tlsPort='5901'" in plan(xml, Host("x86_64", NO_SWTPM, sev=False, spice_tls=True))
    assert "tlsPort='5901'" in plan(xml, ANY_HOST)


@pytest.mark.parametrize("conf, on", [
    ("spice_tls = 1\n", True), ("#spice_tls = 1\n", False), ("spice_tls = 0\n", False),
    ("spice_tls=1\nspice_tls = 0\n", False), ("vnc_tls = 1\n", False), (None, False),
])
def test_qemu_conf_is_read_as_libvirt_reads_spice_tls(tmp_path, monkeypatch, conf, on):
    path = tmp_path / "qemu.conf"
    if conf is not None:
        path.write_text(conf)
    monkeypatch.setattr(hostcaps, "QEMU_CONF", str(path))
    assert _asked_afresh(hostcaps.qemu_conf_spice_tls) is on


# ---- SGX ---------------------------------------------------------------------------------
def test_an_sgx_epc_needs_a_cpu_that_offers_sgx_to_guests():
    xml = (GOLDEN / "host-q35-sgx-epc.in.xml").read_text()
    assert refusal(xml, X86_BARE) == "sgx epc isn't supported by this QEMU binary"
    assert "<memory model='sgx-epc'>" in plan(xml, Host("x86_64", NO_SWTPM, sgx=True))
    arm = (GOLDEN / "host-aarch64-sgx-epc.in.xml").read_text()  # (no QEMU but x86's has SGX)
    assert refusal(arm, ANY_HOST, for_the_host=False) == "sgx epc isn't supported by this QEMU binary"


# ---- the emulator ------------------------------------------------------------------------
def test_an_emulator_that_is_not_installed_is_refused_where_the_arch_has_its_own():
    rhel = (GOLDEN / "host-q35-emulator-rhel-qemu-kvm.in.xml").read_text()
    debian = Host("x86_64", NO_SWTPM, installed={"/usr/bin/qemu-system-x86_64"}.__contains__)
    assert refusal(rhel, debian) == "Cannot check QEMU binary /usr/libexec/qemu-kvm: No such file or directory"
    rhel_host = Host("x86_64", NO_SWTPM, installed={"/usr/libexec/qemu-kvm"}.__contains__)
    assert refusal(rhel, rhel_host, for_the_host=False).startswith("Emulator '/usr/libexec/qemu-kvm' does not "
                                                                    "support machine type")  # (QEMU 7.2's names)
    no_qemu = Host("x86_64", NO_SWTPM, installed=set().__contains__)  # (a machine that cannot tell)
    assert refusal(rhel, no_qemu, for_the_host=False).startswith("Emulator '/usr/libexec/qemu-kvm'")
    q35 = rhel.replace("pc-q35-rhel9.2.0", "q35")
    assert plan(q35, ANY_HOST) and plan(q35, no_qemu) and plan(q35, rhel_host)


# ---- what the default asks -----------------------------------------------------------------
def test_without_probing_the_host_pciplan_plans_as_on_a_host_that_has_everything():
    assert "<tpm model='tpm-crb'>" in pciplan.plan(WIN11, pciplan.Options(probe_host=False))
    arm = domain("aarch64", "virt", "<controller type='usb' model='qemu-xhci'/>")
    assert pciplan.plan(arm, pciplan.Options(probe_host=False)).startswith("<domain type='kvm'>")
    sev = domain("x86_64", "q35", extra=SEV)
    assert "<launchSecurity type='sev'>" in pciplan.plan(sev, pciplan.Options(probe_host=False))


def test_this_host_is_the_machine_the_planner_runs_on():
    host = hostcaps.this_host()
    assert host.arch == hostcaps._UNAME.get(os.uname().machine, os.uname().machine)
    # (each asked when a domain needs it)
    assert host.swtpm is None and host.sev is None and host.spice_tls is None and host.sgx is None
    assert host.kvm_runs(host.arch)


def _fake_programs(tmp_path: Path, setup_script: str | None) -> str:
    for name in hostcaps.SWTPM_PROGRAMS:
        if name == "swtpm_setup" and setup_script is None:
            continue
        p = tmp_path / name
        p.write_text(setup_script if name == "swtpm_setup" else "#!/bin/sh\nexit 0\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(tmp_path)


@pytest.mark.parametrize("script, expected", [
    ('#!/bin/sh\necho \'{ "type": "swtpm_setup", "features": [ "tpm-1.2", "tpm-2.0", '
     '"cmdarg-keyfile-fd" ], "version": "0.7.1" }\'\n', Swtpm(True, frozenset({"1.2", "2.0"}))),
    ('#!/bin/sh\necho \'{ "type": "swtpm_setup", "features": [ "tpm-2.0" ] }\'\n',
     Swtpm(True, frozenset({"2.0"}))),
    ("#!/bin/sh\nexit 3\n", Swtpm(True, frozenset())),
    ("#!/bin/sh\necho not json\n", Swtpm(True, frozenset())),
    (None, NO_SWTPM),
])
def test_the_installed_swtpm_is_asked_as_libvirt_asks_it(tmp_path, monkeypatch, script, expected):
    monkeypatch.setenv("PATH", _fake_programs(tmp_path, script))
    monkeypatch.setattr(hostcaps, "DAEMON_PATH", "")
    assert _asked_afresh(hostcaps.installed_swtpm) == expected


@pytest.mark.parametrize("value", ["N\n", "0\n"])
def test_kvm_without_sev_turned_on_runs_no_sev_guest(tmp_path, monkeypatch, value):
    param = tmp_path / "sev"
    param.write_text(value)
    monkeypatch.setattr(hostcaps, "SEV_PARAMETER", str(param))
    assert _asked_afresh(hostcaps.kvm_sev) is False


# ---- the command ---------------------------------------------------------------------------
def _cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "pciplan"
    return subprocess.run([str(script), *args], input=stdin, capture_output=True, text=True)


def test_the_commands_plan_for_another_host_with_no_host_probe():
    p = _cli("plan", "--no-host-probe", "-", stdin=WIN11)
    assert p.returncode == 0 and "<tpm model='tpm-crb'>" in p.stdout, p.stderr
    win11 = str(GOLDEN / "host-q35-win11-tpm-crb-emulator.in.xml")
    for command in (["check"], ["tree"], ["qemu-args"], ["diff", win11]):
        c = _cli(*command, "--no-host-probe", "-", stdin=WIN11)
        assert c.returncode == 0, (command, c.stdout + c.stderr)


def test_hotplug_takes_the_running_guest_as_its_host_accepted_it(tmp_path):
    # (a running guest's host has what it names: no refusal of this machine's applies)
    nic = tmp_path / "nic.xml"
    nic.write_text("<interface type='network'><source network='default'/><model type='virtio'/></interface>")
    h = _cli("hotplug", str(GOLDEN / "host-q35-win11-tpm-crb-emulator.in.xml"), str(nic), stdin="")
    assert h.returncode == 0 and "<address type='pci'" in h.stdout, h.stderr


def test_vfio_needs_an_iommu_group_and_vfios_device(tmp_path, monkeypatch):
    # libvirt's test before it passes a host PCI device through: /sys/kernel/iommu_groups not
    # empty, and /dev/vfio/vfio there
    groups, device = tmp_path / "iommu_groups", tmp_path / "vfio"
    monkeypatch.setattr(hostcaps, "IOMMU_GROUPS", str(groups))
    monkeypatch.setattr(hostcaps, "VFIO_DEVICE", str(device))
    assert hostcaps.host_vfio() is False  # (no such folder)
    groups.mkdir()
    device.touch()
    assert hostcaps.host_vfio() is False  # (no IOMMU group)
    (groups / "0").mkdir()
    assert hostcaps.host_vfio() is True
    device.unlink()
    assert hostcaps.host_vfio() is False
    assert hostcaps.ANY_HOST.vfio_runs() and hostcaps.running_guest_host(here=False).vfio_runs()


def test_a_file_this_process_may_not_look_at_is_taken_to_be_there(tmp_path, monkeypatch):
    # (pciplan may run as a user who cannot search the folder libvirt's root daemon reads)
    missing, there = tmp_path / "missing.img", tmp_path / "there.img"
    there.touch()
    assert not hostcaps.present(str(missing)) and hostcaps.present(str(there))
    assert not hostcaps.present(str(there / "below"))  # (not a folder)

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(hostcaps.os, "stat", denied)
    assert hostcaps.present(str(missing))
    assert hostcaps.running_guest_host(here=True).has_file(str(missing))
