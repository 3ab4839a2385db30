"""pciplan against libvirt 9.0: round trip, cold CLI, in-process API, scaling, lxml floor.

Run it as ``bench/run`` (see ``bench/run --help``).  Sections:

1. **round trip** -- on the same inputs, interleaved round by round:
   libvirt's round trip through ``virsh`` (``define`` + ``dumpxml --inactive``
   + ``undefine``, three processes, as a script would do it), the same through
   libvirt-python in one process (connection opened once), the pciplan CLI as
   a cold process (``pciplan plan FILE``) and the in-process API
   (``pciplan.plan(text)``).  Medians, and ratios pciplan / libvirt (below 1:
   pciplan is faster).  pciplan's answer is checked against libvirt's (same PCI
   layout, by the conformance corpus' ``pcicompare``).
2. **CLI start-up** -- where a cold ``pciplan plan`` spends its time: the bare
   interpreter, ``import lxml.etree``, ``import pciplan.api`` (what planning
   loads), the whole command; with the bytecode cache (as installed) and
   without it (every module compiled on every run).
3. **scaling** -- in-process planning time against the number of PCI
   endpoints, up to libvirt's limits and, with ``--capacity max``, up to the
   256 PCI bus numbers; the exponent of a log-log fit (1.0 is linear).
4. **planning vs lxml** -- ``pciplan.plan`` against the I/O floor of any tool
   that edits the XML: lxml parsing the input and serializing the result.

Timings are wall-clock (``time.perf_counter``) medians over rounds; every
method runs once per round on every input, in turn, so that a busy machine
slows all of them alike.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import domains  # noqa: E402

CORPUS_TOOLS = Path("/work/shared/conformance")
DEFAULT_URI = os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"

#: the largest inputs libvirt 9.0 accepts (extra endpoints over the base guest);
#: one more is refused (see ``limits``)
LIBVIRT_MAX_EXTRA = {"q35": 217, "pc": 919}
#: pc with --capacity max: the most extra endpoints within 256 PCI buses
CAPACITY_MAX_EXTRA = 7650


# ---- small helpers --------------------------------------------------------------------
def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt_ms(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "-"
    r = a / b
    return f"{r:.3f}x" if r < 0.1 else f"{r:.2f}x"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def say(text: str = "") -> None:
    print(text, flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# ---- inputs ---------------------------------------------------------------------------
@dataclass
class Input:
    label: str
    kind: str
    extra: int
    xml: str = ""
    path: Path | None = None
    name: str = ""

    @property
    def endpoints(self) -> int:
        return domains.endpoint_count(self.kind, self.extra)


def make_inputs(spec: list[tuple[str, str, int]], tmp: Path, tag: str) -> list[Input]:
    out = []
    for label, kind, extra in spec:
        name = f"pciplan-bench-{tag}-{label}"
        xml = domains.endpoints(kind, extra, name=name)
        # a fresh UUID per run: never clashes with a domain left by another run
        xml = xml.replace(xml[xml.index("<uuid>") + 6:xml.index("</uuid>")], str(uuid.uuid4()), 1)
        path = tmp / f"{label}.xml"
        path.write_text(xml)
        out.append(Input(label, kind, extra, xml, path, name))
    return out


# ---- libvirt ----------------------------------------------------------------------------
class Virsh:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.virsh = shutil.which("virsh")

    def available(self) -> str | None:
        """None when the daemon answers, else why not."""
        if self.virsh is None:
            return "virsh is not installed"
        try:
            p = subprocess.run([self.virsh, "-c", self.uri, "version"], capture_output=True, text=True,
                               timeout=20)
        except subprocess.TimeoutExpired:
            return f"no answer from {self.uri} within 20 s"
        if p.returncode != 0:
            return f"no libvirt daemon answers at {self.uri}: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}"
        return None

    def version(self) -> str:
        p = subprocess.run([self.virsh, "-c", self.uri, "version"], capture_output=True, text=True)
        return " / ".join(line.strip() for line in p.stdout.splitlines() if line.strip())

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([self.virsh, "-c", self.uri, *args], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"virsh {' '.join(args)}: {p.stderr.strip()}")
        return p

    def round_trip(self, inp: Input) -> tuple[float, str | None]:
        """(seconds, planned XML or None when libvirt refused it)."""
        t = time.perf_counter()
        p = self._run("define", str(inp.path), check=False)
        if p.returncode != 0:
            return time.perf_counter() - t, None
        out = self._run("dumpxml", "--inactive", inp.name).stdout
        self._run("undefine", inp.name)
        return time.perf_counter() - t, out

    def cleanup(self, inputs: list[Input]) -> None:
        for inp in inputs:
            self._run("undefine", inp.name, check=False)


class LibvirtPython:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.conn = None
        self.why: str | None = None
        try:
            import libvirt
        except ImportError:
            self.why = "libvirt-python is not installed (pip install libvirt-python)"
            return
        libvirt.registerErrorHandler(lambda *_: None, None)  # no error lines on stderr
        try:
            self.conn = libvirt.open(uri)
        except libvirt.libvirtError as err:
            self.why = f"cannot open {uri}: {err}"
        self.libvirt = libvirt

    def round_trip(self, inp: Input) -> tuple[float, str | None]:
        lv = self.libvirt
        t = time.perf_counter()
        try:
            dom = self.conn.defineXML(inp.xml)
        except lv.libvirtError:
            return time.perf_counter() - t, None
        out = dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
        dom.undefine()
        return time.perf_counter() - t, out


# ---- pciplan ---------------------------------------------------------------------------------
def python_bin() -> str:
    return sys.executable


def pciplan_bin() -> list[str]:
    script = Path(sys.executable).parent / "pciplan"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pciplan"]


def cli_env(cache: Path | None) -> dict[str, str]:
    """The environment of a cold CLI run: with ``cache``, bytecode is cached there
    (as in any installation); without, nothing is cached and every module is
    compiled on every run."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("PCIPLAN_DEBUG", None)
    if cache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def no_cache_env(empty: Path) -> dict[str, str]:
    env = cli_env(empty)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run(args, capture_output=True, env=env)
    return time.perf_counter() - t, p


