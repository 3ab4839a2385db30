#!/usr/bin/env python3
"""Differential test: random domains through libvirt and through pciplan.

    python tests/support/difftest.py -n 2000 --seed S --save-failures DIR

For every generated domain (see randomdomain.py) the local libvirt daemon is
asked what it makes of it (libvirt_oracle.py, cached) and the planner plans it:

* libvirt accepts -> the planner must produce the same PCI layout (layout.py);
* libvirt rejects -> the planner must raise its PlanError;
* on a subsample (--roundtrip), the planner's output is fed back to libvirt,
  which must accept it and give the same layout back.

Prints a summary per machine family and the failures grouped by the
signature of their first difference, one example line per group.  With
--save-failures DIR each failing case gets DIR/<family>-<index>/ holding
input.xml, libvirt.xml or libvirt-error.txt, pciplan.xml or
pciplan-error.txt, diff.txt (with the command that reproduces it).

--planner chooses what is tested: "pciplan" (default: pciplan.plan and
pciplan.PlanError), "oracle" (libvirt against itself, to check this
machinery), or "MODULE:FUNCTION[:EXCEPTION]".

Exit status: 0 when nothing failed, 1 when some case failed, 2 when libvirt
cannot be asked.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import importlib
import os
import random
import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support import layout as layoutmod                       # noqa: E402
from support import libvirt_oracle                           # noqa: E402
from support import randomdomain                             # noqa: E402

# statuses of one case
OK_SAME = "identical"                 # both accept, same layout
OK_REJECT = "both-reject"             # both reject
MISMATCH = "mismatch"                 # both accept, layouts differ
FALSE_ACCEPT = "planner-accepts"      # libvirt rejects, planner accepts
FALSE_REJECT = "planner-rejects"      # libvirt accepts, planner rejects
CRASH = "planner-crash"               # planner raised something other than its PlanError
ROUNDTRIP = "roundtrip"               # planner output fed to libvirt: rejected or changed
ORACLE_ERROR = "oracle-error"         # libvirt could not be asked (not a planner failure)
FAILURES = (MISMATCH, FALSE_ACCEPT, FALSE_REJECT, CRASH, ROUNDTRIP)


class _OracleRejected(Exception):
    """PlanError stand-in of the 'oracle' pseudo planner."""


def load_planner(spec: str, oracle: libvirt_oracle.Oracle | None = None):
    """spec -> (plan(xml_text) -> str, exception class meaning 'rejected')."""
    if spec == "oracle":
        if oracle is None:
            oracle = libvirt_oracle.Oracle()

        def plan(text: str) -> str:
            ok, out = oracle.run(text)
            if not ok:
                raise _OracleRejected(out)
            return out
        return plan, _OracleRejected
    if spec == "pciplan":
        mod = import_pciplan()
        return mod.plan, mod.PlanError
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"planner spec {spec!r}: want pciplan, oracle or MODULE:FUNCTION[:EXCEPTION]")
    mod = importlib.import_module(parts[0])
    exc = getattr(mod, parts[2]) if len(parts) == 3 else getattr(mod, "PlanError")
    return getattr(mod, parts[1]), exc


def import_pciplan():
    """Import pciplan, from the source tree when it is not installed."""
    try:
        return importlib.import_module("pciplan")
    except ImportError:
        src = TESTS_DIR.parent / "src"
        if not (src / "pciplan").is_dir():
            raise
        sys.path.insert(0, str(src))
        return importlib.import_module("pciplan")


def normalize_message(msg: str) -> str:
    """A libvirt/pciplan error message with numbers and names blanked, for grouping."""
    msg = msg.strip().splitlines()[-1] if msg.strip() else ""
    msg = re.sub(r"^error:\s*", "", msg)
    msg = re.sub(r"'[^']*'", "'…'", msg)
    msg = re.sub(r"\b[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b", "ADDR", msg)
    msg = re.sub(r"0x[0-9a-fA-F]+|\b\d+\b", "N", msg)
    return msg[:160]


_ERROR_CLASS_RE = re.compile(r"^(XML error|unsupported configuration|internal error|operation failed|"
                             r"invalid argument|configuration unsupported|argument unsupported|numerical overflow|"
                             r"Requested operation is not valid|Operation not supported): ")


def message_core(msg: str) -> str:
    """libvirt's message without 'error: ' and its error class, normalized."""
    return normalize_message(_ERROR_CLASS_RE.sub("", _strip_error(msg)))


