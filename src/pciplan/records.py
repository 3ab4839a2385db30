"""The base of pciplan's record classes (a device, an address, the facts read of a device...).

They were dataclasses; ``@dataclass`` compiles its generated methods at every import, which
cost a cold ``pciplan plan`` 9 ms.  Each record now writes its own ``__init__`` (on the hot
path, and from the bytecode cache) and takes ``__repr__`` and, for value records, ``__eq__``
from here, over its fields: the annotated names of the class and its bases, in order, as
dataclasses counts them.
"""

from __future__ import annotations


class Record:
    """A record compared by identity; ``repr`` shows its fields."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        names: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            if klass.__module__ != __name__ and klass is not object:
                names.update(dict.fromkeys(vars(klass).get("__annotations__", {})))
        cls._fields = tuple(names)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__qualname__}({inner})"


class Value(Record):
    """A record equal to another of its class with equal fields (and so not hashable)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    __hash__ = None  # type: ignore[assignment]