def api_time(text: str, min_seconds: float) -> tuple[float, str]:
    """Mean seconds of pciplan.plan(text) over enough calls to last ``min_seconds``."""
    import pciplan

    t0 = time.perf_counter()
    out = pciplan.plan(text)
    first = time.perf_counter() - t0
    n = max(1, min(200, int(min_seconds / max(first, 1e-6))))
    t0 = time.perf_counter()
    for _ in range(n):
        pciplan.plan(text)
    return (time.perf_counter() - t0) / n, out


def same_layout(expected: str, actual: str, tmp: Path) -> str:
    """'yes' / 'NO: first difference' / '?' (no comparison tool)."""
    if not (CORPUS_TOOLS / "pcicompare.py").exists():
        return "?"
    sys.path.insert(0, str(CORPUS_TOOLS))
    import pcicompare

    a, b = tmp / "expected.xml", tmp / "actual.xml"
    a.write_text(expected)
    b.write_text(actual)
    diffs = pcicompare.compare(pcicompare.layout(str(a)), pcicompare.layout(str(b)))
    return "yes" if not diffs else f"NO: {diffs[0]}"


# ---- sections ----------------------------------------------------------------------------------
@dataclass
class Results:
    round_trip: dict = field(default_factory=dict)
    startup: dict = field(default_factory=dict)
    scaling: dict = field(default_factory=dict)
    lxml: dict = field(default_factory=dict)
    limits: list = field(default_factory=list)
    libvirt_skipped: str | None = None
    libvirt_python_skipped: str | None = None


