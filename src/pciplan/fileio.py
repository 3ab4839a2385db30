"""Reading inputs and writing outputs safely: stdin/stdout, atomic in-place replacement.

Writing a file never leaves it half-written: the data goes to a temporary file
in the same folder, is flushed to disk, and is renamed over the target in one
step.  The target keeps its permissions (and owner, when we may set it); a new
file gets the usual mode for the umask.  A symlink is followed, so the file it
points to is replaced and the link stays a link.  On any error the temporary
file is removed and the target is left as it was.  A file that already holds
exactly the bytes to write is not touched at all (same inode, same mtime), so
re-planning a planned file changes nothing a build tool, a file watcher or a
configuration manager could see.
"""

from __future__ import annotations

import os
import stat
import sys

from .errors import InputError, OutputError
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: a temporary file in the same
    folder, fsync, then rename over the original, keeping its permissions."""
    try:
        _write_atomic(path, data)
    except OSError as err:
        raise OutputError(f"cannot write: {err.strerror or err}", path) from None


def _write_atomic(path: str, data: bytes) -> None:
    target = os.path.realpath(path)  # write through a symlink, keep the link
    folder = os.path.dirname(target) or "."
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError("is a directory", path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        # a device or a pipe (/dev/null, /dev/stdout, a FIFO): nothing to replace, just write
        with open(path, "wb") as f:
            f.write(data)
        return
    if st is not None and st.st_size == len(data) and _holds(target, data):
        return
    import tempfile  # only here: it costs the CLI's start-up time

    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if st is not None:
            if hasattr(os, "chown"):
                try:
                    os.chown(tmp, st.st_uid, st.st_gid)
                except OSError:
                    pass  # not ours to give away: keep our own
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
        else:
            os.chmod(tmp, 0o666 & ~_umask())
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


def _holds(path: str, data: bytes) -> bool:
    """Whether the file ``path`` holds exactly ``data`` (False when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == data
    except OSError:
        return False


def write_output(data: bytes, out: str | None) -> None:
    if out in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomic(out, data)
