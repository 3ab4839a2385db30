"""The base of pciplan's record classes (a device, the facts read of a device, a table row...).

They were dataclasses; ``@dataclass`` compiles its generated methods at every import, which
cost a cold ``pciplan plan`` 9 ms.  Each record now writes its own ``__init__`` (on the hot
path, and from the bytecode cache) and takes ``__repr__`` and, for value records, ``__eq__``
from here, over its fields: the annotated names of the class and its bases, in order, as
dataclasses counts them.

The knowledge tables' rows (a machine, a controller model, a PCI address) are ``Row`` classes:
named tuples written like ``typing.NamedTuple``, made without compiling their annotations.
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

    def replace(self, **changes):
        """A copy with ``changes`` made (its class's ``__init__`` takes every field by name)."""
        unknown = sorted(set(changes) - set(self._fields))
        if unknown:
            raise TypeError(f"{type(self).__qualname__} has no field {unknown[0]!r}")
        return type(self)(**{**{n: getattr(self, n) for n in self._fields}, **changes})


class _RowMaker(type):
    """Makes each ``Row`` subclass a ``collections.namedtuple`` of its annotated fields."""

    def __new__(mcls, name, bases, namespace):
        if not namespace.get("_row_base"):
            return _row(name, namespace)
        return super().__new__(mcls, name, bases, namespace)


class Row(metaclass=_RowMaker):
    """A table row: an immutable, hashable tuple of named fields, written like
    ``typing.NamedTuple`` (annotated fields, defaults, methods, a docstring).

    ``typing.NamedTuple`` compiles every field's annotation when the class is made (~0.1 ms
    a table); a row leaves them as the strings they are.  ``isinstance(x, Row)`` is False:
    the class made is the named tuple itself.
    """

    _row_base = True


def _row(name: str, namespace: dict):
    from collections import namedtuple

    annotations = namespace.get("__annotations__", {})
    fields = list(annotations)
    defaults = [namespace[f] for f in fields if f in namespace]
    if defaults and any(f not in namespace for f in fields[len(fields) - len(defaults):]):
        raise TypeError(f"{name}: a field without a default follows one with a default")
    cls = namedtuple(name, fields, defaults=defaults, module=namespace.get("__module__"))
    cls.__annotations__ = dict(annotations)
    for key, value in namespace.items():
        if key not in annotations and key not in ("__module__", "__qualname__", "__annotations__"):
            setattr(cls, key, value)
    cls.__qualname__ = namespace.get("__qualname__", name)
    return cls