def section_round_trip(inputs: list[Input], rounds: int, virsh: Virsh | None, lvpy: LibvirtPython | None,
                       cache: Path, tmp: Path, res: Results, api_seconds: float) -> None:
    say("== round trip: libvirt 9.0 vs pciplan (median ms over %d rounds, interleaved) ==" % rounds)
    env = cli_env(cache)
    cli = pciplan_bin()
    for inp in inputs:  # warm the bytecode cache, the daemon and the imports of the API
        run_cli(cli + ["plan", str(inp.path)], env)
        api_time(inp.xml, 0)
    times: dict[str, dict[str, list[float]]] = {i.label: {"virsh": [], "py": [], "cli": [], "api": []}
                                                 for i in inputs}
    answers: dict[str, dict[str, str | None]] = {i.label: {} for i in inputs}
    for _ in range(rounds):
        for inp in inputs:
            t = times[inp.label]
            if virsh is not None:
                dt, out = virsh.round_trip(inp)
                t["virsh"].append(dt)
                answers[inp.label]["virsh"] = out
            if lvpy is not None and lvpy.conn is not None:
                dt, out = lvpy.round_trip(inp)
                t["py"].append(dt)
                answers[inp.label]["py"] = out
            dt, p = run_cli(cli + ["plan", str(inp.path)], env)
            if p.returncode != 0:
                raise RuntimeError(f"pciplan plan {inp.path}: exit {p.returncode}: {p.stderr.decode()[-300:]}")
            t["cli"].append(dt)
            answers[inp.label]["cli"] = p.stdout.decode()
            dt, out = api_time(inp.xml, api_seconds)
            t["api"].append(dt)
            answers[inp.label]["api"] = out
    rows = []
    for inp in inputs:
        t = {k: median(v) * 1000 if v else None for k, v in times[inp.label].items()}
        a = answers[inp.label]
        libvirt_answer = a.get("virsh") or a.get("py")
        if a["cli"] != a["api"] + ("" if a["api"].endswith("\n") else "\n"):
            same = "NO: CLI and API differ"
        elif libvirt_answer is None:
            same = "-" if virsh is None and (lvpy is None or lvpy.conn is None) else "libvirt refused"
        else:
            same = same_layout(libvirt_answer, a["api"], tmp)
        row = [inp.label, str(domains.device_count(inp.xml)), str(inp.endpoints),
               fmt_ms(t["virsh"]), fmt_ms(t["py"]), fmt_ms(t["cli"]), fmt_ms(t["api"]),
               fmt_ratio(t["cli"], t["virsh"]), fmt_ratio(t["api"], t["virsh"]), fmt_ratio(t["api"], t["py"]),
               same]
        rows.append(row)
        res.round_trip[inp.label] = {"devices": domains.device_count(inp.xml), "endpoints": inp.endpoints,
                                     **{k: v for k, v in t.items()}, "same_layout": same,
                                     "samples_ms": {k: [x * 1000 for x in v] for k, v in times[inp.label].items()}}
    say(table(["input", "devices", "endpoints", "virsh RT", "py RT", "CLI", "API",
               "CLI/virsh", "API/virsh", "API/py", "same layout as libvirt"], rows))
    say("virsh RT: virsh define + dumpxml --inactive + undefine (3 processes); py RT: the same through "
        "libvirt-python, one connection;")
    say("CLI: a cold `pciplan plan FILE` process (bytecode cached); API: pciplan.plan(text) in process.")
    say("Ratios are pciplan / libvirt: below 1.00x pciplan is faster (0.05x = 20 times faster).")
    say()


