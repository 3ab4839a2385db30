"""Prove a plan inside a real Linux guest (``pciplan verify --guest``).

``verify_guest(topology)`` boots a small Debian kernel + busybox initramfs
under QEMU (TCG, ``-nodefaults``, ``-kernel``/``-initrd``, serial console,
bounded by a timeout and always cleaned up) on the QEMU command line
``qemuargs`` derives from the plan, lets the guest's ``/init`` load the
drivers of the planned devices and report every PCI function it enumerated,
and compares that with the plan (``check``): the address of every planned
function in the guest's bus numbering, its vendor/device IDs, and the
interrupt mode its driver ended up with (MSI-X for every virtio function and
PCI Express endpoint).

Pieces: ``image`` (Debian kernel/busybox cache, initramfs), ``cpio``,
``kmod`` (module dependencies), ``drivers`` (QEMU device -> IDs, Linux
modules), ``initscript`` (the guest's /init), ``boot`` (running QEMU),
``report`` (parsing the console), ``check`` (the comparison).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PciplanError
from ..qemuargs import QemuConfig, build
from ..topology import Topology
from . import boot, check, image, report
from .image import GuestImage, GuestImageError

__all__ = ["GuestError", "GuestVerification", "verify_guest", "guest_argv", "format_report",
           "image_for", "GuestImageError", "DEFAULT_TIMEOUT", "supported"]

#: seconds a guest may run (boot, drivers, report, power off) before it is killed
DEFAULT_TIMEOUT = 180.0
#: guest RAM when the plan does not ask for a size
DEFAULT_MEMORY = "512M"


class GuestError(PciplanError):
    """The guest could not be run (no kernel for the arch, QEMU refused, no report): exit 2."""

    exit_status = 2
    #: the guest's console, when it ran
    console: str = ""


def supported(arch: str) -> bool:
    try:
        image.arch_spec(arch)
        return True
    except GuestImageError:
        return False


def image_for(arch: str, kernel: str | Path | None = None, initrd: str | Path | None = None,
              log=None) -> GuestImage:
    """The guest image: Debian's (fetched once) or the user's ``kernel``/``initrd``."""
    kwargs = {"log": log} if log is not None else {}
    try:
        if kernel is not None:
            return image.image_from_files(arch, Path(kernel), Path(initrd) if initrd else None, **kwargs)
        if initrd is not None:
            raise GuestImageError("--initrd needs --kernel")
        return image.image_for(arch, **kwargs)
    except GuestImageError as err:
        raise GuestError(str(err), "guest") from None


def guest_argv(cfg: QemuConfig, img: GuestImage, modules: list[str], append: str = "",
               qemu: str | None = None, kernel: Path | None = None) -> list[str]:
    """The QEMU command line: the plan's devices plus kernel, initramfs and command line.

    The serial console options are added by ``boot.run``.
    """
    order = img.load_order(modules).order
    if not img.modules:
        order = ["ALL"] + order      # a user image: load what it has (see initscript)
    cmdline = [f"console={img.arch.console}", "panic=-1", "quiet", *img.arch.cmdline]
    if order:
        cmdline.append("pciplan.load=" + ",".join(order))
    if append:
        cmdline.append(append)
    _enlarge_memory(cfg)
    extra = ["-smp", "1", "-kernel", str(kernel or img.kernel), "-initrd", str(img.initrd),
             "-append", " ".join(cmdline)]
    if cfg.memory is None:
        extra = ["-m", DEFAULT_MEMORY] + extra
    argv = cfg.argv(extra=extra, accel="tcg")
    # the guest kernel is built for the spec's arch (an i686 guest boots on qemu-system-x86_64)
    argv[0] = qemu or (cfg.emulator if cfg.arch == img.arch.name else img.arch.qemu)
    if "-cpu" not in argv and img.arch.cpu:
        argv[1:1] = ["-cpu", img.arch.cpu]
    return argv


def _mib(text: str) -> int | None:
    text = text.strip().upper()
    mult = {"M": 1, "G": 1024, "K": 1 / 1024}
    try:
        if text and text[-1] in mult:
            return int(float(text[:-1]) * mult[text[-1]])
        return int(text) // (1024 * 1024)
    except ValueError:
        return None


def _enlarge_memory(cfg: QemuConfig, minimum: int = 512) -> None:
    """Give the guest at least ``minimum`` MiB of boot RAM (the Debian kernel and initramfs need it).

    ``qemuargs`` sizes RAM for a paused QEMU (128 MiB, per NUMA node); the
    sizes of the NUMA nodes' memory backends and of ``-m`` (keeping its
    slots and the hot-pluggable room above it) are scaled up together.
    """
    if cfg.memory is None:
        return
    parts = cfg.memory.split(",")
    base = _mib(parts[0])
    if base is None or base >= minimum:
        return
    nodes = [i for i, (opt, val) in enumerate(cfg.objects)
             if opt == "-object" and val.startswith("memory-backend-ram,id=ram-node")]
    if nodes:
        per = -(-minimum // len(nodes))
        for i in nodes:
            opt, val = cfg.objects[i]
            cfg.objects[i] = (opt, ",".join(f"size={per}M" if p.startswith("size=") else p
                                            for p in val.split(",")))
        new = per * len(nodes)
    else:
        new = minimum
    out = [f"{new}M"]
    for p in parts[1:]:
        if p.startswith("maxmem="):
            mm = _mib(p[len("maxmem="):])
            if mm is not None:
                p = f"maxmem={mm - base + new}M"
        out.append(p)
    cfg.memory = ",".join(out)


@dataclass
class GuestVerification:
    result: check.Result
    guest: report.GuestReport
    boot: boot.Boot
    image: GuestImage
    modules: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result.ok


def verify_guest(topo: Topology, *, img: GuestImage | None = None, append: str = "",
                 timeout: float = DEFAULT_TIMEOUT, qemu: str | None = None,
                 boot_topology: Topology | None = None, log=None) -> GuestVerification:
    """Boot a guest on the plan of ``topo`` and check it from inside.

    ``boot_topology`` boots another plan's QEMU command line but checks the
    guest against ``topo`` (negative controls: a plan edited after the fact).
    Raises ``GuestError`` when no guest report could be had at all.
    """
    cfg = build(topo)
    boot_cfg = build(boot_topology) if boot_topology is not None else cfg
    if img is None:
        img = image_for(topo.arch, log=log)
    exps = check.expectations(boot_cfg)
    modules = check.driver_modules(exps)
    argv = guest_argv(boot_cfg, img, modules, append, qemu)
    if shutil.which(argv[0]) is None and not os.access(argv[0], os.X_OK):
        raise GuestError(f"QEMU emulator '{argv[0]}' not found", "guest")
    b = boot.run(argv, timeout)
    if img.fallback_kernel is not None and not b.console and "kernel too old" in b.stderr:
        # an old x86 machine type (before QEMU 4.0's PVH boot): boot the compressed kernel
        argv = guest_argv(boot_cfg, img, modules, append, qemu, kernel=img.fallback_kernel)
        b = boot.run(argv, timeout)
    guest = report.parse(b.console)
    if not guest.devices:
        if b.timed_out:
            why = f"the guest did not report within {timeout:g} s"
        elif b.returncode not in (0, None) and b.qemu_error:
            why = f"QEMU failed: {b.qemu_error}"
        else:
            why = "the guest printed no PCI report"
        tail = "\n".join(b.console.strip().splitlines()[-5:])
        err = GuestError(why + (f"; last console lines:\n{tail}" if tail else ""), "guest")
        err.console = b.console
        raise err
    result = check.compare(topo, cfg, guest)
    if b.timed_out and guest.complete:
        result.problems.append(f"the guest reported but did not power off within {timeout:g} s")
    for m in guest.insmod_failed + guest.module_missing:
        result.problems.append(f"guest driver module {m} could not be loaded")
    return GuestVerification(result, guest, b, img, modules)


def _col(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def format_report(v: GuestVerification, verbose: bool = False) -> str:
    """The human-readable report: one row per planned function, then the verdict."""
    r, g, b = v.result, v.guest, v.boot
    machine = ""
    if "-machine" in b.argv:
        machine = b.argv[b.argv.index("-machine") + 1]
    lines = [f"guest: {v.image.origin}; {Path(b.argv[0]).name} -machine {machine}, TCG; "
             f"kernel {g.kernel or '?'}, report after {g.ended or 0:.1f} s guest uptime, "
             f"{b.elapsed:.1f} s wall"]
    if r.bus_map:
        lines.append("bus numbers (plan index -> guest): " +
                     ", ".join(f"{i}->{n}" for i, n in sorted(r.bus_map.items())))
    rows = [["PLANNED", "SEEN", "ID", "DRIVER", "IRQ", "RESULT", "DEVICE"]]
    for row in r.rows:
        e, s = row.expect, row.seen
        dev = f"{e.element} [{e.driver}" + (f", stand-in for {e.stand_in_for}" if e.stand_in_for else "") + "]"
        rows.append([
            str(e.address),
            report.fmt(s.addr) if s is not None else "-",
            s.ids if s is not None else "-",
            s.driver if s is not None else "-",
            s.mode if s is not None else "-",
            row.status if row.ok else "FAIL: " + row.status,
            dev,
        ])
    for d, name in r.chipset:
        rows.append(["(chipset)", report.fmt(d.addr), d.ids, d.driver, d.mode, "-", name])
    for d in r.unexpected:
        rows.append(["(not planned)", report.fmt(d.addr), d.ids, d.driver, d.mode, "FAIL", "?"])
    lines += _col(rows)
    if verbose:
        lines.append("config-space capabilities:")
        for row in r.rows:
            if row.seen is not None:
                lines.append(f"  {report.fmt(row.seen.addr)}  {row.seen.caps.summary()}")
    fails = r.failures()
    endpoints = [row for row in r.rows if row.expect.needs_msix]
    on_msix = sum(1 for row in endpoints if row.seen is not None and row.seen.mode == "MSI-X")
    others = [row for row in endpoints if row.ok and row.seen is not None and row.seen.mode != "MSI-X"]
    if not fails:
        msg = (f"OK: {len(r.rows)} planned functions where planned; {on_msix} of {len(endpoints)} "
               f"virtio/PCIe endpoints on MSI-X")
        if others:
            msg += (f", {len(others)} not (" + ", ".join(sorted({row.status for row in others})) + ")")
        unseen = [row for row in r.rows if row.status.startswith("unseen")]
        if unseen:
            msg += (f"; {len(unseen)} not visible to a guest (a slot without function 0, or behind "
                    "one: `pciplan check` warns of it)")
        lines.append(msg)
    else:
        lines.append(f"FAILED: {len(fails)} problem(s)")
        lines += [f"  {f}" for f in fails]
        if r.vectors_exhausted():
            lines.append(f"  (hint: {r.msi_vectors()} MSI/MSI-X vectors are in use and other devices with "
                         "MSI-X fell back to INTx: the guest probably ran out of MSI vectors, which is "
                         "not a placement problem)")
    return "\n".join(lines)
