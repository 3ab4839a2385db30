"""Ask the host what libvirt asks of it before it accepts a domain: whether KVM can run
the guest's architecture here, what the installed swtpm can emulate, whether KVM runs
AMD SEV guests, whether the daemon's qemu.conf turns SPICE's TLS on, whether the CPU
offers SGX to guests, whether the emulator is installed.

libvirt 9.0 refuses, on the host it runs on, ``<domain type='kvm'>`` for a guest arch
the host's CPU cannot run natively ("Emulator '...' does not support virt type 'kvm'";
without ``machine=``, "could not get preferred machine for ... type=kvm"),
an emulated TPM when ``swtpm`` is not installed or cannot set up the TPM version
("TPM version '2.0' is not supported"; an ``external`` TPM back end needs swtpm too),
``<launchSecurity type='sev'>`` where KVM cannot run SEV guests, s390x's
``type='s390-pv'`` off an s390x host (its QEMU has no protected virtualization without
KVM; whether the host's firmware offers it is not asked), a SPICE TLS port where the
daemon's qemu.conf leaves TLS off (its default), an SGX EPC memory device where the
host's CPU offers no SGX to guests (no ``/dev/sgx_vepc``), and an ``<emulator>`` that is
not installed ("Cannot check QEMU binary ...", when the arch's own QEMU is: a machine
without it cannot tell).
pciplan makes these refusals when it probes the host (``Options.probe_host``, the
default); ``ANY_HOST`` plans as on a host that has whatever the domain names.

Whether ``/dev/kvm`` is usable right now is not asked: a host whose CPU runs the guest's
arch is taken to have KVM (a container or a CI runner without the device still plans
the domains its hosts will run).
"""

from __future__ import annotations

import functools
import os
from typing import Callable

from .records import Value

#: what swtpm_setup must print among its ``--print-capabilities`` features for each version
TPM_VERSIONS = {"1.2": "tpm-1.2", "2.0": "tpm-2.0"}
#: the programs libvirt needs before it offers the emulator and external back ends
SWTPM_PROGRAMS = ("swtpm", "swtpm_setup", "swtpm_ioctl")
#: where libvirtd, started by systemd or by hand as root, finds them besides its PATH
DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"
#: the system daemon's QEMU settings (SPICE's TLS is off unless it says ``spice_tls = 1``)
QEMU_CONF = "/etc/libvirt/qemu.conf"
#: the device QEMU gives a guest's SGX EPC from (QEMU's SGX capabilities need it)
SGX_DEVICE = "/dev/sgx_vepc"
#: the device QEMU gets a vsock's vhost from (libvirt opens it as it starts or hot-plugs one)
VHOST_VSOCK_DEVICE = "/dev/vhost-vsock"
#: the host's network interfaces
NET_DEVICES = "/sys/class/net"
#: VFIO's container device, and the IOMMU groups the kernel lists (an IOMMU: one at least)
VFIO_DEVICE = "/dev/vfio/vfio"
IOMMU_GROUPS = "/sys/kernel/iommu_groups"
#: where KVM says whether it runs AMD SEV guests
SEV_PARAMETER = "/sys/module/kvm_amd/parameters/sev"
#: guest arches KVM runs on a host of each arch (libvirt's native guests)
KVM_GUESTS = {
    "x86_64": frozenset({"x86_64", "i686"}),
    "aarch64": frozenset({"aarch64", "armv7l"}),
    "ppc64": frozenset({"ppc64", "ppc64le"}),
    "ppc64le": frozenset({"ppc64", "ppc64le"}),
    "s390x": frozenset({"s390x"}),
}
#: ``uname -m`` spellings of the host arches above
_UNAME = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686", "i486": "i686", "i586": "i686"}


class Swtpm(Value):
    """What the host's swtpm offers libvirt."""

    #: swtpm, swtpm_setup and swtpm_ioctl are installed
    installed: bool
    #: the TPM versions swtpm_setup can set up ("1.2", "2.0")
    versions: frozenset[str]

    def __init__(self, installed: bool, versions: frozenset[str]) -> None:
        self.installed = installed
        self.versions = versions


