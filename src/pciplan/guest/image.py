"""The guest: a Debian kernel and busybox, fetched with apt once and cached, and an initramfs.

``image_for(arch)`` returns a ``GuestImage`` (kernel, initramfs, the kernel's
module index) for a guest architecture.  On first use it runs

    apt-get update                 (a private APT state for that Debian arch)
    apt-get download linux-image-<ver>-<arch> busybox-static
    dpkg-deb -x ...

into ``$PCIPLAN_GUEST_CACHE`` (default ``~/.cache/pciplan/guest``)/<debarch>,
keeps the kernel, busybox and the driver modules the checks can need, and
builds the initramfs in Python (``cpio``).  The host's own APT and dpkg state
is never changed: the private configuration has its own lists and an empty
dpkg status, so no foreign architecture is added.

``image_from_files(kernel, initrd)`` is the override for hosts without
Debian's packages: the given initramfs (busybox, and the driver modules with a
``modules.dep`` if the kernel has them as modules) gets pciplan's ``/init``
appended as a second cpio archive, which the kernel unpacks over the first.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import cpio, drivers, initscript, kmod


class GuestImageError(Exception):
    """The guest kernel or initramfs cannot be had (no apt, a download failed...)."""


@dataclass(frozen=True)
class ArchSpec:
    """How to boot a Debian kernel for one guest architecture."""

    name: str                      # canonical guest arch: x86_64, aarch64
    debarch: str                   # Debian's name: amd64, arm64
    qemu: str                      # emulator binary
    kernel_meta: str               # metapackage that depends on the current kernel
    console: str                   # serial console device in the guest
    cpu: str | None = None         # -cpu (None: the machine's default)
    machines: tuple[str, ...] = () # machine families this spec boots
    #: kernel command line the arch needs (x86: TCG on a loaded host fails the IO-APIC timer check)
    cmdline: tuple[str, ...] = ()


ARCHES: dict[str, ArchSpec] = {
    "x86_64": ArchSpec("x86_64", "amd64", "qemu-system-x86_64", "linux-image-amd64", "ttyS0",
                       machines=("pc", "q35"), cmdline=("no_timer_check",)),
    "aarch64": ArchSpec("aarch64", "arm64", "qemu-system-aarch64", "linux-image-arm64", "ttyAMA0",
                        cpu="cortex-a57", machines=("virt",)),
    "armv7l": ArchSpec("armv7l", "armhf", "qemu-system-arm", "linux-image-armmp-lpae", "ttyAMA0",
                       cpu="cortex-a15", machines=("virt",)),
}
#: guest arches booted with another arch's kernel (the PCI topology does not depend on it)
ARCH_ALIASES = {"i686": "x86_64"}

#: busybox applets the /init script uses
APPLETS = ("sh", "mount", "cat", "cut", "tr", "od", "ls", "readlink", "basename", "sleep", "sync",
           "poweroff", "insmod", "modprobe", "echo", "ip", "dmesg", "grep", "head", "uname")


def arch_spec(arch: str) -> ArchSpec:
    spec = ARCHES.get(ARCH_ALIASES.get(arch, arch))
    if spec is None:
        raise GuestImageError(f"no guest kernel for arch '{arch}' (supported: "
                              f"{', '.join(sorted(ARCHES) + sorted(ARCH_ALIASES))})")
    return spec


def cache_root() -> Path:
    env = os.environ.get("PCIPLAN_GUEST_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pciplan" / "guest"


@dataclass
class GuestImage:
    arch: ArchSpec
    kernel: Path
    initrd: Path
    kver: str
    #: module name -> info, for the modules the initramfs carries (empty: built in / user image)
    modules: dict[str, kmod.ModInfo] = field(default_factory=dict)
    #: a kernel to use where ``kernel`` cannot boot (old x86 machine types have no PVH boot)
    fallback_kernel: Path | None = None
    builtin: set[str] = field(default_factory=set)
    #: where it came from, for the report
    origin: str = ""

    def load_order(self, wanted: list[str]) -> kmod.LoadOrder:
        """insmod order for the driver modules ``wanted`` (deps first; built-ins dropped)."""
        if not self.modules:
            # a user image: modprobe (if it has one) resolves dependencies itself
            return kmod.LoadOrder(order=list(dict.fromkeys(w.replace("-", "_") for w in wanted)))
        return kmod.load_order(wanted, self.modules, self.builtin)


Log = Callable[[str], None]


def _say(msg: str) -> None:
    print(f"pciplan: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- apt
def _have(tool: str) -> bool:
    return shutil.which(tool) is not None


class Apt:
    """apt-get with a private state directory for one Debian architecture."""

    def __init__(self, root: Path, debarch: str) -> None:
        self.root = root
        self.debarch = debarch
        self.conf = root / "apt.conf"

    def setup(self) -> None:
        for d in ("lists/partial", "cache/archives/partial"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        status = self.root / "status"
        if not status.exists():
            status.write_text("")
        self.conf.write_text(
            f'APT::Architecture "{self.debarch}";\n'
            f'APT::Architectures {{ "{self.debarch}"; }};\n'
            f'Dir::State::Lists "{self.root}/lists";\n'
            f'Dir::State::status "{status}";\n'
            f'Dir::Cache "{self.root}/cache";\n'
            'Acquire::Languages "none";\n'
            'APT::Sandbox::User "root";\n'
        )

    def run(self, *args: str, cwd: Path | None = None, timeout: int = 900) -> str:
        env = dict(os.environ, APT_CONFIG=str(self.conf), DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
        try:
            p = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise GuestImageError(f"{' '.join(args)}: timed out after {timeout} s") from None
        if p.returncode != 0:
            lines = (p.stderr or p.stdout).strip().splitlines()
            errors = [ln.strip() for ln in lines if ln.startswith("E:")]
            raise GuestImageError(f"{' '.join(args)} failed: {' / '.join(errors[:2] or lines[-3:])}")
        return p.stdout

    def update(self) -> None:
        self.run("apt-get", "-q", "update")

    def kernel_package(self, meta: str) -> str:
        """The versioned kernel package the metapackage depends on (its candidate version)."""
        out = self.run("apt-cache", "depends", "--important", meta)
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("Depends:") and "linux-image-" in line:
                return line.split(":", 1)[1].strip().strip("<>")
        raise GuestImageError(f"cannot resolve {meta}: no linux-image dependency in apt-cache depends")

    def download(self, packages: list[str], dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        self.run("apt-get", "-q", "download", *packages, cwd=dest)
        debs = []
        for pkg in packages:
            found = sorted(p for p in dest.glob(f"{pkg}_*_{self.debarch}.deb"))
            if not found:
                found = sorted(p for p in set(dest.glob(f"{pkg}_*.deb")) - before)
            if not found:
                raise GuestImageError(f"apt-get download {pkg}: no .deb appeared in {dest}")
            debs.append(found[-1])
        return debs


def _extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True)
    if p.returncode != 0:
        raise GuestImageError(f"dpkg-deb -x {deb.name}: {p.stderr.strip()}")


# --------------------------------------------------------------------------- cache
def _table_hash() -> str:
    """Changes when the driver table does (the cached modules must then be re-extracted)."""
    text = json.dumps(sorted(drivers.all_modules())) + "\nvmlinux"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _initrd_hash() -> str:
    """Changes when the initramfs content does."""
    text = _table_hash() + initscript.INIT + " ".join(APPLETS)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _cached_kernel(archdir: Path) -> Path | None:
    cur = archdir / "current"
    if not cur.is_file():
        return None
    kdir = archdir / cur.read_text().strip()
    if (kdir / "complete").is_file():
        return kdir
    return None


def fetch(spec: ArchSpec, log: Log = _say, refresh: bool = False) -> Path:
    """The cache directory holding kernel, busybox and modules for ``spec`` (downloading once).

    Other processes filling the same cache wait for this one (a lock file per arch).
    """
    archdir = cache_root() / spec.debarch
    archdir.mkdir(parents=True, exist_ok=True)
    with open(archdir / ".lock", "w") as lock:
        try:
            import fcntl
            fcntl.flock(lock, fcntl.LOCK_EX)
        except (ImportError, OSError):  # pragma: no cover - no POSIX locks
            pass
        return _fetch_locked(spec, archdir, log, refresh)


def _fetch_locked(spec: ArchSpec, archdir: Path, log: Log, refresh: bool) -> Path:
    kdir = None if refresh else _cached_kernel(archdir)
    if kdir is not None and (kdir / "table").is_file() and (kdir / "table").read_text() == _table_hash():
        return kdir
    if not (_have("apt-get") and _have("dpkg-deb")):
        raise GuestImageError("apt-get/dpkg-deb not found: the guest kernel comes from Debian's packages; "
                              "pass --kernel and --initrd to use your own")
    apt = Apt(archdir / "apt", spec.debarch)
    apt.setup()
    debdir = archdir / "debs"
    if kdir is not None:
        # the driver table changed: re-extract from the kept packages
        pkgs = json.loads((kdir / "packages.json").read_text())
        debs = [debdir / name for name in pkgs]
        if not all(d.is_file() for d in debs):
            kdir = None
    if kdir is None:
        log(f"fetching the {spec.debarch} guest kernel and busybox from Debian's packages "
            f"(once; cached in {archdir})")
        try:
            apt.update()
        except GuestImageError as err:
            # e.g. one index mid-sync on the mirror: go on with the lists that did arrive
            log(f"warning: {err}")
        kpkg = apt.kernel_package(spec.kernel_meta)
        log(f"downloading {kpkg} and busybox-static for {spec.debarch} (about 60-70 MB)")
        debs = apt.download([kpkg, "busybox-static"], debdir)
    return _unpack(archdir, debs, log)


def _unpack(archdir: Path, debs: list[Path], log: Log) -> Path:
    with tempfile.TemporaryDirectory(prefix="pciplan-deb-", dir=archdir) as tmp:
        t = Path(tmp)
        for deb in debs:
            _extract(deb, t)
        modroots = sorted((t / "lib" / "modules").glob("*"))
        if not modroots:
            raise GuestImageError(f"{debs[0].name}: no lib/modules/<version> inside")
        moddir = modroots[-1]
        kver = moddir.name
        kernels = sorted((t / "boot").glob(f"vmlinu*-{kver}"))
        busybox = t / "bin" / "busybox"
        if not kernels or not busybox.is_file():
            raise GuestImageError(f"kernel image or busybox missing from {', '.join(d.name for d in debs)}")
        kdir = archdir / kver
        if kdir.exists():
            shutil.rmtree(kdir)
        (kdir / "modules").mkdir(parents=True)
        shutil.copy2(kernels[-1], kdir / "kernel")
        shutil.copy2(busybox, kdir / "busybox")
        cfg = sorted((t / "boot").glob(f"config-{kver}"))
        if cfg:
            shutil.copy2(cfg[-1], kdir / "config")
            if "CONFIG_PVH=y" in cfg[-1].read_text().split("\n"):
                vmlinux = _decompress_bzimage(kernels[-1].read_bytes())
                if vmlinux is not None:
                    (kdir / "vmlinux").write_bytes(vmlinux)
        builtin = set()
        bfile = moddir / "modules.builtin"
        if bfile.is_file():
            builtin = {kmod.module_name(line) for line in bfile.read_text().split()}
        log(f"indexing the modules of {kver}")
        index = kmod.scan(moddir)
        order = kmod.load_order(sorted(drivers.all_modules()), index, builtin)
        keep = {}
        for name in order.order:
            info = index[name]
            shutil.copy2(moddir / info.path, kdir / "modules" / f"{name}.ko")
            keep[name] = info.to_json()
        (kdir / "modinfo.json").write_text(json.dumps(keep, indent=0, sort_keys=True))
        (kdir / "builtin.txt").write_text("\n".join(sorted(builtin)) + "\n")
        (kdir / "packages.json").write_text(json.dumps([d.name for d in debs]))
        (kdir / "table").write_text(_table_hash())
        (kdir / "complete").write_text("")
    (archdir / "current").write_text(kver)
    return kdir


def _decompress_bzimage(data: bytes) -> bytes | None:
    """The ELF vmlinux inside an x86 bzImage (XZ or gzip payload), or None.

    QEMU boots an ELF kernel with a PVH note directly (no in-guest
    decompression): under TCG that saves seconds per boot.
    """
    import gzip
    import lzma
    import zlib
    for magic, codec in ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08\x00", "gz")):
        i = data.find(magic)
        if i < 0:
            continue
        try:
            if codec == "xz":
                out = lzma.LZMADecompressor().decompress(data[i:])
            else:
                out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[i:])
        except (lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError):
            continue
        if out[:4] == b"\x7fELF":
            return out
    return None


# --------------------------------------------------------------------------- initramfs
def build_initramfs(busybox: bytes, modules: dict[str, bytes]) -> bytes:
    """An initramfs: busybox with the applets /init uses, flat modules, /init, /dev/console."""
    w = cpio.Writer()
    for d in ("bin", "dev", "proc", "sys", "lib", "lib/modules", "tmp"):
        w.directory(d)
    w.file("bin/busybox", busybox, 0o755)
    for a in APPLETS:
        w.symlink(f"bin/{a}", "busybox")
    for name in sorted(modules):
        w.file(f"lib/modules/{name}.ko", modules[name])
    w.chardev("dev/console", 5, 1)
    w.file("init", initscript.INIT.encode(), 0o755)
    return w.getvalue()


def overlay_initramfs() -> bytes:
    """Only pciplan's /init (appended to a user-supplied initramfs)."""
    w = cpio.Writer()
    w.file("init", initscript.INIT.encode(), 0o755)
    return w.getvalue()


