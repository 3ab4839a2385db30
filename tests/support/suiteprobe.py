#!/usr/bin/env python3
"""libvirt's own test inputs through libvirt and through pciplan.

    python tests/support/suiteprobe.py                    # libvirt 9.0.0's qemuxml2argvdata
    python tests/support/suiteprobe.py --version 11.3.0   # a newer libvirt's qemuxmlconfdata
    python tests/support/suiteprobe.py --variants all --save DIR

libvirt's test suite holds a thousand and more domain XMLs written to exercise its QEMU
driver: the inputs pciplan's users are most likely to resemble, and those the conformance
corpus was drawn from.  This probe takes them from the Debian source package of libvirt
(``libvirt_VERSION.orig.tar.xz`` from deb.debian.org, cached in ``--cache``), rewrites each
as the corpus did, and asks the local libvirt 9.0 daemon (tests/support/libvirt_oracle.py)
and pciplan about it:

* ``<name>`` becomes ``corp-CASE``; ``<emulator>`` the installed QEMU of the guest's arch;
  ``type='kvm'`` becomes ``qemu`` off x86; a machine type QEMU 7.2 does not know becomes
  its alias (``pc``, ``q35``, ``virt``, ``pseries``, ``s390-ccw-virtio``);
* ``--variants`` adds the corpus' derived cases: ``as-q35`` (i440fx inputs on q35, PCI
  addresses, IDE controllers and the pci-root dropped, IDE/SATA disks on SATA) and
  ``as-aarch64-virt`` (x86 inputs without x86-only devices, on aarch64 ``virt``), and
  ``noaddr`` (the input with every device's PCI address removed, as users write them).

A case counts as a failure when both accept it with different PCI layouts
(tests/support/layout.py), or when pciplan refuses what libvirt accepts, or crashes.
libvirt refusals pciplan does not make are listed, not counted: some depend on the host
in ways pciplan does not ask (qemu.conf's spice TLS, files that are missing) or lie
outside the PCI layout.

Exit status: 0 no failure, 1 some failure, 2 libvirt or the sources cannot be had.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import re
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support import difftest, libvirt_oracle  # noqa: E402

#: where libvirt's upstream tarballs are kept, tried in turn: Debian keeps the releases its
#: suites ship (9.0.0, 11.3.0), Ubuntu's archive some others (10.0.0 of noble)
MIRRORS = ("http://deb.debian.org/debian/pool/main/libv/libvirt",
           "http://archive.ubuntu.com/ubuntu/pool/main/libv/libvirt")
#: where the command-line probes keep the downloaded sources
DEFAULT_CACHE = Path.home() / ".cache" / "pciplan-suiteprobe"
#: guest arch -> the suffix of its QEMU binary
QEMU_OF_ARCH = {"x86_64": "x86_64", "i686": "i386", "aarch64": "aarch64", "armv7l": "arm",
                "ppc64": "ppc64", "ppc64le": "ppc64", "riscv64": "riscv64", "s390x": "s390x",
                **{arch: arch for arch in ("ppc", "alpha", "sh4", "sh4eb", "xtensa", "xtensaeb", "m68k",
                                           "cris", "microblaze", "microblazeel")}}
#: machine-type prefixes and the alias QEMU 7.2 knows them by
MACHINE_ALIASES = (("pc-q35", "q35"), ("pc-i440fx", "pc"), ("pc-", "pc"), ("virt", "virt"),
                   ("s390-ccw", "s390-ccw-virtio"), ("pseries", "pseries"))
#: test folders holding domain inputs, newest layout first
INPUT_DIRS = ("tests/qemuxmlconfdata", "tests/qemuxml2argvdata", "tests/qemuxml2xmloutdata")
#: inputs the libvirt 9.0 daemon dies on (virsh: "End of file while reading data"), left out:
#: each takes the daemon down for every case asked at the same time
LIBVIRTD_DIES_ON = frozenset({"hostdev-scsi-vhost-rawio-invalid"})
#: output files of qemuxmlconfdata: CASE.ARCH-VERSION.xml
_OUTPUT_NAME = re.compile(r"\.[a-z0-9_]+-(latest|\d[\d.]*)(\.[a-z-]+)?$")


@dataclass
class Case:
    name: str
    xml: str
    index: int = 0
    seed: int = 0
    family: str = "suite"


# -- the inputs -------------------------------------------------------------------------------
def sources_for_tests(cache: Path, version: str = "9.0.0") -> tuple[Path | None, str]:
    """For a pytest test: the unpacked sources of ``version`` and "", or None and why they
    cannot be used here (no libvirt daemon to ask, or no download)."""
    if not libvirt_oracle.available():
        return None, (f"no libvirt daemon to compare with ({libvirt_oracle.unavailable_reason()}); "
                      "run scripts/setup-libvirt.sh as root")
    try:
        return fetch(version, cache), ""
    except OSError as err:
        return None, f"libvirt {version}'s test inputs cannot be downloaded: {err}"


def fetch(version: str, cache: Path) -> Path:
    """The unpacked test folders of libvirt VERSION (downloaded once into ``cache``)."""
    root = cache / f"libvirt-{version}"
    done = root / ".complete-with-links"
    if done.exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"libvirt_{version}.orig.tar.xz"
    if not tarball.exists():
        part = tarball.with_suffix(".part")
        for n, mirror in enumerate(MIRRORS, 1):
            url = f"{mirror}/libvirt_{version}.orig.tar.xz"
            print(f"suiteprobe: downloading {url}", file=sys.stderr)
            try:
                with urllib.request.urlopen(url, timeout=300) as r, open(part, "wb") as f:
                    while chunk := r.read(1 << 20):
                        f.write(chunk)
                break
            except urllib.error.HTTPError as err:
                if err.code != 404 or n == len(MIRRORS):
                    raise
        part.rename(tarball)
    with tarfile.open(tarball) as tar:
        # a symbolic link is a test of its own: the same input under another name
        # (disk-cdrom-network-nbdkit.xml -> disk-cdrom-network.xml), run with other options
        members = [m for m in tar.getmembers() if (m.isfile() or m.issym()) and m.name.endswith(".xml")
                   and any(f"/{d}/" in m.name for d in INPUT_DIRS)]
        tar.extractall(cache, members=members, filter="data")
    done.touch()
    return root


def known_machines() -> dict[str, set[str]]:
    """The machine types of each installed QEMU binary."""
    out: dict[str, set[str]] = {}
    for binary in set(QEMU_OF_ARCH.values()):
        try:
            r = subprocess.run([f"qemu-system-{binary}", "-machine", "help"], capture_output=True,
                               text=True, timeout=60)
        except OSError:
            continue
        out[binary] = {line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()}
    return out


def rewrite(case: str, text: str, machines: dict[str, set[str]]) -> str | None:
    """The corpus' rewrites of one test input, or None when it is no guest for this host."""
    m = re.search(r"<type\b([^>]*)>", text)
    if "<domain" not in text or not m:
        return None
    arch_m = re.search(r"arch=['\"]([^'\"]+)", m.group(1))
    arch = arch_m.group(1) if arch_m else "x86_64"
    binary = QEMU_OF_ARCH.get(arch)
    if binary is None or binary not in machines:
        return None
    text = re.sub(r"<name>[^<]*</name>", f"<name>corp-{case}</name>", text, count=1)
    text = re.sub(r"<emulator>[^<]*</emulator>", f"<emulator>/usr/bin/qemu-system-{binary}</emulator>",
                  text)
    if arch not in ("x86_64", "i686"):
        text = re.sub(r"<domain type=(['\"])kvm\1", "<domain type='qemu'", text, count=1)
    mach_m = re.search(r"machine=['\"]([^'\"]+)", m.group(1))
    if mach_m and mach_m.group(1) not in machines[binary]:
        old = mach_m.group(1)
        new = next((alias for prefix, alias in MACHINE_ALIASES if old.startswith(prefix)), None)
        if new:
            text = text.replace(m.group(0), m.group(0).replace(old, new), 1)
    return text


