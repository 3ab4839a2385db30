"""``<clock>`` and its timers as libvirt 9.0 reads and refuses them, at three stages:

1. the parser (``check``): the offset and what it needs, each timer's words;
2. post-parse (``post_parse``): what a timer may not set (a frequency or a mode on any
   timer but the TSC, ...);
3. QEMU's validation of the domain (``validate``): the timers QEMU lacks or has only on
   some architectures, the tick policies its RTC and PIT take, the latest absolute start.
"""

from __future__ import annotations


from lxml import etree

from . import machines, parsecheck
from .errors import PlanError
from .records import Value

OFFSETS = frozenset({"utc", "localtime", "variable", "timezone", "absolute"})
BASES = frozenset({"utc", "localtime"})
#: TABLE: a timer's attributes the parser reads as one of a few words
TIMER_WORDS: dict[str, frozenset[str]] = {
    "name": frozenset({"platform", "pit", "rtc", "hpet", "tsc", "kvmclock", "hypervclock",
                       "armvtimer"}),
    "present": frozenset({"yes", "no"}),
    "tickpolicy": frozenset({"delay", "catchup", "merge", "discard"}),
    "track": frozenset({"boot", "guest", "wall", "realtime"}),
    "mode": frozenset({"auto", "native", "emulate", "paravirt", "smpsafe"}),
}
#: the latest start (seconds since the epoch) QEMU takes for offset='absolute'
ABSOLUTE_START_MAX = 253402300799
#: the timers QEMU has on x86 only
X86_TIMERS = frozenset({"tsc", "kvmclock", "hypervclock"})
#: TABLE: the tick policies QEMU's RTC and PIT do not take
TICKPOLICIES_QEMU_LACKS = {"rtc": frozenset({"merge", "discard"}), "pit": frozenset({"merge"})}


class ClockFacts(Value):
    """What the later stages need of ``<clock>``."""

    offset: str = "utc"
    start: int = 0  # offset='absolute'
    #: each timer's attributes, with 'catchup' when it has a <catchup> with attributes
    timers: list[dict[str, str]]

    def __init__(self, offset='utc', start=0, timers=...) -> None:
        self.offset = offset
        self.start = start
        self.timers = [] if timers is ... else timers


def _integer(text: str) -> bool:
    s = text.strip()
    return s.lstrip("+-").isdigit()


def check(clock: etree._Element | None) -> ClockFacts:
    """libvirt's parser: the offset (and the attribute each offset needs), then the timers."""
    facts = ClockFacts()
    if clock is None:
        return facts
    offset = clock.get("offset")
    if offset:  # ('' is none)
        if offset not in OFFSETS:
            raise PlanError(f"unknown clock offset '{offset}'", "clock", clock.sourceline,
                            kind="unsupported")
        facts.offset = offset
    adjustment = clock.get("adjustment")
    if facts.offset in ("utc", "localtime"):
        if adjustment and adjustment != "reset" and not _integer(adjustment):
            raise PlanError(f"unknown clock adjustment '{adjustment}'", "clock", clock.sourceline)
    elif facts.offset == "variable":
        basis = clock.get("basis")
        if basis and basis not in BASES:
            raise PlanError(f"unknown clock basis '{basis}'", "clock", clock.sourceline,
                            kind="unsupported")
    elif facts.offset == "absolute":
        start = clock.get("start") or ""
        if not start.isdigit():  # (one it cannot read is missing)
            raise PlanError("missing 'start' attribute for clock with offset='absolute'", "clock",
                            clock.sourceline, kind="internal")
        facts.start = int(start)
    elif clock.get("timezone") is None:
        raise PlanError("missing 'timezone' attribute for clock with offset='timezone'", "clock",
                        clock.sourceline, kind="internal")
    for timer in clock.iterfind("timer"):
        if timer.get("name") is None:
            raise PlanError("Missing required attribute 'name' in element 'timer'", "clock",
                            timer.sourceline)
        for attr, words in TIMER_WORDS.items():
            value = timer.get(attr)
            if value is not None and value not in words:
                raise parsecheck._invalid(timer, attr, value, "clock")
        attrs = dict(timer.attrib)
        catchup = timer.find("catchup")
        if catchup is not None and len(catchup.attrib):
            attrs["catchup"] = ""
        facts.timers.append(attrs)
    return facts


def post_parse(facts: ClockFacts) -> None:
    """libvirt's post-parse of the timers: what each may set."""
    for t in facts.timers:
        name = t["name"]
        if name in ("kvmclock", "hypervclock") and "tickpolicy" in t:
            raise PlanError(f"timer {name} doesn't support setting of timer tickpolicy", "clock",
                            kind="unsupported")
        if "catchup" in t and t.get("tickpolicy") != "catchup":
            raise PlanError("setting of timer catchup policies is only supported with "
                            "tickpolicy='catchup'", "clock")
        if name != "tsc":
            for attr in ("frequency", "mode"):
                if attr in t:
                    raise PlanError(f"timer {name} doesn't support setting of timer {attr}", "clock",
                                    kind="unsupported")
        if name not in ("platform", "rtc") and "track" in t:
            raise PlanError(f"timer {name} doesn't support setting of timer track", "clock",
                            kind="unsupported")


def validate(facts: ClockFacts, virt_type: str, arch: str, machine: str) -> None:
    """QEMU's checks of the timers, then of an absolute start."""
    for t in facts.timers:
        name = t["name"]
        if name == "platform":
            raise PlanError("unsupported timer type (name) 'platform'", "clock", kind="unsupported")
        unsupported = (name in X86_TIMERS and arch not in machines.X86 and t.get("present") == "yes") or \
            (name == "armvtimer" and not (arch == "aarch64" and virt_type == "kvm"))
        if unsupported:
            raise PlanError(f"Configuring the '{name}' timer is not supported for virtType={virt_type} "
                            f"arch={arch} machine={machines.canonical(arch, machine)} guests", "clock",
                            kind="unsupported")
        if name == "rtc" and t.get("track") == "boot":
            raise PlanError("unsupported rtc timer track 'boot'", "clock", kind="unsupported")
        policy = t.get("tickpolicy")
        # (a PIT catches up only as KVM's in-kernel PIT, which x86's QEMU alone has)
        if policy in TICKPOLICIES_QEMU_LACKS.get(name, ()) or \
                (name == "pit" and policy == "catchup" and arch not in machines.X86):
            what = "rtc timer tickpolicy" if name == "rtc" else "pit tickpolicy"
            raise PlanError(f"unsupported {what} '{policy}'", "clock", kind="unsupported")
        if name == "hpet" and t.get("present") == "yes" and arch not in machines.X86:
            raise PlanError("hpet timer is not supported", "clock", kind="unsupported")
    if facts.offset == "absolute" and facts.start > ABSOLUTE_START_MAX:
        raise PlanError(f"The maximum 'start' value for <clock offset='absolute'> is {ABSOLUTE_START_MAX}",
                        "clock", kind="unsupported")