def section_startup(rounds: int, cache: Path, tmp: Path, typical: Input, res: Results) -> None:
    say("== CLI start-up: where a cold `pciplan plan` spends its time (median ms over %d runs) ==" % rounds)
    empty = tmp / "empty-pycache"
    empty.mkdir(exist_ok=True)
    py = python_bin()
    cli = pciplan_bin()
    cases = [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -c 'import lxml.etree'", [py, "-c", "import lxml.etree"]),
        ("python -c 'import pciplan.api'", [py, "-c", "import pciplan.api"]),
        ("pciplan plan (typical q35)", cli + ["plan", str(typical.path)]),
        ("pciplan --version (click)", cli + ["--version"]),
    ]
    envs = {"cached": cli_env(cache), "no cache": no_cache_env(empty)}
    for _, args in cases:
        run_cli(args, envs["cached"])
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for label, args in cases:
            for ename, env in envs.items():
                dt, p = run_cli(args, env)
                if p.returncode != 0:
                    raise RuntimeError(f"{label}: exit {p.returncode}: {p.stderr.decode()[-300:]}")
                samples.setdefault((label, ename), []).append(dt)
    rows = []
    for label, _ in cases:
        c = median(samples[(label, "cached")]) * 1000
        n = median(samples[(label, "no cache")]) * 1000
        rows.append([label, fmt_ms(c), fmt_ms(n)])
        res.startup[label] = {"cached": c, "no_cache": n}
    say(table(["command", "bytecode cached", "no bytecode cache"], rows))
    # what the imports cost, from -X importtime (cached)
    imp = [py, "-X", "importtime"] + (cli[1:] if cli[0] == py else cli) + ["plan", str(typical.path)]
    p = subprocess.run(imp, capture_output=True, env=envs["cached"], text=True)
    selfs: dict[str, int] = {}
    cums: dict[str, int] = {}
    total = 0
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:"):].split("|")
        try:
            own, cum = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        name = parts[2][1:].rstrip()
        if len(name) == len(name.lstrip()):  # top level
            total += cum
        name = name.strip()
        selfs[name] = selfs.get(name, 0) + own
        cums.setdefault(name, cum)
    if total:
        ours = sum(v for k, v in selfs.items() if k == "pciplan" or k.startswith("pciplan."))
        parts = [("re", cums.get("re", 0)), ("lxml.etree (with typing)", cums.get("lxml.etree", 0)),
                 ("pciplan's own modules", ours)]
        other = total - sum(v for _, v in parts)
        say("imports of `pciplan plan` (-X importtime, one run): %.1f ms = %s, other %.1f" % (
            total / 1000, ", ".join(f"{n} {v / 1000:.1f}" for n, v in parts), other / 1000))
        res.startup["imports_ms"] = {**{n: v / 1000 for n, v in parts}, "other": other / 1000, "total": total / 1000}
    say()


def plan_stats(text: str, reps: int, options=None) -> tuple[float, int, str]:
    """(best seconds of ``reps`` calls of pciplan.plan_text, buses, planned text)."""
    import pciplan

    times = []
    r = None
    for _ in range(reps):
        t = time.perf_counter()
        r = pciplan.plan_text(text, options)
        times.append(time.perf_counter() - t)
    assert r is not None
    return min(times), len(r.plan.addresses.buses), r.text


def feasible(kind: str, extra: int, options=None) -> int:
    """The nearest count <= extra that libvirt's algorithm can place (pc refuses some counts)."""
    import pciplan

    while extra > 0:
        try:
            pciplan.plan(domains.endpoints(kind, extra), options)
            return extra
        except pciplan.PciplanError:
            extra -= 1
    return 0


def loglog_slope(points: list[tuple[int, float]]) -> float:
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    den = sum((x - mx) ** 2 for x in xs)
    return num / den if den else float("nan")


def section_scaling(series: list[tuple[str, str, list[int], bool]], reps: int, res: Results) -> None:
    from pciplan import Options

    say("== scaling: in-process pciplan.plan against PCI endpoints (best of %d) ==" % reps)
    rows = []
    for label, kind, extras, cap_max in series:
        opts = Options(capacity="max") if cap_max else None
        points = []
        for extra in extras:
            extra = feasible(kind, extra, opts)
            text = domains.endpoints(kind, extra)
            secs, buses, _ = plan_stats(text, reps, opts)
            n = domains.endpoint_count(kind, extra)
            points.append((n, secs))
            rows.append([label, str(n), str(domains.device_count(text)), str(buses), fmt_ms(secs * 1000),
                         f"{secs * 1e6 / n:.1f}"])
            res.scaling.setdefault(label, []).append({"endpoints": n, "buses": buses, "ms": secs * 1000})
        big = [(n, s) for n, s in points if n >= 50]
        if len(big) < 2:
            big = points
        slope = loglog_slope(big) if len(big) >= 2 else float("nan")
        res.scaling[label + " exponent"] = slope
        rows.append([f"{label}: exponent", "", "", "", "", f"{slope:.2f}"])
    say(table(["series", "endpoints", "devices", "buses", "plan ms", "us/endpoint"], rows))
    say("exponent: slope of log(time) against log(endpoints) from 50 endpoints up (all points when fewer); "
        "1.00 is linear, 2.00 quadratic.")
    say("libvirt 9.0's limits: q35 stops at %d endpoints (no function left on the root bus for another "
        "pcie-root-port), pc at %d (no slot for another pci-bridge) and refuses some counts in between; "
        "'--capacity max' (pciplan only) goes on to the 256 PCI bus numbers." % (
            domains.endpoint_count("q35", LIBVIRT_MAX_EXTRA["q35"]),
            domains.endpoint_count("pc", LIBVIRT_MAX_EXTRA["pc"])))
    say()