def inputs(root: Path, machines: dict[str, set[str]]) -> list[Case]:
    """The inputs of a libvirt tree at ``root`` or, when ``root`` holds no test folder,
    the ``*.xml`` files in ``root`` itself (libvirt's inputs copied one by one)."""
    folder = next((root / d for d in INPUT_DIRS if (root / d).is_dir()), None)
    if folder is None:
        folder = root
        if not any(root.glob("*.xml")):
            raise SystemExit(f"suiteprobe: no test inputs under {root}")
    cases = []
    for f in sorted(folder.glob("*.xml")):
        if folder.name != "qemuxml2argvdata" and _OUTPUT_NAME.search(f.stem):
            continue
        if (f.is_symlink() and not f.exists()) or f.stem in LIBVIRTD_DIES_ON:
            continue
        text = rewrite(f.stem, f.read_text(errors="replace"), machines)
        if text is not None:
            cases.append(Case(f.stem, text))
    return cases


# -- the derived variants (the corpus README's rules) ------------------------------------------
def _strip_pci(root, disk_bus: str) -> int:
    removed = 0
    for a in list(root.iter("address")):
        parent = a.getparent()
        if a.get("type") == "pci" and parent.tag != "source":
            parent.remove(a)
            removed += 1
    devs = root.find("devices")
    if devs is None:
        return removed
    for c in devs.findall("controller"):
        if c.get("type") == "pci" and c.get("model") == "pci-root" and c.get("index", "0") == "0":
            c.set("model", "pcie-root")
        if c.get("type") == "ide":
            devs.remove(c)
    for d in devs.findall("disk"):
        t = d.find("target")
        if t is not None and t.get("bus") in ("ide", "sata"):
            t.set("bus", disk_bus)
            for a in d.findall("address"):
                if a.get("type") == "drive":
                    d.remove(a)
    return removed


