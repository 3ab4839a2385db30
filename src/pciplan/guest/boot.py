"""Run one guest: QEMU (TCG, no firmware disk, serial console to a file), bounded and cleaned up.

``run(argv, timeout)`` starts QEMU with the serial console written to a
private temporary file, waits for it to power off, and always leaves nothing
behind: on timeout, Ctrl-C or any error QEMU gets SIGTERM, then SIGKILL, and
the temporary directory is removed.  QEMU stays in the caller's process group
(a signal to the group, from Ctrl-C or ``timeout(1)``, reaches it too) and,
where util-linux ``setpriv`` exists, is started with a parent-death signal:
if the caller is killed outright, the kernel kills QEMU as well.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

CONSOLE_ID = "pciplan-console"


@dataclass
class Boot:
    argv: list[str]
    #: everything the guest wrote to its serial console
    console: str
    #: QEMU's own stdout/stderr
    stderr: str
    returncode: int | None
    #: seconds from start to exit (or to the kill)
    elapsed: float
    timed_out: bool = False

    @property
    def qemu_error(self) -> str:
        """QEMU's first error line (without the program name; warnings skipped), or ''."""
        for line in self.stderr.splitlines():
            line = line.strip()
            if not line or "warning:" in line:
                continue
            if ": " in line and line.split(":", 1)[0].startswith(("qemu-system", "/")):
                line = line.split(": ", 1)[1]
            return line
        return ""


def console_args(path: str) -> list[str]:
    """Serial console to ``path``; no monitor, no display, no reboot on panic."""
    return ["-chardev", f"file,id={CONSOLE_ID},path={path}", "-serial", f"chardev:{CONSOLE_ID}",
            "-display", "none", "-monitor", "none", "-no-reboot", "-no-user-config"]


def _read(path: str, limit: int = 8 * 1024 * 1024) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode(errors="replace")
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL --``: QEMU dies with the thread that started it."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


#: errors of fork/exec that say the host was short of something for a moment, not that
#: the program cannot run: EAGAIN and ENOMEM (process or memory limits), EFAULT (seen
#: from execve under a sandboxing kernel while many guests were starting)
_TRANSIENT_SPAWN_ERRORS = frozenset({errno.EAGAIN, errno.ENOMEM, errno.EFAULT})
SPAWN_ATTEMPTS = 4


def _spawn(args: list[str], out) -> subprocess.Popen:
    """Popen ``args`` with stdout and stderr to ``out``, retrying a transient fork/exec failure."""
    for attempt in range(1, SPAWN_ATTEMPTS + 1):
        try:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True)
        except OSError as e:
            if e.errno not in _TRANSIENT_SPAWN_ERRORS or attempt == SPAWN_ATTEMPTS:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def run(argv: list[str], timeout: float) -> Boot:
    """Boot ``argv`` (without console options: they are added here) for at most ``timeout`` s."""
    with tempfile.TemporaryDirectory(prefix="pciplan-guest-") as tmp:
        console = os.path.join(tmp, "console")
        errfile = os.path.join(tmp, "qemu.out")
        full = list(argv[:1]) + console_args(console) + list(argv[1:])
        start = time.monotonic()
        timed_out = False
        with open(errfile, "wb") as err:
            proc = _spawn(pdeathsig_prefix() + full, err)
            try:
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
            finally:
                # also on KeyboardInterrupt / SIGTERM turned into an exception
                _stop(proc)
        elapsed = time.monotonic() - start
        return Boot(full, _read(console), _read(errfile, 64 * 1024), proc.returncode, elapsed, timed_out)
