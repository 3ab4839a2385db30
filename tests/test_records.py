"""The record bases of ``pciplan.records``: the knowledge tables' rows are named tuples, the
planner's options a value with ``replace``."""

from __future__ import annotations

import pickle

import pytest

from pciplan.address import PciAddress
from pciplan.machines import I440FX, Q35, Machine
from pciplan.planner import Options
from pciplan.records import Row


class Port(Row):
    """A test row."""

    name: str
    chassis: int = 1
    hotplug: bool = True

    def label(self) -> str:
        return f"{self.name}/{self.chassis}"


def test_a_row_is_a_named_tuple_with_its_defaults_methods_and_docstring():
    p = Port("root-port")
    assert p == ("root-port", 1, True)
    assert p._fields == ("name", "chassis", "hotplug")
    assert p._replace(chassis=4).label() == "root-port/4"
    assert Port.__doc__ == "A test row."
    assert Port.__annotations__ == {"name": "str", "chassis": "int", "hotplug": "bool"}
    with pytest.raises(AttributeError):
        p.chassis = 2
    assert {p: 1}[Port("root-port", 1, True)] == 1
    assert not isinstance(p, Row)


def test_a_row_field_without_default_after_one_with_is_refused():
    with pytest.raises(TypeError, match="without a default follows"):
        class Bad(Row):
            a: int = 0
            b: int


def test_table_rows_pickle_and_compare_as_tuples():
    a = PciAddress(0, 1, 2, 3)
    assert pickle.loads(pickle.dumps(a)) == a
    assert sorted([PciAddress(0, 2, 0, 0), a]) == [a, PciAddress(0, 2, 0, 0)]
    assert isinstance(Q35, Machine) and Q35 != I440FX
    assert Q35._replace(family="x").family == "x" and Q35.family == "q35"


def test_options_replace_copies_and_refuses_unknown_fields():
    o = Options(probe_host=False, hotplug_ports=3)
    r = o.replace(placement="flat")
    assert (r.placement, r.hotplug_ports, r.probe_host) == ("flat", 3, False)
    assert o.placement == "libvirt" and r != o and o == Options(probe_host=False, hotplug_ports=3)
    with pytest.raises(TypeError, match="no field 'bogus'"):
        o.replace(bogus=1)
