"""``pciplan tree``: show the PCI tree as the guest will see it."""

from __future__ import annotations

import os
import sys

import click

from . import guarded, no_host_probe


@click.command("tree")
@click.argument("file", required=False, default="-")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "dot", "svg"]), default="text",
              show_default=True, help="text: an annotated tree; json: schema tree-v1; "
                                      "dot/svg: a Graphviz drawing (svg runs Graphviz's `dot`).")
@click.option("--ascii", "ascii_only", is_flag=True, help="Draw the text tree with ASCII characters only.")
@click.option("--color/--no-color", default=None,
              help="Colour the text tree (default: only on a terminal, and not when NO_COLOR is set).")
@no_host_probe
def command(file: str, fmt: str, ascii_only: bool, color: bool | None, no_host_probe: bool) -> None:
    """Show the PCI tree of a domain XML (FILE, or - for stdin) as the guest will see it.

    Root bus(es), then every bridge/port and device with its address, whether
    it is PCI or PCI Express and whether it can be hot-plugged; per bus the
    free slots; a summary of bus numbers, IO windows and free hot-pluggable
    slots.  An unplanned document is planned in memory first: "+added" marks
    what pciplan added and "*placed" the addresses it chose.

    Exit status: 0 shown, 1 the configuration cannot be planned, 2 usage error,
    input that is not a domain document, or Graphviz missing for svg.
    """
    from .. import api, fileio, topology, tree, xmlio
    from ..errors import InputError, PciplanError
    from ..planner import Options

    def run() -> None:
        data = fileio.read_input(file)
        doc = xmlio.load(data)
        plan = api.plan_document(doc, Options(probe_host=not no_host_probe))
        name = doc.tree.getroot().findtext("name")
        view = tree.to_data(topology.build(plan), name=name.strip() if name else None)
        if fmt == "json":
            import json
            click.echo(json.dumps(view, indent=2))
        elif fmt == "dot":
            click.echo(tree.to_dot(view), nl=False)
        elif fmt == "svg":
            from .. import graphviz
            try:
                svg = graphviz.render_svg(tree.to_dot(view))
            except graphviz.GraphvizMissing as err:
                raise InputError(str(err)) from None
            except graphviz.GraphvizFailed as err:
                raise PciplanError(str(err)) from None
            sys.stdout.buffer.write(svg)
            sys.stdout.buffer.flush()
        else:
            _print_text(tree.to_lines(view, ascii=ascii_only), color)

    guarded(run)


def _print_text(lines, color: bool | None) -> None:
    """The text tree: coloured by rich on a terminal (or with ``--color``), plain otherwise."""
    if color is False or (color is None and _plainly_no_terminal()):
        _print_plain(lines)
        return
    from rich.console import Console
    from rich.text import Text

    from ..tree import STYLES

    console = Console(force_terminal=color if color else None, highlight=False, soft_wrap=True,
                      emoji=False, markup=False)
    if not (color or console.is_terminal):
        _print_plain(lines)
        return
    for line in lines:
        text = Text()
        for chunk, style in line:
            text.append(chunk, style=STYLES.get(style, "") or None)
        console.print(text)


#: what tells rich to take an output that is no terminal for one (or the reverse)
RICH_TERMINAL_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE")


def _plainly_no_terminal() -> bool:
    """stdout is no terminal and the environment does not tell rich otherwise: the tree is
    plain text, and rich (20 ms to import) is not needed to find that out."""
    if any(name in os.environ for name in RICH_TERMINAL_ENV):
        return False
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return True


def _print_plain(lines) -> None:
    sys.stdout.write("\n".join("".join(t for t, _ in line) for line in lines) + "\n")
    sys.stdout.flush()
