"""The ``pciplan`` command line: a thin edge over the library.

Each subcommand lives in its own module of this package and is imported only
when it runs, so ``pciplan plan`` starts fast.  Errors become one line on
stderr and an exit status:

* 0  planned / OK / no difference,
* 1  the configuration cannot be planned (``plan``), or a difference or a
     problem was found (``diff``, ``check``, ``verify``),
* 2  usage error, unreadable input, not XML, or not a ``<domain>``.

Every path of the command (the click group's ``LazyGroup.invoke``, the
subcommands' ``guarded``, and the click-free fast path of ``pciplan plan`` in
``fastplan``) turns exceptions into that line and status with ``exit_for``
below, the one place where they are defined.  This module must not import
click: the fast path runs without it, warnings and errors included.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn, TypeVar

from ..errors import PciplanError

if TYPE_CHECKING:
    import click

T = TypeVar("T")

NO_HOST_PROBE_HELP = ("Do not ask this host (its PCI devices in sysfs, its CPU, its emulators, swtpm, SEV, "
                      "SGX, qemu.conf's SPICE TLS) as libvirt asks the host it runs on: plan host PCI "
                      "devices as PCI Express, and as if the rest were there for the guest.")


def no_host_probe(fn: Callable[..., T]) -> Callable[..., T]:
    """The ``--no-host-probe`` flag of the commands that plan (click is imported here, when a
    subcommand's module is loaded, never by the fast path)."""
    import click

    return click.option("--no-host-probe", "no_host_probe", is_flag=True, help=NO_HOST_PROBE_HELP)(fn)

#: subcommand -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "plan": "pciplan.cli.plan:command",
    "tree": "pciplan.cli.tree:command",
    "diff": "pciplan.cli.diff:command",
    "check": "pciplan.cli.check:command",
    "qemu-args": "pciplan.cli.qemu:qemu_args",
    "verify": "pciplan.cli.qemu:verify",
    "hotplug": "pciplan.cli.hotplug:command",
}


#: the longest error line printed; longer ones (a huge attribute value...) are cut in the middle
MAX_ERROR = 1000


def one_line(text: str) -> str:
    """``text`` as one printable line: control characters escaped, length bounded."""
    out = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    if len(out) > MAX_ERROR:
        half = MAX_ERROR // 2
        out = f"{out[:half]}...[{len(out) - 2 * half} characters]...{out[-half:]}"
    return out


#: exit status of an internal error (a bug): like an unusable input, nothing was written
INTERNAL_ERROR = 2
#: exit status when the document is nested too deeply or memory runs out
RESOURCE_ERROR = 2
#: exit status when the reader of our output went away
BROKEN_PIPE = 1
#: exit status on Ctrl-C (128 + SIGINT)
INTERRUPTED = 130

#: the exceptions ``exit_for`` turns into a message and a status: all but ``SystemExit``
#: and ``GeneratorExit`` (the click group lets click's own exceptions through first)
HANDLED = (Exception, KeyboardInterrupt)


def echo_err(message: str) -> None:
    """One line on stderr (plain text: ``one_line`` has escaped what a terminal would
    take as a control sequence; Python's stderr backslash-escapes what it cannot encode)."""
    stream = sys.stderr
    if stream is not None:
        stream.write(f"{message}\n")
        stream.flush()


def error(message: str, status: int) -> NoReturn:
    echo_err(f"error: {one_line(message)}")
    sys.exit(status)


def fail(err: PciplanError) -> NoReturn:
    error(str(err), err.exit_status)


def exit_for(exc: BaseException) -> NoReturn:
    """End the command for ``exc`` (one of ``HANDLED``) that reached its top level:
    one ``error: ...`` line on stderr (none for a broken pipe) and the exit status."""
    if isinstance(exc, PciplanError):
        fail(exc)
    if isinstance(exc, RecursionError):
        error("document nested too deeply", RESOURCE_ERROR)
    if isinstance(exc, MemoryError):
        error("out of memory", RESOURCE_ERROR)
    if isinstance(exc, BrokenPipeError):
        _broken_pipe()
    if isinstance(exc, KeyboardInterrupt):
        echo_err("error: interrupted")
        sys.exit(INTERRUPTED)
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "pciplan").split(".")[0] != "pciplan":
        error(f"a module pciplan needs is not installed: {exc} (reinstall pciplan with its "
              "dependencies)", INTERNAL_ERROR)
    _internal(exc)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn pciplan errors into ``error: ...`` and their exit status."""
    try:
        return fn()
    except (PciplanError, RecursionError) as err:
        exit_for(err)


def plan_file(path: str, target: str | None, options: Any, label: str = "") -> None:
    """``pciplan plan``'s work on one file: read, plan, write to ``target`` (None: stdout),
    then its warnings on stderr (``label`` before each: the file, when there are several)."""
    from .. import api, fileio, xmlio

    doc = xmlio.load(fileio.read_input(path))
    plan = api.plan_document(doc, options)
    fileio.write_output(xmlio.dump(doc), target)
    for w in plan.warnings:
        echo_err(f"warning: {one_line(f'{label}{w}')}")


def each_file(files: tuple[str, ...], run: Callable[[str], int]) -> tuple[int, int]:
    """``run`` on every file, going on past one that cannot be read or planned (its
    ``error: FILE: ...`` line goes to stderr): (the highest status, how many failed)."""
    status = failed = 0
    for path in files:
        try:
            status = max(status, run(path))
        except PciplanError as err:
            echo_err(f"error: {one_line(f'{path}: {err}')}")
            status = max(status, err.exit_status)
            failed += 1
    return status, failed


def _internal(exc: BaseException) -> NoReturn:
    """The last line of defence: an unexpected exception is a pciplan bug, reported in one
    line (PCIPLAN_DEBUG=1 shows the traceback instead)."""
    if os.environ.get("PCIPLAN_DEBUG"):
        raise exc
    error(f"internal error: {type(exc).__name__}: {exc} (a pciplan bug: please report it "
          "with the input)", INTERNAL_ERROR)


def _broken_pipe() -> NoReturn:
    """The reader of our output went away (``pciplan plan x | head``): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(BROKEN_PIPE)


class _Main:
    """The ``pciplan`` command: the click group of ``group.py``, built (and click
    imported) on first use.

    A plain call ``main()`` is how the console script and ``python -m pciplan``
    run the CLI: it first offers ``sys.argv`` to the click-free fast path of
    ``pciplan plan`` (``fastplan``), which takes the plain forms and exits;
    anything else goes to click.  Everything but a plain call (``main.main(...)``,
    ``CliRunner().invoke(main, ...)``, ``main.commands``...) is the group itself.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            from .fastplan import run

            # returns only when the arguments are not its to handle
            run(sys.argv[1:], exit_now=_called_as_program(sys._getframe(1)))
        return _group()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(_group(), name)

    def __repr__(self) -> str:
        return "<pciplan.cli.main (lazy click group)>"


def _called_as_program(frame: Any) -> bool:
    """Is ``main()`` called by the ``pciplan`` console script or ``python -m pciplan``
    (module-level code of ``__main__``), so that nothing runs after it?"""
    g = frame.f_globals
    if g.get("__name__") != "__main__" or frame.f_code.co_name != "<module>":
        return False
    name = os.path.basename(g.get("__file__") or "")
    return name == "pciplan" or (name == "__main__.py" and g.get("__package__") == "pciplan")


def _group() -> "click.Group":
    from .group import main as group

    return group


def __getattr__(name: str) -> Any:
    if name == "LazyGroup":
        from .group import LazyGroup

        return LazyGroup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


main = _Main()
