#!/usr/bin/env python3
"""Measure how many NICs each machine type takes: libvirt 9.0, pciplan, pciplan --capacity max.

For every (machine, NIC model) the guest is the smallest one: ``<domain
type='qemu'>`` with N ``<interface type='user'>`` of that model and nothing
else (libvirt adds its defaults: USB controller, memballoon, ...).

* libvirt: every N in 1..LIMIT is defined in the real daemon (through
  tests/support/libvirt_oracle.py, cached) -- no bisection, because libvirt's
  answer is not monotone for conventional PCI devices;
* pciplan (default options): the same N, planned; every answer must be
  libvirt's (accept/refuse, and the same layout when accepted);
* pciplan --capacity max: bisection up to the 256-bus limit, a check that no
  N below the ceiling is refused (every N up to LIMIT, then every 97th), and
  the plan at the ceiling defined in libvirt, which must take it unchanged.

Usage (from the repository root, with a libvirt daemon):
    .venv/bin/python scripts/ceilings.py [--jobs 8] [--only q35-e1000] > ceilings.txt
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pciplan  # noqa: E402
from support import layout, libvirt_oracle  # noqa: E402

#: name -> (machine, arch, NIC model, scan limit)
CASES = {
    "q35-virtio": ("q35", "x86_64", "virtio", 300),
    "q35-e1000": ("q35", "x86_64", "e1000", 1000),
    "pc-virtio": ("pc", "x86_64", "virtio", 1000),
    "pc-e1000": ("pc", "x86_64", "e1000", 1000),
    "virt-virtio": ("virt", "aarch64", "virtio", 300),
    "virt-e1000": ("virt", "aarch64", "e1000", 1000),
    "pseries-virtio": ("pseries", "ppc64", "virtio", 1000),
    "pseries-e1000": ("pseries", "ppc64", "e1000", 1000),
}


def nics_domain(machine: str, arch: str, model: str, n: int) -> str:
    nics = "".join(f"<interface type='user'><mac address='52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
                   f"{i & 255:02x}'/><model type='{model}'/></interface>" for i in range(n))
    return (f"<domain type='qemu'><name>cap-{machine}-{model}-{n}</name><memory>131072</memory>"
            f"<os><type arch='{arch}' machine='{machine}'>hvm</type></os><devices>{nics}</devices></domain>")


def plan(xml: str, **options):
    try:
        return pciplan.plan(xml, pciplan.Options(probe_host=False, **options))
    except pciplan.PlanError as err:
        return err


def windows(accepted: dict[int, bool]) -> list[tuple[int, int]]:
    """Runs of refused N below the largest accepted N, as (first, last)."""
    top = max((n for n, ok in accepted.items() if ok), default=0)
    out: list[tuple[int, int]] = []
    for n in sorted(accepted):
        if n > top or accepted[n]:
            continue
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def measure(name: str, jobs: int, oracle: libvirt_oracle.Oracle) -> dict:
    machine, arch, model, limit = CASES[name]
    t0 = time.time()

    def one(n: int):
        xml = nics_domain(machine, arch, model, n)
        ok, out = oracle.run(xml)
        mine = plan(xml)
        agree = (ok == isinstance(mine, str)) and (not ok or not layout.compare_xml(mine, out))
        if agree and not ok:
            agree = mine.reason in out
        return n, ok, agree

    with ThreadPoolExecutor(jobs) as pool:
        rows = list(pool.map(one, range(1, limit + 1)))
    libvirt = {n: ok for n, ok, _ in rows}
    disagree = [n for n, _, agree in rows if not agree]
    top = max((n for n, ok in libvirt.items() if ok), default=0)
    first_refused = min((n for n, ok in libvirt.items() if not ok), default=None)

    # --capacity max: bisection (then checked for refusals below the ceiling)
    def fits(n: int) -> bool:
        return isinstance(plan(nics_domain(machine, arch, model, n), capacity="max"), str)
    lo, hi = top, max(top, 1) * 2
    while fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    max_top = lo
    probes = list(range(1, min(limit, max_top) + 1)) + list(range(limit + 1, max_top + 1, 97))
    with ThreadPoolExecutor(jobs) as pool:
        refused_below = [n for n, ok in zip(probes, pool.map(fits, probes)) if not ok]
    text = plan(nics_domain(machine, arch, model, max_top), capacity="max")
    ok, out = oracle.run(text)
    max_unchanged = ok and not layout.compare_xml(text, out)
    return {
        "case": name, "limit": limit, "libvirt_max": top, "first_refused": first_refused,
        "windows": windows(libvirt), "pciplan_disagrees": disagree,
        "capacity_max": max_top, "capacity_max_refused_below": refused_below,
        "capacity_max_libvirt_unchanged": max_unchanged,
        "capacity_max_libvirt_error": "" if ok else out, "seconds": round(time.time() - t0),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--only", action="append", choices=sorted(CASES))
    a = ap.parse_args(argv)
    if not libvirt_oracle.available():
        print(libvirt_oracle.unavailable_reason(), file=sys.stderr)
        return 2
    oracle = libvirt_oracle.Oracle()
    for name in a.only or CASES:
        r = measure(name, a.jobs, oracle)
        print(r, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
