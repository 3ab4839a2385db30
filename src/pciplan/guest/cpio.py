"""A writer for the cpio "newc" format, the one the Linux kernel unpacks as an initramfs.

Only what an initramfs needs: directories, regular files, symlinks and
character devices, all owned by root.  The archive is deterministic (fixed
mtime, inode numbers in order of addition), so the same content gives the
same bytes and can be cached by its hash.
"""

from __future__ import annotations

import stat

TRAILER = "TRAILER!!!"


class Writer:
    """Collect entries, then ``getvalue()`` the archive."""

    def __init__(self, mtime: int = 0) -> None:
        self._parts: list[bytes] = []
        self._ino = 0
        self._mtime = mtime
        self._names: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        name = name.lstrip("/")
        if name in self._names and name != TRAILER:
            raise ValueError(f"duplicate cpio entry {name!r}")
        self._names.add(name)
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, self._mtime, len(data), 0, 0,
                  rdev[0], rdev[1], len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self._parts.append(header + encoded + _pad(len(header) + len(encoded)))
        self._parts.append(data + _pad(len(data)))

    def directory(self, name: str, perm: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | perm, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def getvalue(self) -> bytes:
        """The archive, with its trailer (the writer can take no more entries)."""
        self._entry(TRAILER, 0, nlink=1)
        out = b"".join(self._parts)
        self._parts = []
        return out


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def read(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, data) of a newc archive (for tests and for inspecting an initrd)."""
    out: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while pos + 110 <= len(data):
        if data[pos:pos + 6] != b"070701":
            raise ValueError(f"not a newc cpio header at offset {pos}")
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = data[pos:pos + namesize - 1].decode()
        pos += namesize + (-(110 + namesize) % 4)
        body = data[pos:pos + size]
        pos += size + (-size % 4)
        if name == TRAILER:
            break
        out[name] = (mode, body)
    return out