def lxml_once(text: str, out_tree) -> float:
    """Seconds of lxml parsing ``text`` plus serializing the planned tree."""
    from lxml import etree

    t = time.perf_counter()
    etree.fromstring(text.encode())
    etree.tostring(out_tree, encoding="unicode")
    return time.perf_counter() - t


def plan_edits(result) -> tuple[set[int], str]:
    """What a plan writes, as a tool that already knew the answer would write it: the
    positions (in <devices>) of the input's devices given an address, and the text of
    those addresses followed by the elements the plan added."""
    from lxml import etree

    positions: set[int] = set()
    texts, added = [], []
    for dev in result.document.domain.devices:
        if dev.ref is None:
            continue
        if not dev.position:
            added.append(etree.tostring(dev.ref, encoding="unicode", with_tail=False))
        elif "address" in dev.changed:
            a = dev.ref.find("address")
            if a is not None and a.getparent() is dev.ref and dev.ref[-1] is a:
                positions.add(dev.position)
                texts.append(etree.tostring(a, encoding="unicode", with_tail=False))
    return positions, "".join(texts) + "".join(added)


def edit_floor_once(text: str, positions: set[int], made_text: str) -> float:
    """Seconds of the least an lxml tool must do to write a known plan: parse, one walk
    of <devices>, the new elements made in one parse (the fastest way; one at a time
    costs ~3 us each) and put in place, serialize.  No reading, no planning."""
    from lxml import etree

    t = time.perf_counter()
    root = etree.fromstring(text.encode())
    devices = root.find("devices")
    made = iter(etree.fromstring("<b>" + made_text + "</b>"))
    pos = 0
    for d in devices:
        if isinstance(d.tag, str):
            pos += 1
            if pos in positions:
                d.append(next(made))
    for el in made:
        devices.append(el)
    etree.tostring(root, encoding="unicode")
    return time.perf_counter() - t


def section_lxml(cases: list[tuple[str, str, int, bool]], reps: int, res: Results) -> None:
    from lxml import etree

    import pciplan
    from pciplan import Options

    say("== planning vs lxml: pciplan.plan against lxml parse + serialize (best of %d, interleaved) ==" % reps)
    rows = []
    for label, kind, extra, cap_max in cases:
        opts = Options(capacity="max") if cap_max else None
        text = domains.endpoints(kind, extra)
        result = pciplan.plan_text(text, opts)
        planned = result.text
        out_tree = etree.fromstring(planned.encode())
        positions, made_text = plan_edits(result)
        plan_times, lxml_times, edit_times = [], [], []
        for _ in range(reps):
            t = time.perf_counter()
            pciplan.plan(text, opts)
            plan_times.append(time.perf_counter() - t)
            lxml_times.append(min(lxml_once(text, out_tree) for _ in range(3)))
            edit_times.append(min(edit_floor_once(text, positions, made_text) for _ in range(3)))
        secs, floor, edit = min(plan_times), min(lxml_times), min(edit_times)
        rows.append([label, str(domains.endpoint_count(kind, extra)), f"{len(text) // 1024}/{len(planned) // 1024}",
                     fmt_ms(floor * 1000), fmt_ms(edit * 1000), f"{edit / floor:.1f}x",
                     fmt_ms(secs * 1000), f"{secs / floor:.1f}x"])
        res.lxml[label] = {"lxml_ms": floor * 1000, "edit_floor_ms": edit * 1000, "plan_ms": secs * 1000,
                           "ratio": secs / floor, "edit_floor_ratio": edit / floor}
    say(table(["input", "endpoints", "KiB in/out", "lxml ms", "edit floor ms", "floor/lxml", "plan ms",
               "plan/lxml"], rows))
    say("lxml: etree.fromstring(input) + etree.tostring(planned tree), the I/O any tool editing the XML does.")
    say("edit floor: lxml plus writing the same plan without computing it (one walk of <devices>, the new "
        "elements made in one parse and put in place): the least any Python tool on lxml pays for this output.")
    say()


