"""Differential test against a real libvirt 9.0 daemon.

Generates random domain XMLs (support/randomdomain.py), asks the local libvirt
daemon what it makes of each (support/libvirt_oracle.py, cached under
tests/.oracle-cache) and checks pciplan.plan against it:

* libvirt accepts -> pciplan gives the same PCI layout;
* libvirt rejects -> pciplan raises PlanError;
* on a subsample, pciplan's output fed back to libvirt comes back unchanged.

Environment:
  PCIPLAN_DIFF_N          number of domains (default 500; 0 skips)
  PCIPLAN_DIFF_OTHER_N    number of domains whose machine is swapped for another machine of
                          their arch (boards, x-remote, old versions, names QEMU lacks;
                          randomdomain.OTHER_MACHINES), where both refusals must also say the
                          same (default 120; 0 skips)
  PCIPLAN_DIFF_SEED       stream seed (default: random; printed on failure)
  PCIPLAN_DIFF_SPREAD     family weights, e.g. "q35=1,pc=1" (default: randomdomain.DEFAULT_SPREAD)
  PCIPLAN_DIFF_JOBS       parallel threads (default: max(2, CPUs))
  PCIPLAN_DIFF_ROUNDTRIP  fraction of identical cases round-tripped (default 0.1)
  PCIPLAN_ORACLE_CACHE    oracle cache dir ("off" disables)
  PCIPLAN_DIFF_PLANNER    what is tested: pciplan (default), oracle (libvirt against itself),
                          or MODULE:FUNCTION[:EXCEPTION]

Failing cases are saved (input, libvirt's answer, pciplan's answer, diff) under
a temporary directory named in the failure message; reproduce one with
  python tests/support/difftest.py --seed SEED --index I
"""

from __future__ import annotations

import os
import random

import pytest

from support import difftest, libvirt_oracle

N = int(os.environ.get("PCIPLAN_DIFF_N", "500"))
OTHER_N = int(os.environ.get("PCIPLAN_DIFF_OTHER_N", "120"))
SEED = os.environ.get("PCIPLAN_DIFF_SEED") or str(random.randrange(10**9))
SPREAD = os.environ.get("PCIPLAN_DIFF_SPREAD") or None
JOBS = int(os.environ.get("PCIPLAN_DIFF_JOBS", str(max(2, os.cpu_count() or 2))))
ROUNDTRIP = float(os.environ.get("PCIPLAN_DIFF_ROUNDTRIP", "0.1"))
PLANNER = os.environ.get("PCIPLAN_DIFF_PLANNER", "pciplan")


def _oracle_and_planner(n: int, what: str, knob: str):
    """The daemon and the planner under test, or a skip with its reason."""
    if n <= 0:
        pytest.skip(f"{what} disabled ({knob}=0)")
    if not libvirt_oracle.available():
        pytest.skip(f"no libvirt daemon to compare with ({libvirt_oracle.unavailable_reason()}); "
                    "run scripts/setup-libvirt.sh as root to enable the differential test")
    oracle = libvirt_oracle.Oracle()
    return (oracle, *difftest.load_planner(PLANNER, oracle))


@pytest.fixture(scope="module")
def diff_run(tmp_path_factory):
    oracle, plan, plan_error = _oracle_and_planner(N, "differential test", "PCIPLAN_DIFF_N")
    from support import randomdomain

    doms = randomdomain.generate_many(SEED, N, SPREAD)
    results = difftest.run_many(doms, oracle, plan, plan_error, jobs=JOBS, roundtrip=ROUNDTRIP)
    save_dir = tmp_path_factory.mktemp("difftest-failures")
    return results, save_dir


def _report(results, statuses, save_dir, title):
    bad = [r for r in results if r.status in statuses]
    if not bad:
        return
    for r in bad:
        difftest.save_case(r, save_dir, f" --spread '{SPREAD}'" if SPREAD else "")
    text = difftest.grouped_failures(bad, examples=2)
    pytest.fail(f"{title}: {len(bad)} of {len(results)} random domains (PCIPLAN_DIFF_SEED={SEED})\n"
                f"{text}\n\ncases saved under {save_dir}\n"
                f"reproduce one: python tests/support/difftest.py --seed {SEED} --index I\n\n"
                f"{difftest.summary_table(results)}", pytrace=False)


def test_no_oracle_errors(diff_run):
    results, save_dir = diff_run
    _report(results, (difftest.ORACLE_ERROR,), save_dir, "libvirt could not be asked")


def test_accepted_domains_get_libvirts_layout(diff_run):
    results, save_dir = diff_run
    accepted = [r for r in results if r.libvirt_ok]
    _report(accepted, (difftest.MISMATCH, difftest.FALSE_REJECT, difftest.CRASH), save_dir,
            "pciplan disagrees with libvirt on domains libvirt accepts")


def test_rejected_domains_are_rejected(diff_run):
    results, save_dir = diff_run
    rejected = [r for r in results if r.libvirt_ok is False]
    _report(rejected, (difftest.FALSE_ACCEPT, difftest.CRASH), save_dir,
            "pciplan accepts (or crashes on) domains libvirt rejects")


def test_roundtrip_through_libvirt(diff_run):
    results, save_dir = diff_run
    if not any(r.roundtrip_done for r in results):
        pytest.skip("no case was round-tripped (no identical layout, or PCIPLAN_DIFF_ROUNDTRIP=0)")
    _report(results, (difftest.ROUNDTRIP,), save_dir,
            "libvirt rejects or changes pciplan's output")


# ---- the same guests on the other machines of their arch ------------------------------------
@pytest.fixture(scope="module")
def other_run(tmp_path_factory):
    oracle, plan, plan_error = _oracle_and_planner(OTHER_N, "other-machine differential test",
                                                   "PCIPLAN_DIFF_OTHER_N")
    from support import randomdomain

    doms = [randomdomain.generate_other_machine(SEED, i, SPREAD) for i in range(OTHER_N)]
    results = difftest.run_many(doms, oracle, plan, plan_error, jobs=JOBS, roundtrip=0)
    return results, tmp_path_factory.mktemp("difftest-other-machine-failures")


def test_other_machines_get_libvirts_answer(other_run):
    """Most of these guests are refused (a device the board lacks, a name QEMU 7.2 lacks): the
    refusal must be libvirt's first, which shows that the guest was laid out as libvirt lays
    it out before it gives up, as much as an accepted guest's layout does."""
    results, save_dir = other_run
    _report(results, (difftest.ORACLE_ERROR, difftest.MISMATCH, difftest.FALSE_REJECT, difftest.CRASH,
                      difftest.FALSE_ACCEPT), save_dir, "pciplan disagrees with libvirt on other machines")
    wrong = [r for r in results if r.message_match is False]
    for r in wrong:
        difftest.save_case(r, save_dir, "")
    assert not wrong, (
        f"{len(wrong)} of {len(results)} refusals differ from libvirt's (PCIPLAN_DIFF_SEED={SEED}):\n" +
        "\n".join(f"  {r.dom.name} ({r.dom.machine}): pciplan {r.plan_reason[:120]!r}, "
                  f"libvirt {difftest.message_core(r.libvirt_text)[:120]!r}" for r in wrong[:10]) +
        f"\ncases saved under {save_dir}")
