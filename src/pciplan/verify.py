"""Check a plan against a real QEMU: start it paused, read its PCI tree, hot-plug.

``verify(topology)`` starts the QEMU 7.2 emulator of the guest's arch with the
arguments ``qemuargs`` derives from the plan (TCG, ``-S``, ``-nodefaults``, no
disk images, no network, ``-display none``), reads the device tree over QMP and
compares it with the plan:

* every planned controller and endpoint is at its planned slot/function, on
  the bus the plan put it on, with the planned QEMU device type;
* every plan bus is a bus of the same kind in QEMU (PCI Express or
  conventional PCI), and a PCI Express function sits on a PCI Express bus;
* QEMU has no PCI function the plan does not know of (besides the chipset's);
* into every empty hot-pluggable slot the plan reports it ``device_add``\\ s a
  ``virtio-rng-pci`` and checks that it appears there.

How plan buses are found in QEMU.  With the guest paused no firmware has run, so
every bridge's secondary bus number is still 0 and ``query-pci`` cannot descend
into bridges (it follows secondary bus numbers).  Instead the tree comes from
``info qtree`` (through ``human-monitor-command``), which nests each bus under
the device that provides it whatever its number.  The walk starts at the root
buses (``pcie.0``/``pci.0``, pseries PHBs' ``pci.N.0``, found by name), finds
each planned function by its slot/function on its parent's QEMU bus, and takes
the PCI bus nested under the bridge found there as the plan's child bus (an
expander's bus hangs off a host device of its own; it is found by the
expander's id).  Bus identity is thus established by position, the way the
guest would see it, and the device ids only serve to say where a misplaced
device went.

QEMU is always stopped: ``quit`` over QMP, then SIGTERM/SIGKILL, also when an
error or Ctrl-C interrupts the check.  Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from .address import PciAddress
from .errors import PciplanError
from .qemuargs import BUILTIN, FixedFunction, QemuConfig, QemuDevice, build
from .topology import Topology

__all__ = ["VerifyError", "QmpError", "QmpClient", "QBus", "QDev", "parse_qtree", "Report",
           "verify", "find_emulator", "HOTPLUG_DRIVER"]

#: what is hot-plugged into each empty hot-pluggable slot
HOTPLUG_DRIVER = "virtio-rng-pci"
#: default bound on hot-plugs per guest (each device_add gets slower as devices pile up)
HOTPLUG_LIMIT = 64
#: machine options that keep TCG quiet about host features it cannot emulate
TCG_MACHINE_OPTIONS = {
    "pseries": {"cap-cfpc": "broken", "cap-sbbc": "broken", "cap-ibs": "broken",
                "cap-ccf-assist": "off"},
}


from .guest.boot import pdeathsig_prefix  # noqa: E402  (QEMU dies with its caller)


class VerifyError(PciplanError):
    """QEMU could not be run or talked to (not a plan/QEMU difference): exit status 2."""

    exit_status = 2


class QmpError(Exception):
    """A QMP command returned an error."""

    def __init__(self, cls: str, desc: str) -> None:
        super().__init__(desc)
        self.cls = cls
        self.desc = desc


# ---- a tiny QMP client --------------------------------------------------------------------
class QmpClient:
    """Line-based QMP over a unix socket; every read is bounded by ``timeout``."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""
        self.events: list[dict] = []

    def connect(self, deadline: float, alive=lambda: True) -> None:
        """Connect, read the greeting, negotiate capabilities; give up at ``deadline``."""
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.settimeout(max(0.05, min(self.timeout, deadline - time.monotonic())))
                s.connect(self.path)
                self.sock = s
                break
            except (FileNotFoundError, ConnectionRefusedError, socket.timeout):
                s.close()
                if not alive():
                    raise EOFError("QEMU exited before its monitor was ready") from None
                if time.monotonic() > deadline:
                    raise TimeoutError("QEMU's monitor did not come up in time") from None
                time.sleep(0.01)
        greeting = self._read(deadline)
        if "QMP" not in greeting:
            raise EOFError(f"not a QMP greeting: {greeting!r}")
        self.execute("qmp_capabilities", deadline=deadline)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def _read(self, deadline: float) -> dict:
        assert self.sock is not None
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("QEMU did not answer in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("QEMU did not answer in time") from None
            if not chunk:
                raise EOFError("QEMU closed its monitor")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def execute(self, command: str, arguments: dict | None = None, *,
                deadline: float | None = None):
        """Run one command; return its ``return`` value or raise ``QmpError``."""
        assert self.sock is not None
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        msg: dict = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.settimeout(max(0.05, deadline - time.monotonic()))
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read(deadline)
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QmpError(err.get("class", "GenericError"), err.get("desc", ""))
            return reply.get("return")

    def hmp(self, command_line: str, deadline: float | None = None) -> str:
        return self.execute("human-monitor-command", {"command-line": command_line},
                            deadline=deadline) or ""


#: ``info qtree`` bus types of PCI buses, and those of them that are PCI Express
PCI_BUS_TYPES = frozenset({"PCI", "PCIE", "pxb-bus", "pxb-pcie-bus"})
EXPRESS_BUS_TYPES = frozenset({"PCIE", "pxb-pcie-bus"})


# ---- info qtree ---------------------------------------------------------------------------
@dataclass(eq=False)
class QDev:
    driver: str
    id: str
    parent: "QBus | None" = None
    #: (slot, function) for a PCI device
    addr: tuple[int, int] | None = None
    props: dict[str, str] = field(default_factory=dict)
    buses: list["QBus"] = field(default_factory=list)

    def where(self) -> str:
        bus = self.parent.name if self.parent is not None else "?"
        if self.addr is None:
            return bus
        return f"{bus} {self.addr[0]:02x}.{self.addr[1]:x}"


@dataclass(eq=False)
class QBus:
    name: str
    type: str
    parent: QDev | None = None
    devices: list[QDev] = field(default_factory=list)

    @property
    def is_pci(self) -> bool:
        return self.type in PCI_BUS_TYPES

    @property
    def express(self) -> bool:
        return self.type in EXPRESS_BUS_TYPES

    def at(self, slot: int, function: int) -> QDev | None:
        for d in self.devices:
            if d.addr == (slot, function):
                return d
        return None

    def walk(self):
        yield self
        for d in self.devices:
            for b in d.buses:
                yield from b.walk()


_DEV = re.compile(r'^dev: (?P<driver>[^,]+), id "(?P<id>.*)"$')
_ADDR = re.compile(r"^(?P<slot>[0-9a-fA-F]{2})\.(?P<fn>[0-7])$")


def parse_qtree(text: str) -> QBus:
    """Parse ``info qtree``: two spaces of indentation per level."""
    root: QBus | None = None
    stack: list[tuple[int, object]] = []   # (indent, QBus | QDev)
    for raw in text.splitlines():
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else None
        if line.startswith("bus: "):
            bus = QBus(line[5:].strip(), "")
            if isinstance(parent, QDev):
                bus.parent = parent
                parent.buses.append(bus)
            elif root is None:
                root = bus
            stack.append((indent, bus))
            continue
        m = _DEV.match(line)
        if m and isinstance(parent, QBus):
            dev = QDev(m["driver"], m["id"], parent)
            parent.devices.append(dev)
            stack.append((indent, dev))
            continue
        if isinstance(parent, QBus) and line.startswith("type "):
            parent.type = line[5:].strip()
            continue
        if isinstance(parent, QDev) and " = " in line:
            key, _, value = line.partition(" = ")
            parent.props[key.strip()] = value.strip()
            if key.strip() == "addr" and parent.parent is not None and parent.parent.is_pci:
                am = _ADDR.match(value.strip())
                if am:
                    parent.addr = (int(am["slot"], 16), int(am["fn"]))
    if root is None:
        raise ValueError("no bus in info qtree output")
    return root


# ---- running QEMU ---------------------------------------------------------------------------
def find_emulator(cfg: QemuConfig, qemu: str | None = None) -> str:
    binary = qemu or cfg.emulator
    path = shutil.which(binary) if os.sep not in binary else (binary if os.access(binary, os.X_OK) else None)
    if path is None:
        raise VerifyError(f"QEMU emulator '{binary}' not found", None)
    return path


class _Qemu:
    """A paused QEMU with a QMP socket in a private temporary directory."""

    def __init__(self, argv: list[str], timeout: float) -> None:
        self.argv = argv
        self.timeout = timeout
        self.tmp = tempfile.TemporaryDirectory(prefix="pciplan-verify-")
        self.sock_path = os.path.join(self.tmp.name, "qmp.sock")
        self.err_path = os.path.join(self.tmp.name, "stderr")
        self.proc: subprocess.Popen | None = None
        self.qmp = QmpClient(self.sock_path, timeout)

    def start(self) -> None:  # noqa: D401
        argv = self.argv + ["-qmp", f"unix:{self.sock_path},server=on,wait=off"]
        with open(self.err_path, "wb") as err:
            # QEMU dies with us even if we are killed outright (no paused QEMU left behind)
            self.proc = subprocess.Popen(pdeathsig_prefix() + argv, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, close_fds=True)
        deadline = time.monotonic() + self.timeout
        try:
            self.qmp.connect(deadline, alive=lambda: self.proc is not None and self.proc.poll() is None)
        except (EOFError, ConnectionError, OSError):
            # QEMU refused the command line: let the caller report it
            self._wait_exit(2.0)
            raise

    def stderr(self) -> str:
        try:
            with open(self.err_path, "rb") as f:
                return f.read(64 * 1024).decode(errors="replace")
        except OSError:
            return ""

    def _wait_exit(self, t: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=t)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Stop QEMU (quit, SIGTERM, SIGKILL, each bounded); a second Ctrl-C kills at once."""
        try:
            self._stop()
        except BaseException:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self._wait_exit(5.0)
            raise

    def _stop(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None and self.qmp.sock is not None:
                try:
                    self.qmp.execute("quit", deadline=time.monotonic() + 2.0)
                except (QmpError, OSError, EOFError, TimeoutError, ValueError):
                    pass
            self.qmp.close()
            if self.proc is not None and self.proc.poll() is None:
                if self._wait_exit(2.0) is None:
                    self.proc.terminate()
                    if self._wait_exit(3.0) is None:
                        self.proc.kill()
                        self._wait_exit(5.0)
        finally:
            self.tmp.cleanup()


def qemu_error(stderr: str) -> str:
    """The first error QEMU printed, without the program name."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errs = [ln for ln in lines if "warning:" not in ln]
    line = (errs or lines or ["QEMU exited"])[0]
    return re.sub(r"^\S*qemu-system-\S+: ", "", line).strip()


# ---- the check ------------------------------------------------------------------------------
@dataclass
class Report:
    differences: list[str] = field(default_factory=list)
    #: planned functions found where the plan put them
    checked: int = 0
    #: empty hot-pluggable slots of the plan, hot-plug attempts and successes
    hotplug_ports: int = 0
    hotplug_tried: int = 0
    hotplug_ok: int = 0
    #: seconds spent: QEMU start (to QMP ready), comparison, hot-plug, total
    timings: dict[str, float] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    #: QEMU's stderr (warnings), for diagnostics
    stderr: str = ""
    #: plan bus index -> the QEMU bus it was found as
    bus_map: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences


def verify(topo: Topology, qemu: str | None = None, *, timeout: float = 20.0,
           hotplug: bool = True, hotplug_limit: int | None = HOTPLUG_LIMIT,
           config: QemuConfig | None = None) -> Report:
    """Start QEMU for ``topo``, compare its PCI tree with the plan, hot-plug; always stop it.

    ``hotplug_limit`` bounds the number of ``device_add`` calls (None: every empty
    hot-pluggable slot); every hot-pluggable bus is tried at least once.
    """
    t0 = time.monotonic()
    cfg = config or build(topo)
    binary = find_emulator(cfg, qemu)
    extra = ["-S", "-display", "none", "-no-user-config", "-serial", "none", "-monitor", "none"]
    family = topo.machine.family if topo.machine is not None else ""
    argv = cfg.argv(extra=extra, accel="tcg", machine_options=TCG_MACHINE_OPTIONS.get(family))
    argv[0] = binary
    report = Report(argv=argv)
    q = _Qemu(argv, timeout)
    try:
        try:
            q.start()
        except (EOFError, ConnectionError, OSError) as err:
            stderr = q.stderr()
            if q.proc is not None and q.proc.poll() is not None:
                report.stderr = stderr
                report.differences.append(f"QEMU refused the planned configuration: {qemu_error(stderr)}")
                return report
            raise VerifyError(f"cannot talk to QEMU: {err}") from None
        except TimeoutError as err:
            raise VerifyError(f"QEMU did not start: {err}") from None
        t1 = time.monotonic()
        report.timings["start"] = t1 - t0
        deadline = time.monotonic() + timeout
        tree = parse_qtree(q.qmp.hmp("info qtree", deadline))
        qbuses = _compare(topo, cfg, tree, report)
        t2 = time.monotonic()
        report.timings["compare"] = t2 - t1
        if hotplug:
            _hotplug(topo, q.qmp, qbuses, report, timeout, hotplug_limit)
        report.timings["hotplug"] = time.monotonic() - t2
        report.stderr = q.stderr()
    except (TimeoutError, EOFError, OSError, ValueError) as err:
        stderr = q.stderr()
        if q.proc is not None and q.proc.poll() is not None:
            raise VerifyError(f"QEMU stopped unexpectedly: {qemu_error(stderr)}") from None
        raise VerifyError(f"QEMU monitor: {err}") from None
    finally:
        q.stop()
        report.timings["total"] = time.monotonic() - t0
    return report


def _expectations(cfg: QemuConfig) -> dict[int, QemuDevice | FixedFunction]:
    out: dict[int, QemuDevice | FixedFunction] = {}
    for d in cfg.devices:
        if d.function is not None:
            out[id(d.function)] = d
    for f in cfg.fixed:
        if f.function is not None:
            out[id(f.function)] = f
    return out


def _fmt(a: PciAddress) -> str:
    return f"{a.slot:02x}.{a.function:x}"


def _compare(topo: Topology, cfg: QemuConfig, tree: QBus, report: Report) -> dict[int, QBus]:
    diff = report.differences.append
    by_name: dict[str, QBus] = {}
    by_id: dict[str, QDev] = {}
    for b in tree.walk():
        if b.is_pci:
            by_name.setdefault(b.name, b)
        for d in b.devices:
            if d.id:
                by_id.setdefault(d.id, d)
    expect = _expectations(cfg)
    qbus_of: dict[int, QBus] = {}
    matched: set[int] = set()

    # roots: the machine's root bus and the pseries PHBs, by name
    todo: list[int] = []
    for bus in sorted(topo.roots, key=lambda b: b.index):
        name = cfg.bus_names.get(bus.index, "")
        qb = by_name.get(name)
        if qb is None:
            diff(f"bus {bus.index} ({bus.model.name}): QEMU has no PCI bus '{name}'")
            continue
        if bus.index != 0:
            phb = qb.parent
            if phb is None or phb.id != f"pci.{bus.index}":
                diff(f"bus {bus.index} ({bus.model.name}): QEMU's bus '{name}' is not provided "
                     f"by the planned host bridge pci.{bus.index}")
        qbus_of[bus.index] = qb
        todo.append(bus.index)

    while todo:
        idx = todo.pop(0)
        bus, qb = topo.buses[idx], qbus_of[idx]
        report.bus_map[idx] = qb.name
        if bus.express != qb.express:
            diff(f"bus {idx} ({bus.model.name}) is {'PCI Express' if bus.express else 'conventional PCI'} "
                 f"in the plan but QEMU's bus '{qb.name}' is {qb.type or 'untyped'}")
        for fn in bus.functions:
            exp = expect.get(id(fn))
            if exp is None:
                continue  # a console sharing its serial's address
            what = fn.device.describe()
            want_id = exp.id if isinstance(exp, QemuDevice) else ""
            qd = qb.at(fn.address.slot, fn.address.function)
            if qd is None or (want_id and qd.id != want_id):
                where = ""
                if want_id and want_id in by_id:
                    where = f"; QEMU has it at {by_id[want_id].where()}"
                found = f"{qd.driver} (id '{qd.id}')" if qd is not None else "nothing"
                diff(f"{what}: planned at {fn.address} ({qb.name} {_fmt(fn.address)}) as "
                     f"{exp.driver}, QEMU has {found} there{where}")
                if qd is not None:
                    matched.add(id(qd))
                continue
            matched.add(id(qd))
            if qd.driver != exp.driver:
                diff(f"{what}: at {qb.name} {_fmt(fn.address)} QEMU has {qd.driver}, "
                     f"the plan's device is {exp.driver}")
                continue
            report.checked += 1
            if fn.express and not qb.express:
                diff(f"{what}: PCI Express in the plan but on QEMU's conventional bus '{qb.name}'")
            child = fn.child
            if child is None or not fn.is_bridge:
                continue
            cq = _child_bus(qd, by_name)
            if cq is None:
                diff(f"{what}: QEMU's {qd.driver} at {qb.name} {_fmt(fn.address)} provides no PCI bus")
                continue
            qbus_of[child.index] = cq
            todo.append(child.index)

    for idx, bus in topo.buses.items():
        if idx not in qbus_of and not any(d.startswith(f"bus {idx} ") for d in report.differences):
            parent = bus.parent.device.describe() if bus.parent is not None else "no parent"
            diff(f"bus {idx} ({bus.model.name}, provided by {parent}) was not found in QEMU")

    # anything QEMU has on the planned buses that the plan does not
    family = topo.machine.family if topo.machine is not None else ""
    builtin = {(a.bus, a.slot, a.function): drv for a, drv in BUILTIN.get(family, ())}
    for idx, qb in qbus_of.items():
        for qd in qb.devices:
            if id(qd) in matched or qd.addr is None:
                continue
            slot, func = qd.addr
            if not qd.id and builtin.get((idx, slot, func)) == qd.driver:
                continue
            diff(f"QEMU has {qd.driver} (id '{qd.id}') at {qb.name} {slot:02x}.{func:x} "
                 f"(plan bus {idx}), which the plan does not have")
    mapped = {id(b) for b in qbus_of.values()}
    for b in tree.walk():
        if b.is_pci and id(b) not in mapped and b.parent is not None \
                and not b.parent.driver.startswith("pxb"):
            diff(f"QEMU has a PCI bus '{b.name}' (from {b.parent.driver}) the plan does not have")
    return qbus_of


def _child_bus(qd: QDev, by_name: dict[str, QBus]) -> QBus | None:
    pci = [b for b in qd.buses if b.is_pci]
    if len(pci) == 1:
        return pci[0]
    # an expander's bus hangs off a separate host device; QEMU names it after the expander
    if qd.id and qd.id in by_name:
        return by_name[qd.id]
    return None


def hotplug_targets(ports: list[tuple[int, int]], limit: int | None) -> list[tuple[int, int]]:
    """The (bus, slot)s to hot-plug into: all of them when ``limit`` allows, else the first
    free slot of every bus, then further slots round-robin over the buses up to ``limit``
    (every hot-pluggable bus is always tried at least once)."""
    if limit is None or len(ports) <= limit:
        return list(ports)
    per_bus: dict[int, list[int]] = {}
    for b, s in ports:
        per_bus.setdefault(b, []).append(s)
    out: list[tuple[int, int]] = []
    depth = 0
    while True:
        added = False
        for b, slots in per_bus.items():
            if depth < len(slots) and (depth == 0 or len(out) < limit):
                out.append((b, slots[depth]))
                added = True
        depth += 1
        if not added or len(out) >= limit:
            break
    return sorted(out)


def _hotplug(topo: Topology, qmp: QmpClient, qbuses: dict[int, QBus], report: Report,
             timeout: float, limit: int | None) -> None:
    allports = [(b, s) for b, s in topo.hotplug_ports() if b in qbuses]
    report.hotplug_ports = len(allports)
    ports = hotplug_targets(allports, limit)
    if not ports:
        return
    wanted: dict[str, tuple[int, int, str]] = {}
    failed: dict[tuple[int, str], list[int]] = {}
    for n, (b, s) in enumerate(ports):
        name = qbuses[b].name
        dev_id = f"hotplug{n}"
        report.hotplug_tried += 1
        try:
            qmp.execute("device_add", {"driver": HOTPLUG_DRIVER, "id": dev_id, "bus": name,
                                       "addr": f"0x{s:x}"},
                        deadline=time.monotonic() + timeout)
        except QmpError as err:
            failed.setdefault((b, err.desc), []).append(s)
            continue
        wanted[dev_id] = (b, s, name)
    for (b, desc), slots in failed.items():
        what = ", ".join(f"0x{s:02x}" for s in slots)
        report.differences.append(
            f"hot-plug into bus {b} ({topo.buses[b].model.name}, QEMU '{qbuses[b].name}') "
            f"slot{'s' if len(slots) > 1 else ''} {what} failed: {desc}")
    if not wanted:
        return
    tree = parse_qtree(qmp.hmp("info qtree", time.monotonic() + timeout))
    found: dict[str, QDev] = {}
    for bus in tree.walk():
        for d in bus.devices:
            if d.id in wanted:
                found[d.id] = d
    for dev_id, (b, s, name) in wanted.items():
        d = found.get(dev_id)
        if d is None:
            report.differences.append(f"hot-plugged {HOTPLUG_DRIVER} into {name} slot 0x{s:02x} "
                                      "did not appear")
        elif d.parent is None or d.parent.name != name or d.addr != (s, 0):
            report.differences.append(f"hot-plugged {HOTPLUG_DRIVER} for {name} slot 0x{s:02x} "
                                      f"appeared at {d.where()}")
        else:
            report.hotplug_ok += 1