def section_limits(virsh: Virsh | None, lvpy: LibvirtPython | None, tmp: Path, tag: str, res: Results,
                   kinds: tuple[str, ...]) -> None:
    import pciplan

    say("== limits: the largest guests libvirt 9.0 defines, and one endpoint more ==")
    spec = []
    for kind in kinds:
        top = LIBVIRT_MAX_EXTRA[kind]
        spec += [(f"{kind}-limit", kind, top), (f"{kind}-limit+1", kind, top + 1)]
    inputs = make_inputs(spec, tmp, tag)
    rows = []
    for inp in inputs:
        try:
            pciplan.plan(inp.xml)
            mine = "accepts"
        except pciplan.PciplanError:
            mine = "refuses"
        theirs = "-"
        if lvpy is not None and lvpy.conn is not None:
            _, out = lvpy.round_trip(inp)
            theirs = "accepts" if out is not None else "refuses"
        elif virsh is not None:
            _, out = virsh.round_trip(inp)
            theirs = "accepts" if out is not None else "refuses"
        rows.append([inp.label, str(inp.endpoints), theirs, mine])
        res.limits.append({"input": inp.label, "endpoints": inp.endpoints, "libvirt": theirs, "pciplan": mine})
    if virsh is not None:
        virsh.cleanup(inputs)
    say(table(["input", "endpoints", "libvirt 9.0", "pciplan"], rows))
    say()


def section_targets(res: Results) -> None:
    """The goals of the benchmark, met or not, from the numbers above."""
    say("== targets ==")
    rows = []

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("met" if ok else "NOT met")

    typical = res.round_trip.get("q35-typical", {})
    cli, virsh, py, api = (typical.get(k) for k in ("cli", "virsh", "py", "api"))
    r = cli / virsh if cli and virsh else None
    rows.append(["CLI cold <= 1.0x libvirt round trip (virsh, typical q35)",
                 "-" if r is None else f"{r:.2f}x", verdict(None if r is None else r <= 1.0)])
    for name, ref in (("virsh", virsh), ("libvirt-python", py)):
        sp = ref / api if ref and api else None
        rows.append([f"API >= 20x faster than the round trip ({name}, typical q35)",
                     "-" if sp is None else f"{sp:.0f}x faster", verdict(None if sp is None else sp >= 20)])
    for key, value in res.scaling.items():
        if key.endswith(" exponent"):
            rows.append([f"linear in devices: {key}", f"{value:.2f}",
                         verdict(None if math.isnan(value) else value < 1.3)])
    for label, v in res.lxml.items():
        rows.append([f"plan <= 2x lxml parse+serialize: {label}", f"{v['ratio']:.1f}x", verdict(v["ratio"] <= 2.0)])
    say(table(["target", "measured", ""], rows))
    say("(exponent < 1.3 counts as linear: caches and allocation make big inputs a little slower per device)")
    say()


