"""Reading inputs and writing outputs safely: stdin/stdout, atomic in-place replacement."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .errors import InputError
from .xmlio import MAX_INPUT


def read_input(path: str | None) -> bytes:
    """The bytes of FILE, or of standard input for ``-`` / None."""
    try:
        if path in (None, "-"):
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_INPUT + 1)
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror or err}", path) from None
    if len(data) > MAX_INPUT:
        raise InputError(f"input is larger than {MAX_INPUT // (1024 * 1024)} MiB", path)
    return data


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: a temporary file in the same
    folder, fsync, then rename over the original, keeping its permissions."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def write_output(data: bytes, out: str | None) -> None:
    if out in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomic(out, data)
