"""Golden files: hand-written domains and what a real libvirt 9.0 made of them.

tests/golden/<name>.in.xml is the input; <name>.libvirt.xml is libvirt's
`dumpxml --inactive` after `define` (pciplan must produce the same PCI
layout), or <name>.libvirt-error.txt is libvirt's refusal (pciplan must raise
PlanError).  No daemon is needed here; tests/golden/regenerate.py re-creates the
expected files from a real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import layout
from support.difftest import message_core

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(GOLDEN.glob("*.in.xml"))


def _name(p: Path) -> str:
    return p.name[: -len(".in.xml")]


@pytest.fixture(scope="module")
def pciplan():
    import pciplan as mod
    return mod


def _options():
    """The host the expected files were made on (regenerate.py's daemon): x86_64 with KVM,
    no swtpm, no SEV, SPICE TLS off in qemu.conf, no SGX, Debian 12's QEMU emulators; so
    that its host-dependent refusals (``host-*`` cases) hold on any machine the tests run on."""
    from pciplan import machines
    from pciplan.hostcaps import Host, Swtpm
    from pciplan.planner import Options
    emulators = {*machines.EMULATOR_MACHINES, *machines.DEFAULT_EMULATORS.values(), *machines.UNPROBED_EMULATORS,
                 "/usr/bin/kvm", "/usr/bin/qemu-system-x86_64-microvm"}
    return Options(host=Host("x86_64", Swtpm(False, frozenset()), sev=False, spice_tls=False, sgx=False,
                             installed=emulators.__contains__))


def test_every_input_has_an_expectation():
    lonely = [_name(p) for p in CASES
              if not (GOLDEN / f"{_name(p)}.libvirt.xml").exists()
              and not (GOLDEN / f"{_name(p)}.libvirt-error.txt").exists()]
    assert CASES, "no golden cases found"
    assert not lonely, f"run tests/golden/regenerate.py for: {', '.join(lonely)}"


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_golden(case, pciplan):
    expected = GOLDEN / f"{_name(case)}.libvirt.xml"
    error = GOLDEN / f"{_name(case)}.libvirt-error.txt"
    text = case.read_text()
    if error.exists():
        with pytest.raises(pciplan.PlanError) as raised:
            out = pciplan.plan(text, _options())
            pytest.fail(f"libvirt rejects this domain ({error.read_text().strip()}), pciplan planned it:\n"
                        f"{out[:300]}")
        # and says why in libvirt's words (numbers and quoted names aside)
        assert message_core(raised.value.reason) == message_core(error.read_text())
        return
    try:
        out = pciplan.plan(text, _options())
    except pciplan.PlanError as err:
        pytest.fail(f"pciplan rejects a domain libvirt accepts: {err}")
    diffs = layout.compare_xml(expected.read_text(), out)
    assert not diffs, "PCI layout differs from libvirt's:\n" + "\n".join(str(d) for d in diffs)
    # NIC models as libvirt spells them (it matches known ones in any case, writes its own)
    assert _nic_models(out) == _nic_models(expected.read_text())
    # and a controller model pciplan writes (where the XML has none, or 'auto') is libvirt's
    written = _controller_models(expected.read_text())
    mine = {k: m for k, m in _controller_models(out).items() if m and k in written}
    assert mine == {k: written[k] for k in mine}


def _nic_models(text: str) -> list[str | None]:
    from lxml import etree
    root = etree.fromstring(text.encode())
    return [m.get("type") for m in root.iterfind("devices/interface/model")]


def _controller_models(text: str) -> dict[tuple, str | None]:
    """Each controller's model by (type, index, n-th of them: USB companions share an index)."""
    from lxml import etree
    out: dict[tuple, str | None] = {}
    for c in etree.fromstring(text.encode()).iterfind("devices/controller"):
        key = (c.get("type"), c.get("index"))
        n = sum(1 for k in out if k[:2] == key)
        out[(*key, n)] = c.get("model")
    return out