# ---- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny version of everything (a few seconds): small inputs, 1-2 rounds")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of the round-trip section (default 15)")
    ap.add_argument("--uri", default=DEFAULT_URI, help=f"libvirt URI (default {DEFAULT_URI})")
    ap.add_argument("--no-libvirt", action="store_true", help="leave libvirt out (pciplan columns only)")
    ap.add_argument("--json", metavar="FILE", help="also write every number to FILE")
    args = ap.parse_args(argv)

    smoke = args.smoke
    rounds = args.rounds or (2 if smoke else 15)
    tag = f"{os.getpid()}"
    res = Results()

    say(f"pciplan benchmark  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    say(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, load average {loadavg()}")
    from lxml import etree
    say(f"python {platform.python_version()} ({sys.executable}), lxml {etree.__version__} "
        f"(libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}), kernel {platform.release()}")

    virsh: Virsh | None = None
    lvpy: LibvirtPython | None = None
    if args.no_libvirt:
        res.libvirt_skipped = "--no-libvirt"
    else:
        virsh = Virsh(args.uri)
        why = virsh.available()
        if why is not None:
            res.libvirt_skipped = why
            virsh = None
        else:
            say(f"libvirt: {virsh.version()}")
            lvpy = LibvirtPython(args.uri)
            if lvpy.why is not None:
                res.libvirt_python_skipped = lvpy.why
                say(f"libvirt-python: skipped ({lvpy.why})")
                lvpy = None
            else:
                import libvirt
                try:
                    from importlib.metadata import version
                    binding = version("libvirt-python")
                except Exception:  # noqa: BLE001 - only for the header
                    binding = "?"
                v = libvirt.getVersion()
                say(f"libvirt-python: binding {binding} over client library {v // 1000000}.{v // 1000 % 1000}."
                    f"{v % 1000}, one connection to {args.uri}")
    if res.libvirt_skipped:
        say(f"libvirt: skipped ({res.libvirt_skipped})")
    say(f"command: {' '.join([Path(sys.argv[0]).name if sys.argv[0].endswith('run') else 'bench/run'] + (argv if argv is not None else sys.argv[1:]))}")
    say()

    if smoke:
        rt_spec = [("q35-typical", "q35", 2), ("pc-typical", "pc", 2), ("q35-30", "q35", 22)]
        scaling = [("q35", "q35", [0, 10, 20], False), ("pc", "pc", [0, 20, 40], False)]
        lxml_cases = [("q35-30", "q35", 22, False)]
        reps = 2
    else:
        rt_spec = [("q35-typical", "q35", 2), ("pc-typical", "pc", 2),
                   ("q35-100", "q35", 100 - domains.BASE_ENDPOINTS["q35"]),
                   ("pc-100", "pc", 100 - domains.BASE_ENDPOINTS["pc"]),
                   ("q35-max", "q35", LIBVIRT_MAX_EXTRA["q35"]), ("pc-max", "pc", LIBVIRT_MAX_EXTRA["pc"])]
        scaling = [("q35", "q35", [0, 25, 50, 100, 150, 200, LIBVIRT_MAX_EXTRA["q35"]], False),
                   ("pc", "pc", [0, 100, 250, 500, 750, LIBVIRT_MAX_EXTRA["pc"]], False),
                   ("pc --capacity max", "pc", [500, 1000, 2000, 4000, 6000, CAPACITY_MAX_EXTRA], True)]
        lxml_cases = [("q35-max", "q35", LIBVIRT_MAX_EXTRA["q35"], False),
                      ("pc-max", "pc", LIBVIRT_MAX_EXTRA["pc"], False),
                      ("pc-256-buses (--capacity max)", "pc", CAPACITY_MAX_EXTRA, True)]
        reps = 5

    with tempfile.TemporaryDirectory(prefix="pciplan-bench-") as d:
        tmp = Path(d)
        cache = Path(os.environ.get("PCIPLAN_BENCH_PYCACHE", tempfile.gettempdir())) / "pciplan-bench-pycache"
        cache.mkdir(parents=True, exist_ok=True)
        inputs = make_inputs(rt_spec, tmp, tag)
        try:
            section_round_trip(inputs, rounds, virsh, lvpy, cache, tmp, res, 0.005 if smoke else 0.05)
        finally:
            if virsh is not None:
                virsh.cleanup(inputs)
        section_startup(1 if smoke else 21, cache, tmp, inputs[0], res)
        section_scaling(scaling, reps, res)
        section_lxml(lxml_cases, reps, res)
        if virsh is not None:
            section_limits(virsh, lvpy, tmp, tag, res, ("q35",) if smoke else ("q35", "pc"))
        else:
            say(f"== limits: skipped ({res.libvirt_skipped}) ==")
            say()

    section_targets(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res.__dict__, indent=1, default=str) + "\n")
    say(f"done (load average now {loadavg()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