def _strip_error(msg: str) -> str:
    return re.sub(r"^error:\s*", "", msg.strip().splitlines()[-1] if msg.strip() else "")


@dataclass
class CaseResult:
    dom: randomdomain.GeneratedDomain
    status: str = ""
    libvirt_ok: bool | None = None
    libvirt_text: str = ""
    plan_ok: bool | None = None
    plan_text: str = ""
    diffs: list = field(default_factory=list)
    roundtrip_done: bool = False
    roundtrip_text: str = ""
    message_match: bool | None = None     # both reject: same message (normalized)?
    libvirt_not_idempotent: bool = False  # round trip: libvirt changes its own output the same way
    plan_reason: str = ""                 # the planner error's reason (its message without location)
    signature: str = ""
    first_line: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in FAILURES


def run_case(dom, oracle, plan, plan_error, roundtrip: bool = False) -> CaseResult:
    res = CaseResult(dom=dom)
    t0 = time.monotonic()
    try:
        res.libvirt_ok, res.libvirt_text = oracle.run(dom.xml)
    except libvirt_oracle.OracleError as err:
        res.status, res.first_line = ORACLE_ERROR, str(err)
        res.signature = "oracle error: " + normalize_message(str(err))
        return res
    try:
        res.plan_text = plan(dom.xml)
        res.plan_ok = True
    except plan_error as err:
        res.plan_ok, res.plan_text = False, str(err)
        res.plan_reason = str(getattr(err, "reason", "") or err)
    except Exception as err:  # noqa: BLE001 - a crash is a finding, not a harness failure
        res.plan_ok = None
        tb = traceback.extract_tb(err.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        res.plan_text = "".join(traceback.format_exception(err))
        res.status = CRASH
        res.first_line = f"{type(err).__name__}: {err} (at {where})"
        res.signature = f"planner crash: {type(err).__name__} at {where}: {normalize_message(str(err))}"
        res.seconds = time.monotonic() - t0
        return res

    if res.libvirt_ok and res.plan_ok:
        try:
            res.diffs = layoutmod.compare_xml(res.libvirt_text, res.plan_text)
        except Exception as err:  # noqa: BLE001 - unparsable planner output
            res.status = CRASH
            res.first_line = f"planner output is not comparable: {err}"
            res.signature = f"planner output unparsable: {type(err).__name__}"
            return res
        if res.diffs:
            res.status = MISMATCH
            res.first_line = str(res.diffs[0])
            res.signature = "layout: " + layoutmod.first_diff_signature(res.diffs)
        else:
            res.status = OK_SAME
            if roundtrip:
                _roundtrip(res, oracle)
    elif res.libvirt_ok and not res.plan_ok:
        res.status = FALSE_REJECT
        res.first_line = f"libvirt accepts, planner rejects: {_strip_error(res.plan_text)}"
        res.signature = "planner rejects: " + normalize_message(res.plan_text)
    elif not res.libvirt_ok and res.plan_ok:
        res.status = FALSE_ACCEPT
        res.first_line = f"planner accepts, libvirt rejects: {_strip_error(res.libvirt_text)}"
        res.signature = "libvirt rejects: " + normalize_message(res.libvirt_text)
    else:
        res.status = OK_REJECT
        res.message_match = message_core(res.libvirt_text) == message_core(res.plan_reason)
    if roundtrip and res.status == MISMATCH:
        _roundtrip(res, oracle, keep_status=True)
    res.seconds = time.monotonic() - t0
    return res


def _roundtrip(res: CaseResult, oracle, keep_status: bool = False) -> None:
    """Feed the planner's output to libvirt: it must come back unchanged."""
    res.roundtrip_done = True
    try:
        ok, text = oracle.run(res.plan_text)
    except libvirt_oracle.OracleError as err:
        res.roundtrip_text = f"oracle error: {err}"
        return
    res.roundtrip_text = text
    if keep_status:
        return
    if not ok:
        res.status = ROUNDTRIP
        res.first_line = f"libvirt rejects the planner's output: {_strip_error(text)}"
        res.signature = "round trip rejected: " + normalize_message(text)
        return
    diffs = layoutmod.compare_xml(res.plan_text, text)
    if diffs and res.libvirt_ok:
        # libvirt is not always idempotent (e.g. s390x: bridges it adds get their zPCI ids only
        # on the next define); only a change libvirt does not make to its own output counts.
        try:
            ok2, text2 = oracle.run(res.libvirt_text)
        except libvirt_oracle.OracleError:
            ok2 = False
        if ok2 and not layoutmod.compare_xml(text2, text):
            res.libvirt_not_idempotent = True
            return
    if diffs:
        res.status = ROUNDTRIP
        res.diffs = diffs
        res.first_line = f"libvirt changes the planner's output: {diffs[0]}"
        res.signature = "round trip changed: " + layoutmod.first_diff_signature(diffs)


def run_many(doms, oracle, plan, plan_error, jobs: int = 2, roundtrip: float = 0.0,
             progress=None) -> list[CaseResult]:
    """Run every domain; `roundtrip` is the fraction of cases also round-tripped."""
    results: list[CaseResult | None] = [None] * len(doms)
    lock = threading.Lock()
    done = [0]

    def one(i):
        dom = doms[i]
        rt = roundtrip > 0 and random.Random(f"rt:{dom.seed}:{dom.index}").random() < roundtrip
        r = run_case(dom, oracle, plan, plan_error, roundtrip=rt)
        results[i] = r
        if progress:
            with lock:
                done[0] += 1
                progress(done[0], len(doms), r)

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        for f in [ex.submit(one, i) for i in range(len(doms))]:
            f.result()
    return results  # type: ignore[return-value]


# -- reporting -----------------------------------------------------------------------------
def summary_table(results: list[CaseResult]) -> str:
    fams = sorted({r.dom.family for r in results}, key=lambda f: list(randomdomain.FAMILIES).index(f))
    cols = ("family", "n", "lv-acc", "lv-rej", "identical", "both-rej", "mismatch", "pl-acc*", "pl-rej*",
            "crash", "rtrip", "rt-fail")
    rows = []
    for fam in fams + ["TOTAL"]:
        rs = [r for r in results if fam == "TOTAL" or r.dom.family == fam]
        c = collections.Counter(r.status for r in rs)
        rows.append((fam, len(rs), sum(1 for r in rs if r.libvirt_ok), sum(1 for r in rs if r.libvirt_ok is False),
                     c[OK_SAME], c[OK_REJECT], c[MISMATCH], c[FALSE_ACCEPT], c[FALSE_REJECT], c[CRASH],
                     sum(1 for r in rs if r.roundtrip_done), c[ROUNDTRIP]))
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
    line = lambda vals: "  ".join(str(v).rjust(w) if i else str(v).ljust(w)  # noqa: E731
                                  for i, (v, w) in enumerate(zip(vals, widths)))
    out = [line(cols), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out.append("(pl-acc*: planner accepts what libvirt rejects; pl-rej*: planner rejects what libvirt "
               "accepts; rtrip: round-tripped cases)")
    return "\n".join(out)


def grouped_failures(results: list[CaseResult], examples: int = 1) -> str:
    groups: dict[str, list[CaseResult]] = collections.defaultdict(list)
    for r in results:
        if r.failed or r.status == ORACLE_ERROR:
            groups[f"{r.status}: {r.signature}"].append(r)
    if not groups:
        return "no failures"
    out = [f"{sum(len(v) for v in groups.values())} failing cases in {len(groups)} groups "
           f"(by first difference):"]
    for sig, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        fams = collections.Counter(r.dom.family for r in rs)
        famtxt = ", ".join(f"{f} {n}" for f, n in fams.most_common())
        out.append(f"{len(rs):4d}x {sig}  [{famtxt}]")
        for r in rs[:examples]:
            out.append(f"        e.g. --seed {r.dom.seed} --index {r.dom.index} ({r.dom.family}/{r.dom.style}): "
                       f"{r.first_line}")
    return "\n".join(out)


def reject_message_stats(results: list[CaseResult]) -> str:
    both = [r for r in results if r.status == OK_REJECT]
    if not both:
        return ""
    same = sum(1 for r in both if r.message_match)
    unknown = sum(1 for r in both if r.message_match is None)
    return (f"both reject: {same}/{len(both) - unknown} with libvirt's message (numbers and quoted names "
            f"aside)" + (f"; {unknown} whose message libvirt does not give reliably" if unknown else ""))


def message_differences(results: list[CaseResult],
                        example=lambda r: f"--seed {r.dom.seed} --index {r.dom.index}") -> str:
    """Both reject, but with different messages: grouped, one example each (named by
    ``example``: how to run it again)."""
    groups: dict[str, list[CaseResult]] = collections.defaultdict(list)
    for r in results:
        if r.status == OK_REJECT and r.message_match is False:
            groups[message_core(r.libvirt_text)].append(r)
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        r = rs[0]
        out.append(f"{len(rs):4d}x libvirt: {_strip_error(r.libvirt_text)}")
        out.append(f"      pciplan: {r.plan_reason}  ({example(r)})")
    return "\n".join(out)


def save_case(r: CaseResult, root: Path, argv_hint: str = "") -> Path:
    d = root / f"{r.dom.family}-{r.dom.seed}-{r.dom.index}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "input.xml").write_text(r.dom.xml)
    if r.libvirt_ok:
        (d / "libvirt.xml").write_text(r.libvirt_text)
    elif r.libvirt_ok is False:
        (d / "libvirt-error.txt").write_text(r.libvirt_text + "\n")
    if r.plan_ok:
        (d / "pciplan.xml").write_text(r.plan_text)
    elif r.plan_text:
        (d / "pciplan-error.txt").write_text(r.plan_text + "\n")
    if r.roundtrip_done:
        (d / "roundtrip-libvirt.txt").write_text(r.roundtrip_text)
    lines = [f"status: {r.status}", f"family: {r.dom.family} ({r.dom.arch} {r.dom.machine}), style {r.dom.style}",
             f"notes: {', '.join(r.dom.notes) or '-'}",
             f"reproduce: python tests/support/difftest.py --seed {r.dom.seed} --index {r.dom.index}"
             f"{argv_hint}",
             f"first: {r.first_line}", ""]
    lines += [str(x) for x in r.diffs]
    (d / "diff.txt").write_text("\n".join(lines) + "\n")
    return d


def _generate(seed, index, spread, kvm, style):
    if style is None:
        return randomdomain.generate(seed, index, spread, kvm)
    d = randomdomain.generate(seed, index, spread, kvm)      # draws the family
    styles = {st for st, _ in randomdomain.STYLES[randomdomain.FAMILIES[d.family].kind]}
    if style not in styles:
        return d
    return randomdomain.generate(seed, index, spread, kvm, family=d.family, style=style)


def _versions(oracle) -> str:
    v = oracle.version()
    lib = re.search(r"Using library: libvirt ([\d.]+)", v)
    hv = re.search(r"Running hypervisor: (\S+ [\d.]+)", v)
    return f"libvirt {lib.group(1) if lib else '?'}, {hv.group(1) if hv else '?'}"



class Progress:
    """The probes' progress line on a terminal (stderr): cases done of all and seconds since
    ``t0``, every ``every`` cases and at the last; nothing when stderr is no terminal."""

    def __init__(self, t0: float, every: int = 20, quiet: bool = False) -> None:
        self.t0, self.every = t0, every
        self.tty = sys.stderr.isatty() and not quiet

    def __call__(self, done: int, total: int, *_result) -> None:
        if self.tty and (done % self.every == 0 or done == total):
            print(f"\r  {done}/{total} ({time.monotonic() - self.t0:.0f}s)", end="", file=sys.stderr,
                  flush=True)

    def end(self) -> None:
        if self.tty:
            print(file=sys.stderr)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=500, help="number of domains (default 500)")
    ap.add_argument("--seed", default=None, help="stream seed (default: random, printed)")
    ap.add_argument("--index", type=int, action="append", default=None,
                    help="run only domain INDEX of the stream (repeatable); prints its details")
    ap.add_argument("--start", type=int, default=0, help="first index (default 0)")
    ap.add_argument("--spread", default=None, help="family weights, e.g. 'q35=3,pc=1' (default: "
                    + ",".join(f"{k}={v}" for k, v in randomdomain.DEFAULT_SPREAD.items()) + ")")
    ap.add_argument("--family", default=None, choices=sorted(randomdomain.FAMILIES),
                    help="only this family (same as --spread FAMILY=1)")
    ap.add_argument("--style", default=None,
                    choices=sorted({st for v in randomdomain.STYLES.values() for st, _ in v}),
                    help="only this style of domain (families that lack it fall back to a drawn style)")
    ap.add_argument("--planner", default=os.environ.get("PCIPLAN_DIFF_PLANNER", "pciplan"),
                    help="pciplan (default), oracle, or MODULE:FUNCTION[:EXCEPTION]")
    ap.add_argument("-j", "--jobs", type=int, default=max(2, os.cpu_count() or 2))
    ap.add_argument("--roundtrip", type=float, default=0.2,
                    help="fraction of identical cases whose planner output is fed back to libvirt (default 0.2)")
    ap.add_argument("--save-failures", metavar="DIR", default=None)
    ap.add_argument("--examples", type=int, default=1, help="example lines per failure group")
    ap.add_argument("--cache", default=None, help="oracle cache dir ('off' to disable)")
    ap.add_argument("--no-kvm", action="store_true", help="never generate type='kvm'")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    ap.add_argument("--messages", action="store_true",
                    help="also list the cases both reject with different messages (informational)")
    a = ap.parse_args(argv)

    if not libvirt_oracle.available():
        print(f"difftest: cannot ask libvirt: {libvirt_oracle.unavailable_reason()}", file=sys.stderr)
        print("difftest: run scripts/setup-libvirt.sh (as root) first", file=sys.stderr)
        return 2
    cache = a.cache
    if cache is not None and cache.lower() in ("off", "none", "no", "0"):
        cache = False
    oracle = libvirt_oracle.Oracle(cache_dir=cache)
    try:
        plan, plan_error = load_planner(a.planner, oracle)
    except Exception as err:  # noqa: BLE001
        print(f"difftest: cannot load planner {a.planner!r}: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    seed = a.seed if a.seed is not None else str(random.randrange(10**9))
    spread = f"{a.family}=1" if a.family else a.spread
    kvm = False if a.no_kvm else None
    indexes = a.index if a.index else range(a.start, a.start + a.n)
    doms = [_generate(seed, i, spread, kvm, a.style) for i in indexes]
    print(f"difftest: seed {seed}, {len(doms)} domains, planner {a.planner}, {a.jobs} jobs, "
          f"{_versions(oracle)}", flush=True)

    t0 = time.monotonic()
    progress = Progress(t0, every=10, quiet=a.quiet)
    roundtrip = 1.0 if a.index else a.roundtrip      # single cases: always round-trip
    results = run_many(doms, oracle, plan, plan_error, jobs=a.jobs, roundtrip=roundtrip, progress=progress)
    progress.end()
    elapsed = time.monotonic() - t0
    print(summary_table(results))
    rm = reject_message_stats(results)
    if rm:
        print(rm)
    ni = [r for r in results if r.libvirt_not_idempotent]
    if ni:
        print(f"round trip: libvirt changed its own output on a second define in {len(ni)} case(s) "
              f"(not counted as failures), e.g. --seed {ni[0].dom.seed} --index {ni[0].dom.index}")
    if a.messages:
        md = message_differences(results)
        if md:
            print(md)
    print(f"oracle: {oracle.misses} asked, {oracle.hits} from cache; {elapsed:.1f}s")
    print()
    print(grouped_failures(results, a.examples))
    failed = [r for r in results if r.failed]
    hint = f" --planner {a.planner}" if a.planner != "pciplan" else ""
    if a.style:
        hint += f" --style {a.style}"
    if a.family:
        hint += f" --family {a.family}"
    elif a.spread:
        hint += f" --spread '{a.spread}'"
    if a.save_failures and failed:
        root = Path(a.save_failures)
        for r in failed:
            save_case(r, root, hint)
        print(f"\nsaved {len(failed)} failing cases under {root}/<family>-<seed>-<index>/")
    if a.index and len(doms) <= 3:
        for r in results:
            print(f"\n=== index {r.dom.index}: {r.status} ({r.dom.family}/{r.dom.style}, notes: "
                  f"{', '.join(r.dom.notes) or '-'})")
            for d in r.diffs:
                print(f"  {d}")
            if r.libvirt_ok is False:
                print(f"  libvirt: {_strip_error(r.libvirt_text)}")
            if r.plan_ok is False or r.status == CRASH:
                print(f"  planner: {r.plan_text.strip().splitlines()[-1] if r.plan_text.strip() else ''}")
    if any(r.status == ORACLE_ERROR for r in results):
        print("difftest: some cases could not be asked to libvirt (see oracle error groups)", file=sys.stderr)
    print(f"\nseed {seed}: {len(failed)} failing of {len(results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