class Host(Value):
    """The host a domain is planned for.  A fact left None is asked of the machine pciplan
    runs on, and only when a domain needs it (``this_host`` leaves them all None)."""

    #: its architecture, as libvirt names it (None: KVM runs every guest arch)
    arch: str | None
    #: its swtpm
    swtpm: Swtpm | None
    #: KVM runs AMD SEV guests
    sev: bool | None
    #: libvirt's qemu.conf turns SPICE's TLS on
    spice_tls: bool | None
    #: the CPU offers SGX enclaves to guests
    sgx: bool | None
    #: tells whether a file (an ``<emulator>``) is installed (None: not asked)
    installed: Callable[[str], bool] | None
    #: an IOMMU and VFIO for passing host PCI devices through
    vfio: bool | None
    #: its libvirt virtual networks, name -> active (None: not asked, any is there and runs)
    networks: dict[str, bool] | None

    def __init__(self, arch: str | None = None, swtpm: Swtpm | None = None, sev: bool | None = None,
                 spice_tls: bool | None = None, sgx: bool | None = None,
                 installed: Callable[[str], bool] | None = None, vfio: bool | None = None,
                 networks: dict[str, bool] | None = None) -> None:
        self.arch = arch
        self.swtpm = swtpm
        self.sev = sev
        self.spice_tls = spice_tls
        self.sgx = sgx
        self.installed = installed
        self.vfio = vfio
        self.networks = networks

    def kvm_runs(self, guest_arch: str) -> bool:
        """KVM can run a guest of this arch here."""
        if self.arch is None:
            return True
        return guest_arch in KVM_GUESTS.get(self.arch, frozenset({self.arch}))

    def tpm(self) -> Swtpm:
        return self.swtpm if self.swtpm is not None else installed_swtpm()

    def launch_security_runs(self, kind: str, guest_arch: str) -> bool:
        """The host runs guests of this ``<launchSecurity>`` type: AMD SEV where KVM runs it,
        s390x's protected virtualization on an s390x host (its QEMU has it only with KVM)."""
        if kind == "sev":
            return self.sev if self.sev is not None else kvm_sev()
        return self.kvm_runs(guest_arch)

    def spice_tls_on(self) -> bool:
        return self.spice_tls if self.spice_tls is not None else qemu_conf_spice_tls()

    def sgx_runs(self) -> bool:
        return self.sgx if self.sgx is not None else os.path.exists(SGX_DEVICE)

    def vfio_runs(self) -> bool:
        """Host PCI devices can be passed through (libvirt asks as it starts or hot-plugs one)."""
        return self.vfio if self.vfio is not None else host_vfio()

    def network_problem(self, name: str) -> str | None:
        """libvirt's refusal of a NIC on the virtual network ``name`` here, if any."""
        if self.networks is None:
            return None
        if name not in self.networks:
            return f"Network not found: no network with matching name '{name}'"
        if not self.networks[name]:
            return f"network '{name}' is not active"
        return None

    def has_file(self, path: str) -> bool:
        """The file (a device node) is there, as far as the host can tell."""
        return self.installed is None or self.installed(path)

    def has_emulator(self, path: str, default: str | None) -> bool:
        """The emulator at ``path`` is installed, as far as the host can tell: one without
        the arch's ``default`` emulator has no QEMU for it to judge by."""
        if self.installed is None:
            return True
        return self.installed(path) or default is None or not self.installed(default)


#: a host with every arch's KVM, a swtpm that sets up both TPM versions, AMD SEV, SPICE's
#: TLS turned on, and SGX
ANY_HOST = Host(None, Swtpm(True, frozenset(TPM_VERSIONS)), True, True, True, vfio=True)


def running_guest_host(here: bool, networks: dict[str, bool] | None = None) -> Host:
    """The host of a running guest: it has whatever the guest names (it runs there); the
    files a device attached to it needs (a vsock's vhost device, an input's event device,
    VFIO for a host PCI device, a NIC's bridge or host interface) are asked of this
    machine when the guest runs ``here``, else taken to be there; its virtual
    ``networks`` are those its libvirt connection lists (None: any)."""
    return ANY_HOST.replace(installed=present if here else None, vfio=None if here else True,
                            networks=networks)


def present(path: str) -> bool:
    """Whether ``path`` is there, as far as this process can tell: one it may not look
    at (a folder it cannot search) is taken to be there, for libvirt's daemon, which
    runs as root, may well see it."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


def this_host() -> Host:
    """The machine pciplan runs on."""
    machine = os.uname().machine
    return Host(_UNAME.get(machine, machine), installed=os.path.exists)


@functools.lru_cache(maxsize=1)
def installed_swtpm() -> Swtpm:
    """What this host's swtpm offers, asked once per process."""
    import shutil  # (here: a plan without a TPM does not load it)

    path = os.pathsep.join(p for p in (os.environ.get("PATH", ""), DAEMON_PATH) if p)
    programs = [shutil.which(name, path=path) for name in SWTPM_PROGRAMS]
    if None in programs:
        return Swtpm(False, frozenset())
    return Swtpm(True, _versions(programs[1]))


def _versions(swtpm_setup: str) -> frozenset[str]:
    """The TPM versions ``swtpm_setup --print-capabilities`` names (none when it fails)."""
    import json
    import subprocess

    try:
        out = subprocess.run([swtpm_setup, "--print-capabilities"], capture_output=True,
                             timeout=10, check=True).stdout
        features = json.loads(out).get("features", [])
    except (OSError, subprocess.SubprocessError, ValueError, AttributeError):
        return frozenset()
    return frozenset(v for v, feature in TPM_VERSIONS.items() if feature in features)


def net_device(name: str) -> str:
    """Where the host's network interface ``name`` (a bridge, a NIC, a tap) shows itself."""
    return os.path.join(NET_DEVICES, name)


def host_vfio() -> bool:
    """This machine has an IOMMU (an IOMMU group) and VFIO's device."""
    try:
        groups = os.listdir(IOMMU_GROUPS)
    except OSError:
        return False
    return bool(groups) and os.path.exists(VFIO_DEVICE)


@functools.lru_cache(maxsize=1)
def kvm_sev() -> bool:
    """KVM runs SEV guests here, as QEMU's ``query-sev-capabilities`` needs: ``kvm_amd``'s
    ``sev`` parameter is on and ``/dev/sev`` exists."""
    try:
        with open(SEV_PARAMETER) as f:
            on = f.read().strip() in ("Y", "1")
    except OSError:
        return False
    return on and os.path.exists("/dev/sev")


@functools.lru_cache(maxsize=1)
def qemu_conf_spice_tls() -> bool:
    """``spice_tls`` of the host's qemu.conf (libvirt's default, off, when it is not set or
    the file cannot be read)."""
    import re

    try:
        with open(QEMU_CONF, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    values = re.findall(r"^[ \t]*spice_tls[ \t]*=[ \t]*(\d+)", text, re.MULTILINE)
    return bool(values) and int(values[-1]) != 0