def image_for(arch: str, log: Log = _say, refresh: bool = False) -> GuestImage:
    """The Debian guest for ``arch`` (fetched and built on first use)."""
    spec = arch_spec(arch)
    kdir = fetch(spec, log, refresh)
    infos = {k: kmod.ModInfo.from_json(v) for k, v in json.loads((kdir / "modinfo.json").read_text()).items()}
    builtin = set((kdir / "builtin.txt").read_text().split())
    # uncompressed: the kernel copies it instead of inflating it, half a second less per boot
    # under TCG, for 17 MB instead of 5 MB on the host's disk
    initrd = kdir / f"initrd-{_initrd_hash()}.cpio"
    if not initrd.is_file():
        mods = {name: (kdir / "modules" / f"{name}.ko").read_bytes() for name in infos}
        data = build_initramfs((kdir / "busybox").read_bytes(), mods)
        for old in kdir.glob("initrd-*.cpio.gz"):   # what earlier pciplans cached
            old.unlink(missing_ok=True)
        tmp = initrd.with_name(initrd.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(initrd)
    kernel, fallback = kdir / "kernel", None
    if (kdir / "vmlinux").is_file():
        kernel, fallback = kdir / "vmlinux", kdir / "kernel"
    return GuestImage(spec, kernel, initrd, kdir.name, infos, builtin=builtin, fallback_kernel=fallback,
                      origin=f"Debian {kdir.name} ({spec.debarch}), busybox-static")


def _prune(root: Path, keep: Path, days: float = 7.0) -> None:
    """Forget combined user initramfs images not used for ``days``."""
    import time
    limit = time.time() - days * 86400
    for p in root.glob("initrd-*.cpio"):
        try:
            if p != keep and p.stat().st_mtime < limit:
                p.unlink()
        except OSError:
            pass


def image_from_files(arch: str, kernel: Path, initrd: Path | None, log: Log = _say) -> GuestImage:
    """A user-supplied kernel (and initramfs).  Without ``initrd`` the Debian busybox is used."""
    spec = arch_spec(arch)
    kernel = Path(kernel)
    if not kernel.is_file():
        raise GuestImageError(f"--kernel {kernel}: no such file")
    root = cache_root() / "user"
    root.mkdir(parents=True, exist_ok=True)
    if initrd is None:
        kdir = fetch(spec, log)
        data = build_initramfs((kdir / "busybox").read_bytes(), {})
        origin = f"{kernel} with Debian busybox-static (no modules: drivers must be built in)"
    else:
        initrd = Path(initrd)
        if not initrd.is_file():
            raise GuestImageError(f"--initrd {initrd}: no such file")
        base = initrd.read_bytes()
        # the kernel unpacks concatenated archives; a compressed one must end 4-byte aligned
        data = base + b"\0" * (-len(base) % 4) + overlay_initramfs()
        origin = f"{kernel} + {initrd} (pciplan /init appended)"
    h = hashlib.sha256(data).hexdigest()[:16]
    out = root / f"initrd-{h}.cpio"
    if not out.is_file():
        out.write_bytes(data)
    _prune(root, keep=out)
    return GuestImage(spec, kernel, out, "user", origin=origin)
