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
raises ``OracleError``: that says nothing about the input.

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

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import uuid as uuidlib
from pathlib import Path

DEFAULT_URI = "qemu:///system"
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".oracle-cache"
TEMP_PREFIX = "pciplan-oracle-"
VIRSH_TIMEOUT = 120

_NAME_RE = re.compile(r"(<name>)([^<]*)(</name>)")
_UUID_RE = re.compile(r"\s*<uuid>[^<]*</uuid>")
_NVRAM_RE = re.compile(r"<nvram\b[^>]*>([^<]+)</nvram>")
_DEFINE_PREFIX_RE = re.compile(r"^error: Failed to define domain from \S+\n?")
# libvirt refuses a second domain with a UUID that another domain already has.
_UUID_CLASH_RE = re.compile(r"already (exists|defined) with uuid|is already being removed")


class OracleError(RuntimeError):
    """The daemon could not be asked (not: the daemon refused the XML)."""


def _uri(uri: str | None) -> str:
    return uri or os.environ.get("LIBVIRT_DEFAULT_URI") or DEFAULT_URI


def _virsh(uri: str, *args: str, timeout: float = VIRSH_TIMEOUT) -> subprocess.CompletedProcess:
    if shutil.which("virsh") is None:
        raise OracleError("the virsh binary is not installed")
    try:
        return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise OracleError(f"virsh {' '.join(args[:1])} timed out after {timeout}s") from err


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

    def _cache_path(self, text: str) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.json"

    def _cache_get(self, text: str):
        path = self._cache_path(text)
        if path is None or not path.exists():
            return None
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if rec.get("uri") != self.uri or rec.get("version") != self.version():
            return None
        return bool(rec["accepted"]), rec["text"]

    def _cache_put(self, text: str, accepted: bool, result: str) -> None:
        path = self._cache_path(text)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        rec = {"uri": self.uri, "version": self.version(), "accepted": accepted, "text": result}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(rec, f)
        os.replace(tmp, path)

    # -- the question --------------------------------------------------------
    def run(self, text: str, use_cache: bool = True) -> tuple[bool, str]:
        """(accepted, dumpxml --inactive output or libvirt's error message)."""
        if use_cache:
            hit = self._cache_get(text)
            if hit is not None:
                with self._lock:
                    self.hits += 1
                return hit
        accepted, result = self._ask(text)
        with self._lock:
            self.misses += 1
        # (a UUID clash with a domain defined at the same moment says nothing about the input)
        if use_cache and not (not accepted and _UUID_CLASH_RE.search(result)):
            self._cache_put(text, accepted, result)
        return accepted, result

    def _define(self, text: str) -> subprocess.CompletedProcess:
        fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".xml")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return _virsh(self.uri, "define", path)
        finally:
            os.unlink(path)

    def _ask(self, text: str) -> tuple[bool, str]:
        m = _NAME_RE.search(text)
        orig_name = m.group(2) if m else None
        tmp_name = f"{TEMP_PREFIX}{os.getpid()}-{uuidlib.uuid4().hex[:12]}"
        if m:
            text = text[:m.start(2)] + tmp_name + text[m.end(2):]
        else:
            text = re.sub(r"(<domain\b[^>]*>)", lambda mm: mm.group(1) + f"<name>{tmp_name}</name>",
                          text, count=1)
        defined = False
        try:
            r = self._define(text)
            defined = r.returncode == 0
            orig_uuid = None
            if not defined and _UUID_CLASH_RE.search(r.stderr or ""):
                um = re.search(r"<uuid>([^<]*)</uuid>", text)
                if um:
                    orig_uuid = um.group(1).strip()
                    r = self._define(_UUID_RE.sub("", text, count=1))
                    defined = r.returncode == 0
            if not defined:
                err = (r.stderr or r.stdout).strip()
                if "failed to connect" in err.lower() and "hypervisor" in err.lower():
                    raise OracleError(err)
                return False, _DEFINE_PREFIX_RE.sub("", err).strip()
            d = _virsh(self.uri, "dumpxml", "--inactive", tmp_name)
            if d.returncode != 0:
                raise OracleError(f"dumpxml of {tmp_name} failed: {(d.stderr or d.stdout).strip()}")
            out = d.stdout
            if orig_name is not None:
                out = _NAME_RE.sub(lambda mm: mm.group(1) + orig_name + mm.group(3), out, count=1)
            if orig_uuid:
                out = re.sub(r"<uuid>[^<]*</uuid>", f"<uuid>{orig_uuid}</uuid>", out, count=1)
            return True, out
        finally:
            if defined:
                self._undefine(tmp_name)

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
