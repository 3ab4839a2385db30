"""Ask a running libvirt daemon what it makes of a domain XML.

    from support.libvirt_oracle import Oracle, available
    if available():
        accepted, text = Oracle().run(xml_text)

``Oracle.run`` defines the XML under a unique temporary name, reads back
``virsh dumpxml --inactive`` and undefines the temporary domain again, always
(also when something in between fails).  It returns ``(True, xml)`` when
libvirt accepted the domain (the XML carries the input's own ``<name>``
again) or ``(False, message)`` with libvirt's error message when the define
was refused.  Anything else (virsh missing, daemon gone, dumpxml failing)
raises ``OracleError``: that says nothing about the input.  A local system daemon
found gone is started again first (``revive``: libvirt 9.0 crashes on a few inputs).

``Oracle.attach`` defines a domain the same way, then adds a device to its persistent
definition with ``virsh attach-device --config`` (as management applications add hardware
to a shut-off guest) and reads the definition before and after.

Answers are cached on disk, keyed by the sha256 of the input text, so a rerun
over the same inputs does not talk to the daemon at all.  The cache directory
is ``tests/.oracle-cache`` unless ``cache_dir`` or ``$PCIPLAN_ORACLE_CACHE``
says otherwise; ``cache_dir=False`` (or ``PCIPLAN_ORACLE_CACHE=off``) turns it
off.  The cache keeps the ``virsh version`` of the daemon that answered and is
ignored for a daemon that reports another version.

Only the Python standard library and the ``virsh`` binary are needed.  The
URI is ``$LIBVIRT_DEFAULT_URI`` or ``qemu:///system``.  The object is safe to
use from several threads at once (each call runs its own virsh processes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_URI = "qemu:///system"
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".oracle-cache"
TEMP_PREFIX = "pciplan-oracle-"
VIRSH_TIMEOUT = 120

_NAME_RE = re.compile(r"(<name>)([^<]*)(</name>)")
_UUID_RE = re.compile(r"\s*<uuid>[^<]*</uuid>")
_NVRAM_RE = re.compile(r"<nvram\b[^>]*>([^<]+)</nvram>")
_DEFINE_PREFIX_RE = re.compile(r"^error: Failed to define domain from \S+\n?")
_ATTACH_PREFIX_RE = re.compile(r"^error: Failed to attach (device from \S+|interface|disk)\n?")
# libvirt refuses a second domain with a UUID that another domain already has.
_UUID_CLASH_RE = re.compile(r"already (exists|defined) with uuid|is already being removed")


class OracleError(RuntimeError):
    """The daemon could not be asked (not: the daemon refused the XML)."""


def _uri(uri: str | None) -> str:
    return uri or os.environ.get("LIBVIRT_DEFAULT_URI") or DEFAULT_URI


def _virsh(uri: str, *args: str, timeout: float = VIRSH_TIMEOUT) -> subprocess.CompletedProcess:
    """``virsh -c URI ARGS``; a daemon found gone is started again (``revive``) and asked once
    more."""
    if shutil.which("virsh") is None:
        raise OracleError("the virsh binary is not installed")

    def run() -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as err:
            raise OracleError(f"virsh {' '.join(args[:1])} timed out after {timeout}s") from err

    r = run()
    if r.returncode != 0 and _cannot_connect(r.stderr or r.stdout) and revive(uri):
        r = run()
    return r


def _cannot_connect(err: str) -> bool:
    return "failed to connect" in err.lower() and "hypervisor" in err.lower()


#: what virsh says when the daemon died while it answered (libvirt 9.0 crashes on a few inputs)
_DIED_RE = re.compile(r"End of file while reading data|client socket is closed|"
                      r"Cannot recv data|Cannot write data", re.I)


def _raise_if_gone(err: str) -> None:
    """A virsh error that says the daemon is gone (or died answering), not that it refused
    something."""
    if _cannot_connect(err) or _DIED_RE.search(err):
        raise OracleError(err)


_revive_lock = threading.Lock()
LIBVIRTD = "/usr/sbin/libvirtd"


def revive(uri: str, wait: float = 30.0) -> bool:
    """Start the local libvirtd again when it is gone: libvirt 9.0 crashes on a few inputs of
    its own test suite, and a CI machine has no service manager to restart it.  Only for the
    local system daemon that answered before in this process, as root, when no libvirtd runs
    at all.  True once it answers."""
    if uri != DEFAULT_URI or os.geteuid() != 0 or not os.access(LIBVIRTD, os.X_OK) \
            or not _available.get(uri, (False,))[0]:
        return False
    with _revive_lock:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            r = subprocess.run(["virsh", "-q", "-c", uri, "version"], capture_output=True,
                               text=True, stdin=subprocess.DEVNULL)
            if r.returncode == 0:
                return True
            # (a daemon that is still dying is waited for)
            if subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode != 0:
                subprocess.run([LIBVIRTD, "--daemon"], capture_output=True, stdin=subprocess.DEVNULL)
            time.sleep(0.5)
    return False


@dataclass
class Attached:
    """What ``Oracle.attach`` found: the define's refusal (``defined`` False, ``before`` is
    libvirt's message), or the definition libvirt stored (``before``) and then either the
    definition with the device (``attached`` True, ``after``) or the attach's refusal
    (``attached`` False, ``after`` is libvirt's message); ``devices`` holds the XML of each
    device attached (or refused), in order."""
    defined: bool
    before: str
    attached: bool | None = None
    after: str = ""
    devices: list = field(default_factory=list)


@dataclass
class _Session:
    """A domain defined under a temporary name (Oracle._session)."""
    oracle: "Oracle"
    name: str
    orig_name: str | None
    orig_uuid: str | None = None
    error: str | None = None          # libvirt's refusal of the define

    def dump(self) -> str:
        """``virsh dumpxml --inactive``, with the input's own name (and UUID) again."""
        d = _virsh(self.oracle.uri, "dumpxml", "--inactive", self.name)
        if d.returncode != 0:
            raise OracleError(f"dumpxml of {self.name} failed: {(d.stderr or d.stdout).strip()}")
        out = d.stdout
        if self.orig_name is not None:
            out = _NAME_RE.sub(lambda mm: mm.group(1) + self.orig_name + mm.group(3), out, count=1)
        if self.orig_uuid:
            out = re.sub(r"<uuid>[^<]*</uuid>", f"<uuid>{self.orig_uuid}</uuid>", out, count=1)
        return out


_available: dict[str, tuple[bool, str]] = {}


def probe(uri: str | None = None) -> tuple[bool, str]:
    """(True, version text) when a daemon answers at URI, else (False, why)."""
    uri = _uri(uri)
    if uri not in _available:
        try:
            r = _virsh(uri, "version", timeout=20)
        except OracleError as err:
            _available[uri] = (False, str(err))
        else:
            if r.returncode == 0:
                _available[uri] = (True, r.stdout.strip())
            else:
                why = (r.stderr or r.stdout).strip().splitlines()
                _available[uri] = (False, f"no libvirt daemon answers at {uri}: "
                                          f"{why[0] if why else 'virsh version failed'}")
    return _available[uri]


def available(uri: str | None = None) -> bool:
    """Whether a libvirt daemon answers at URI (checked once per process)."""
    return probe(uri)[0]


def unavailable_reason(uri: str | None = None) -> str:
    ok, text = probe(uri)
    return "" if ok else text


class Oracle:
    def __init__(self, uri: str | None = None, cache_dir: str | os.PathLike | bool | None = None):
        self.uri = _uri(uri)
        if cache_dir is None:
            env = os.environ.get("PCIPLAN_ORACLE_CACHE")
            if env is not None:
                cache_dir = False if env.lower() in ("", "0", "off", "no", "none") else env
            else:
                cache_dir = DEFAULT_CACHE
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._version: str | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    # -- cache ---------------------------------------------------------------
    def version(self) -> str:
        if self._version is None:
            ok, text = probe(self.uri)
            if not ok:
                raise OracleError(text)
            self._version = " | ".join(l.strip() for l in text.splitlines() if l.strip())
        return self._version

    def _cache_path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.json"

    def _cache_get(self, key: str) -> dict | None:
        path = self._cache_path(key)
        if path is None or not path.exists():
            return None
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if rec.get("uri") != self.uri or rec.get("version") != self.version():
            return None
        return rec

    def _cache_put(self, key: str, rec: dict) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        rec = {"uri": self.uri, "version": self.version(), **rec}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(rec, f)
        os.replace(tmp, path)

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    # -- the question --------------------------------------------------------
    def run(self, text: str, use_cache: bool = True, fresh: bool = False) -> tuple[bool, str]:
        """(accepted, dumpxml --inactive output or libvirt's error message).  FRESH asks the
        daemon even when the cache has an answer, and caches the new one."""
        if use_cache and not fresh:
            hit = self._cache_get(text)
            if hit is not None:
                self._count(True)
                return bool(hit["accepted"]), hit["text"]
        accepted, result = self._ask(text)
        self._count(False)
        # (a UUID clash with a domain defined at the same moment says nothing about the input)
        if use_cache and not (not accepted and _UUID_CLASH_RE.search(result)):
            self._cache_put(text, {"accepted": accepted, "text": result})
        return accepted, result

    def attach(self, text: str, device: str | tuple[str, ...] | list, flags: tuple[str, ...] = ("--config",),
               use_cache: bool = True) -> "Attached":
        """Define TEXT, then ``virsh attach-device NAME DEVICE FLAGS``: what libvirt stored
        before and after (or its refusal of the define, or of the attach).  DEVICE is the
        device's XML, or another virsh command that attaches one, as its words without the
        domain (``("attach-interface", "--type", "network", ...)``): the XML attached is
        then what the command prints with ``--print-xml``; or a list of those, attached one
        after the other (up to the first refusal)."""
        key = json.dumps(["attach", text, device, list(flags)])
        if use_cache:
            hit = self._cache_get(key)
            if hit is not None:
                self._count(True)
                return Attached(**hit["answer"])
        with self._session(text) as s:
            if s.error is not None:
                answer = Attached(False, s.error)
            else:
                answer = self._attach(s, device, flags)
        self._count(False)
        if use_cache and not (not answer.defined and _UUID_CLASH_RE.search(answer.before)):
            self._cache_put(key, {"answer": answer.__dict__})
        return answer

    def _attach(self, s: "_Session", device, flags) -> "Attached":
        before = s.dump()
        shown = []
        for one in (device if isinstance(device, list) else [device]):
            if isinstance(one, str):
                fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".xml")
                try:
                    with os.fdopen(fd, "w") as f:
                        f.write(one)
                    r = _virsh(self.uri, "attach-device", s.name, path, *flags)
                finally:
                    os.unlink(path)
            else:
                cmd, *args = one
                p = _virsh(self.uri, cmd, s.name, *args, "--print-xml")
                if p.returncode != 0:
                    raise OracleError(f"virsh {cmd} --print-xml failed: {(p.stderr or p.stdout).strip()}")
                one = p.stdout.strip()
                r = _virsh(self.uri, cmd, s.name, *args, *flags)
            shown.append(one)
            if r.returncode != 0:
                err = (r.stderr or r.stdout).strip()
                _raise_if_gone(err)
                return Attached(True, before, False, _ATTACH_PREFIX_RE.sub("", err).strip(), shown)
        return Attached(True, before, True, s.dump(), shown)

    def _define(self, text: str) -> subprocess.CompletedProcess:
        fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".xml")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return _virsh(self.uri, "define", path)
        finally:
            os.unlink(path)

    def _ask(self, text: str) -> tuple[bool, str]:
        with self._session(text) as s:
            if s.error is not None:
                return False, s.error
            return True, s.dump()

    @contextlib.contextmanager
    def _session(self, text: str):
        """Define TEXT under a temporary name for the ``with`` block (a UUID another domain
        has is dropped); the domain is undefined afterwards, always."""
        m = _NAME_RE.search(text)
        s = _Session(self, f"{TEMP_PREFIX}{os.getpid()}-{uuidlib.uuid4().hex[:12]}",
                     m.group(2) if m else None)
        if m:
            text = text[:m.start(2)] + s.name + text[m.end(2):]
        else:
            text = re.sub(r"(<domain\b[^>]*>)", lambda mm: mm.group(1) + f"<name>{s.name}</name>",
                          text, count=1)
        defined = False
        try:
            r = self._define(text)
            defined = r.returncode == 0
            if not defined and _UUID_CLASH_RE.search(r.stderr or ""):
                um = re.search(r"<uuid>([^<]*)</uuid>", text)
                if um:
                    s.orig_uuid = um.group(1).strip()
                    r = self._define(_UUID_RE.sub("", text, count=1))
                    defined = r.returncode == 0
            if not defined:
                err = (r.stderr or r.stdout).strip()
                _raise_if_gone(err)
                s.error = _DEFINE_PREFIX_RE.sub("", err).strip()
            yield s
        finally:
            if defined:
                self._undefine(s.name)

    def _undefine(self, name: str) -> None:
        d = _virsh(self.uri, "dumpxml", "--inactive", name)
        flags = []
        m = _NVRAM_RE.search(d.stdout or "")
        if m:
            # a file that exists now existed before the define (define never
            # creates it): keep it; otherwise let libvirt forget the path
            flags = ["--keep-nvram"] if os.path.exists(m.group(1).strip()) else ["--nvram"]
        r = _virsh(self.uri, "undefine", name, *flags)
        if r.returncode != 0:
            raise OracleError(f"could not undefine {name}: {(r.stderr or r.stdout).strip()}")


