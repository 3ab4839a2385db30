"""Run one guest: QEMU (TCG, no firmware disk, serial console to a file), bounded and cleaned up.

``run(argv, timeout)`` starts QEMU in its own process group with the serial
console written to a private temporary file, waits for it to power off, and
always leaves nothing behind: on timeout, Ctrl-C or any error the whole group
gets SIGTERM, then SIGKILL, and the temporary directory is removed.
"""

from __future__ import annotations

import os
import signal
import subprocess
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


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def run(argv: list[str], timeout: float) -> Boot:
    """Boot ``argv`` (without console options: they are added here) for at most ``timeout`` s."""
    with tempfile.TemporaryDirectory(prefix="pciplan-guest-") as tmp:
        console = os.path.join(tmp, "console")
        errfile = os.path.join(tmp, "qemu.out")
        full = list(argv[:1]) + console_args(console) + list(argv[1:])
        start = time.monotonic()
        timed_out = False
        with open(errfile, "wb") as err:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    close_fds=True, start_new_session=True)
            try:
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
            finally:
                # also on KeyboardInterrupt / SIGTERM turned into an exception
                _kill_group(proc)
        elapsed = time.monotonic() - start
        return Boot(full, _read(console), _read(errfile, 64 * 1024), proc.returncode, elapsed, timed_out)
