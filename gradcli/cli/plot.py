"""``gradcli plot``: f and its derivative over a range, in the terminal or a file."""

from __future__ import annotations

import os
import sys

import click
import numpy as np

from ..errors import UsageError
from .options import EXTRA, format_options, setup

FORMATS = ("plot", "json", "csv")


@click.command("plot", context_settings=EXTRA)
@click.argument("target")
@click.option("--var", "var", multiple=True, metavar="NAME=VALUE",
              help="An input whose name collides with an option of gradcli.")
@click.option("--along", metavar="[NAME=]VALUE",
              help="Plot along this direction through the point given by the inputs.")
@click.option("--t", "t_range", metavar="START:END",
              help="The range of t along --along (default -1:1).")
@click.option("--vary", metavar="NAME[INDEX]=START:END",
              help="Vary one component of an input, the others held: x[1]=-1:1.")
@click.option("--samples", type=click.IntRange(2, 10_000), default=None, metavar="N",
              help="Points sampled, evenly spaced (2 to 10,000; default: a round step, one "
                   "or two per column of the plot).")
@click.option("--width", type=click.IntRange(30, 1000), default=None, metavar="COLUMNS",
              help="Width of the terminal plot (default: the terminal's, else 80).")
@click.option("--height", type=click.IntRange(10, 1000), default=None, metavar="LINES",
              help="Height of the terminal plot (default: the terminal's, else 24).")
@click.option("--output", metavar="FILE",
              help='Write the figure to FILE (.svg .png .pdf); needs pip install '
                   '"gradcli[plot]".')
@format_options(FORMATS, "Output: plot (default), json or csv (the sampled points).")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True, help="Float type of the inputs and the computation.")
@click.option("--seed", type=click.IntRange(0), default=None, metavar="N",
              help="Seed for randn(...) input values.")