def _x86_only(root) -> bool:
    devs = root.find("devices")
    if root.find("cpu/model") is not None:
        return True
    if devs is None:
        return False
    checks = [
        any((s.find("target") is None or s.find("target").get("type") in (None, "isa-serial"))
            for s in devs.findall("serial")),
        devs.find("sound") is not None, devs.find("watchdog") is not None,
        any(v.get("type") in ("qxl", "cirrus", "vga", "bochs") for v in devs.findall("video/model")),
        any(m.get("type") in ("e1000", "e1000e", "rtl8139") for m in devs.findall("interface/model")),
        any(c.get("type") == "scsi" and (c.get("model") or "").startswith("lsi")
            for c in devs.findall("controller")),
        any(c.get("type") == "usb" and re.match(r"(ich9|piix|vt82c686b)", c.get("model") or "")
            for c in devs.findall("controller")),
        any(d.get("device") == "floppy" for d in devs.findall("disk")),
        any(devs.find(t) is not None for t in ("iommu", "panic", "shmem", "vsock", "memory")),
        any(h.get("type") == "mdev" for h in devs.findall("hostdev")),
        any(i.get("type") == "hostdev" for i in devs.findall("interface")),
    ]
    return any(checks)


def variants(case: Case, kinds: set[str]) -> list[Case]:
    from lxml import etree

    try:
        base = etree.fromstring(case.xml.encode(), etree.XMLParser(resolve_entities=False,
                                                                   no_network=True))
    except etree.XMLSyntaxError:
        return []
    ostype = base.find("os/type")
    if ostype is None:
        return []
    arch, machine = ostype.get("arch", "x86_64"), ostype.get("machine", "")
    out = []

    def copy(suffix: str):
        r = etree.fromstring(etree.tostring(base))
        name = r.find("name")
        if name is not None:
            name.text = f"corp-{case.name}.{suffix}"
        return r

    if "noaddr" in kinds:
        r = copy("noaddr")
        gone = 0
        for a in list(r.iter("address")):
            dev = a.getparent()
            if a.get("type") == "pci" and dev.getparent() is not None and dev.getparent().tag == "devices":
                dev.remove(a)
                gone += 1
        if gone:
            out.append(Case(f"{case.name}.noaddr", etree.tostring(r, encoding="unicode")))
    if arch not in ("x86_64", "i686"):
        return out
    if "as-q35" in kinds and machine.startswith("pc") and "q35" not in machine:
        r = copy("as-q35")
        r.find("os/type").set("machine", "q35")
        _strip_pci(r, "sata")
        out.append(Case(f"{case.name}.as-q35", etree.tostring(r, encoding="unicode")))
    if "as-aarch64-virt" in kinds and not _x86_only(base):
        r = copy("as-aarch64-virt")
        t = r.find("os/type")
        t.set("arch", "aarch64")
        t.set("machine", "virt")
        if r.get("type") == "kvm":
            r.set("type", "qemu")
        emulator = r.find("devices/emulator")
        if emulator is not None:
            emulator.text = "/usr/bin/qemu-system-aarch64"
        _strip_pci(r, "virtio")
        devs = r.find("devices")
        if devs is not None:
            for i in devs.findall("input"):
                if i.get("bus") == "ps2" or (i.get("bus") is None and i.get("type") in ("mouse", "keyboard")):
                    devs.remove(i)
            for c in devs.findall("controller"):
                if c.get("type") == "fdc":
                    devs.remove(c)
        acpi = r.find("features/acpi")
        if acpi is not None:
            acpi.getparent().remove(acpi)
        out.append(Case(f"{case.name}.as-aarch64-virt", etree.tostring(r, encoding="unicode")))
    return out


# -- running ----------------------------------------------------------------------------------
ALL_VARIANTS = frozenset({"as-q35", "as-aarch64-virt", "noaddr"})


def all_cases(root: Path, kinds: set[str] | frozenset[str] = ALL_VARIANTS) -> list[Case]:
    """Every rewritten input of the tree at ``root``, each followed by its variants."""
    cases = []
    for c in inputs(root, known_machines()):
        cases.append(c)
        cases.extend(variants(c, kinds))
    for i, c in enumerate(cases):
        c.index = i
    return cases