def cleanup_stale(uri: str | None = None) -> list[str]:
    """Undefine temporary domains left behind by oracle processes that died.

    Only names ``pciplan-oracle-<pid>-*`` whose pid is not running are touched.
    """
    uri = _uri(uri)
    r = _virsh(uri, "list", "--all", "--name")
    removed = []
    for name in r.stdout.split():
        m = re.fullmatch(re.escape(TEMP_PREFIX) + r"(\d+)-[0-9a-f]+", name)
        if not m or Path(f"/proc/{m.group(1)}").exists():
            continue
        try:
            Oracle(uri, cache_dir=False)._undefine(name)
            removed.append(name)
        except OracleError:
            pass
    return removed


def main(argv=None) -> int:
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="Print what libvirt makes of a domain XML.")
    ap.add_argument("input", help="domain XML file ('-' for stdin)")
    ap.add_argument("-c", "--connect", default=None, help="libvirt URI")
    ap.add_argument("--no-cache", action="store_true")
    a = ap.parse_args(argv)
    text = sys.stdin.read() if a.input == "-" else Path(a.input).read_text()
    if not available(a.connect):
        print(unavailable_reason(a.connect), file=sys.stderr)
        return 2
    try:
        ok, out = Oracle(a.connect, cache_dir=False if a.no_cache else None).run(text)
    except OracleError as err:
        print(f"oracle: {err}", file=sys.stderr)
        return 2
    (sys.stdout if ok else sys.stderr).write(out if ok else out + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