@click.option("--max-elements", type=click.IntRange(1), default=None, metavar="N",
              help="Refuse any array larger than N elements (default 10,000,000).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def plot_command(ctx: click.Context, target: str, **opts) -> int:
    """Plot TARGET and its derivative over a range of one input.

    A scalar input takes a range START:END; the other inputs are held at their
    values. For a vector input, plot along a line through its value
    (--along, over --t) or vary one of its components (--vary).

    \b
    Examples:
      gradcli plot "sin(x)*x" --x -6:6
      gradcli plot "dot(x,x)" --x 0,1,2 --along 1,0,0 --t -1:1
      gradcli plot "sum(abs(x))" --x 0,1,2 --vary x[1]=-1:1
      gradcli plot "tanh(x)" --x -3:3 --format csv

    --output FILE writes a figure, with matplotlib: pip install "gradcli[plot]".

    Exit codes: 0 ok, 2 usage or input error, 3 evaluation error, 70 internal error.
    """
    from .. import plot, render

    opts["wrt"] = ()
    tgt, inputs, _ = setup(ctx, target, opts, keep_text=plot.is_range)
    line = _line(inputs, opts)
    fixed = {n: v for n, v in inputs.items() if n != line.name}
    fmt = "json" if opts["json"] else opts["format"] or "plot"
    width, height = _size(opts)
    t = (plot.grid(line.lo, line.hi, opts["samples"]) if opts["samples"]
         else plot.round_grid(line.lo, line.hi, width))
    figure = plot.figure_class(opts["output"]) if opts["output"] else None
    samples = plot.sample(tgt, fixed, line, t, max_elements=opts["max_elements"])
    if figure is not None:
        plot.figure(samples, tgt.label, opts["output"], figure)
    if fmt == "json":
        click.echo(render.dumps({
            "schema": render.SCHEMA, "target": tgt.label, "kind": tgt.kind,
            "inputs": render.jsonable(fixed), "vary": line.axis,
            "along": render.jsonable(line.direction), "through": render.jsonable(line.base),
            **plot.records(samples),
            "kinks": [t for t in dict.fromkeys(t for t, _ in samples.kinks)],
            "warnings": samples.warnings}))
    elif fmt == "csv":
        out = ["t,f,derivative"]
        out += [",".join(render.text_value(np.float64(v)) for v in row)
                for row in zip(samples.t, samples.f, samples.derivative)]
        click.echo("\n".join(out))
    elif not opts["output"]:
        text = plot.terminal(samples, tgt.label, width, height, color=_color())
        click.echo(text, nl=False, color=True)
    if opts["output"]:
        render.say("note", f"wrote {opts['output']} ({len(t)} samples)")
    for w in samples.warnings:
        render.say("warning", w)
    for t, note in dict.fromkeys(samples.kinks):
        render.say("note", f"kink at {line.axis} = {t:g}: {note}")
    return 0


def _line(inputs: dict, opts: dict):
    """The one input that varies, and how, from the ranges and --along/--vary."""
    from .. import plot

    ranges = {n: v for n, v in inputs.items() if isinstance(v, str)}
    given = [o for o in ("along", "vary") if opts[o] is not None]
    if len(given) == 2:
        raise UsageError("give --along or --vary, not both")
    if opts["t_range"] is not None and opts["along"] is None:
        raise UsageError("--t is the range along --along; give --along too")
    if ranges and given:
        n = next(iter(ranges))
        raise UsageError(f"--{n} {ranges[n]} is a range, and --{given[0]} also says what "
                         "varies: give one of them")
    if len(ranges) > 1:
        a, b = list(ranges)[:2]
        raise UsageError(f"--{a} and --{b} are both ranges: a plot varies one input",
                         hint="hold the others at a value, e.g. --" + b + " 0.5")
    dtype = opts["dtype"]
    if ranges:
        name, text = next(iter(ranges.items()))
        lo, hi = plot.parse_range(text, f"--{name}")
        return plot.line_of_scalar(name, lo, hi, dtype)
    if opts["vary"] is not None:
        name, index, text = plot.parse_vary(opts["vary"])
        where = f"[{','.join(map(str, index))}]" if index is not None else ""
        lo, hi = plot.parse_range(text, f"--vary {name}{where}")
        if name not in inputs:
            raise UsageError(f"--vary {name}: give {name}'s value as --{name} VALUE "
                             "(the point the other components are held at)")
        return plot.line_of_component(name, inputs[name], index, lo, hi)
    if opts["along"] is not None:
        name, direction = _along(opts["along"], inputs, opts)
        lo, hi = plot.parse_range(opts["t_range"] or "-1:1", "--t")
        return plot.line_along(name, inputs[name], direction, lo, hi)
    vectors = [n for n, v in inputs.items() if np.ndim(v)]
    if vectors:
        v = vectors[0]
        raise UsageError(f"input {v!r} is not a number: say how to plot along it",
                         hint=f"--along VALUE (a direction through --{v}, over --t "
                              f"START:END) or --vary {v}[0]=START:END")
    raise UsageError("nothing varies: give one input a range, e.g. --x -6:6",
                     hint="a vector input: --along VALUE --t START:END, or --vary "
                          "NAME[INDEX]=START:END")


def _along(text: str, inputs: dict, opts: dict):
    from ..values import parse_value
    from .options import normalise

    name, eq, value = text.partition("=")
    if eq and normalise(name.strip()).isidentifier():
        name = normalise(name.strip())
        if name not in inputs:
            raise UsageError(f"--along {name}=...: no input named {name!r}")
    elif len(inputs) == 1:
        name, value = next(iter(inputs)), text
    else:
        raise UsageError(f"--along: which input? The inputs are {', '.join(inputs)}",
                         hint=f"name it: --along {next(iter(inputs))}={text}")
    return name, parse_value(value, name="--along", dtype=opts["dtype"],
                             max_elements=opts["max_elements"])


def _size(opts: dict) -> tuple[int, int]:
    """The plot's size: --width/--height, else the terminal's (COLUMNS and LINES
    first, as shutil reads them), else 80x24."""
    import shutil  # (here: the other commands never need it)

    cols, lines = shutil.get_terminal_size((80, 24))
    return opts["width"] or max(cols, 30), opts["height"] or max(lines - 1, 10)


def _color() -> bool:
    """Colours on a terminal only, and never under NO_COLOR (any value but empty)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False