def failures(results: list[difftest.CaseResult]) -> list[difftest.CaseResult]:
    """Different layouts, false refusals and crashes (libvirt refusals pciplan misses are not)."""
    return [r for r in results if r.failed and r.status != difftest.FALSE_ACCEPT]


#: inputs (and their variants) on which the 9.0 daemon misbehaves, a bug later releases fixed
#: (11.3 has a test of the fix): it still refuses them, but its message is not to be trusted
UNSTABLE_MESSAGE = {
    # a <sibling id> past the last cell: 9.0 reads past its distance table; its refusal
    # comes with the right message, an empty one, or a crash of the daemon
    "cpu-numa-distance-nonexistent-sibling",
}


def run(cases: list[Case], oracle, jobs: int = 2, retries: int = 2) -> list[difftest.CaseResult]:
    """Each case through libvirt and pciplan.  A few inputs crash the 9.0 daemon (the oracle
    starts it again); the cases it could not answer meanwhile are asked again, one by one."""
    plan, plan_error = difftest.load_planner("pciplan")
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        results = list(ex.map(lambda c: difftest.run_case(c, oracle, plan, plan_error), cases))
    for _ in range(retries):
        again = [i for i, r in enumerate(results) if r.status == difftest.ORACLE_ERROR]
        for i in again:
            if not _wait_for_daemon(oracle):
                return results
            results[i] = difftest.run_case(cases[i], oracle, plan, plan_error)
    # A disagreement is confirmed by asking the daemon again, alone and past the cache: an
    # answer given while another case was crashing the daemon says nothing about this input.
    fresh = _Fresh(oracle)
    for i, r in enumerate(results):
        if r.status == difftest.OK_REJECT and cases[i].name.split(".")[0] in UNSTABLE_MESSAGE:
            r.message_match = None  # (not compared)
        elif r.failed or (r.status == difftest.OK_REJECT and r.message_match is False):
            if _wait_for_daemon(oracle):
                results[i] = difftest.run_case(cases[i], fresh, plan, plan_error)
    return results


class _Fresh:
    """The oracle, asked afresh (its cache gets the new answer)."""

    def __init__(self, oracle):
        self._oracle = oracle

    def run(self, text: str) -> tuple[bool, str]:
        return self._oracle.run(text, fresh=True)


def _wait_for_daemon(oracle, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if libvirt_oracle._virsh(oracle.uri, "version", timeout=20).returncode == 0:
                return True
        except libvirt_oracle.OracleError:
            pass
        time.sleep(2)
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", default="9.0.0", help="libvirt release whose tests to take")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--variants", default="", help="comma list of as-q35, as-aarch64-virt, noaddr, or all")
    ap.add_argument("-k", dest="match", default="", help="only cases whose name contains this")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--save", type=Path, help="write each failing case's input into this folder")
    ap.add_argument("--uri", default=None)
    ap.add_argument("--dir", type=Path, help="take the inputs from this folder of libvirt test XMLs "
                    "(e.g. copied from a newer libvirt) instead of --version's tarball")
    args = ap.parse_args(argv)

    ok, why = libvirt_oracle.probe(args.uri)
    if not ok:
        print(f"suiteprobe: libvirt cannot be asked: {why}", file=sys.stderr)
        return 2
    try:
        root = args.dir if args.dir else fetch(args.version, args.cache)
    except OSError as err:
        print(f"suiteprobe: cannot get libvirt {args.version}'s sources: {err}", file=sys.stderr)
        return 2
    kinds = ALL_VARIANTS if args.variants == "all" else {k for k in args.variants.split(",") if k}
    cases = [c for c in all_cases(root, kinds) if args.match in c.name]
    results = run(cases, libvirt_oracle.Oracle(args.uri), args.jobs)

    counts = collections.Counter(r.status for r in results)
    print(f"libvirt {args.dir or args.version} test inputs: {len(results)} cases "
          f"({', '.join(f'{n} {s}' for s, n in counts.most_common())})")
    failed = failures(results)
    for r in failed:
        print(f"FAIL {r.dom.name}: {r.status}: {r.first_line}")
    if stats := difftest.reject_message_stats(results):
        print(stats)
    if other := difftest.message_differences(results, example=lambda r: f"-k {r.dom.name}"):
        print(other)
    missed = [r for r in results if r.status == difftest.FALSE_ACCEPT]
    if missed:
        print(f"refused by libvirt, accepted by pciplan ({len(missed)}; not counted):")
        for r in missed:
            print(f"  {r.dom.name}: {difftest.message_core(r.libvirt_text)[:150]}")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for r in failed + missed:
            (args.save / f"{r.dom.name}.in.xml").write_text(r.dom.xml)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
