"""``pciplan plan`` without click: the common forms, started fast.

Importing click (and building the command group) costs more than planning a
typical guest, so the console script first offers its arguments to ``run``.
It takes only the plain forms

    pciplan plan [FILE | -] [-o OUT | --output OUT | --output=OUT]

(in any order, FILE not starting with ``-``) and then exits; for anything else
(another option, ``--help``, ``--``, shell completion...) it returns at once
and click handles the command line as before.  What it does is exactly what
the click command ``plan`` does in ``plan.py`` under ``LazyGroup.invoke``:
same output, same messages and warnings, same exit statuses.
"""

from __future__ import annotations

import os
import sys


def parse(argv: list[str]) -> tuple[str, str | None] | None:
    """``(FILE, OUT)`` for a plain ``plan`` command line, or None when click should handle it."""
    if not argv or argv[0] != "plan":
        return None
    file: str | None = None
    output: str | None = None
    seen_output = False
    rest = argv[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("-o", "--output") or arg.startswith("--output="):
            if seen_output:
                return None
            seen_output = True
            if arg.startswith("--output="):
                value = arg[len("--output="):]
            else:
                i += 1
                if i >= len(rest):
                    return None
                value = rest[i]
            if not value or (value.startswith("-") and value != "-"):
                return None
            output = value
        elif arg == "-" or not arg.startswith("-"):
            if file is not None or not arg:
                return None
            file = arg
        else:
            return None
        i += 1
    return (file if file is not None else "-"), output


def _handled_by_click() -> bool:
    # click's shell completion is driven by _<PROG>_COMPLETE
    return any(name.endswith("_COMPLETE") for name in os.environ)


def run(argv: list[str], exit_now: bool = False) -> None:
    """Plan and exit, for a plain ``plan`` command line; return for anything else.

    With ``exit_now`` (the console script: nothing runs after us) the process
    ends with ``os._exit`` once the output is flushed and the atexit handlers
    have run, instead of tearing the interpreter down (freeing lxml, every
    module and object: ~5 ms of a ~45 ms run).  Exit status and output are the same.
    Such a process also runs without the cyclic garbage collector: it plans one
    document and ends, and the collections that importing lxml and pciplan set off
    (``import pciplan`` loads neither, so this comes first) freed nothing and cost
    3% of the run's instructions, and it imports lxml without the modules lxml loads
    only for features a plan never uses (``lxmlimport``).
    """
    parsed = parse(argv)
    if parsed is None or _handled_by_click():
        return
    if exit_now:
        import gc

        gc.disable()
    try:
        status = _run(*parsed, lean=exit_now)
    except SystemExit as stop:
        if not exit_now:
            raise
        _exit_now(stop.code)
    if exit_now:
        _exit_now(status)
    sys.exit(status)


def _exit_now(status: object) -> None:
    """``sys.exit(status)`` without interpreter finalization, when that is safe."""
    if status is None:
        status = 0
    if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 255:
        sys.exit(status)
    import atexit

    try:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BaseException:  # noqa: BLE001 - let the normal shutdown report it, as before
        sys.exit(status)
    os._exit(status)


def _run(file: str, output: str | None, lean: bool = False) -> int:
    from . import HANDLED, exit_for, guarded

    try:
        if lean:
            from .lxmlimport import import_etree

            import_etree()
        guarded(lambda: _plan(file, output))  # as in plan.py
    except HANDLED as exc:  # as in LazyGroup.invoke
        exit_for(exc)
    return 0


def _plan(file: str, output: str | None) -> None:
    from ..planner import Options
    from . import plan_file

    plan_file(file, output, Options(hotplug_ports=None, placement="libvirt", capacity="libvirt"))
