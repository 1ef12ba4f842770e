"""``gradcli graph`` and ``gradcli ops``."""

from __future__ import annotations

import sys

import click

from .options import (EXTRA, format_options, grad_output, grad_output_option, out_format,
                      quiet, setup, strict, target_options)


@click.command("graph", context_settings=EXTRA)
@target_options(formats=("text", "dot", "mermaid", "json"),
                default_help="text (a tree, the default), dot (Graphviz), mermaid, json.")
@grad_output_option
@click.option("--full", is_flag=True,
              help="Every element of every array (default: arrays of more than "
                   "1000 elements as a summary) in json.")
@click.pass_context
def graph_command(ctx: click.Context, target: str, **opts) -> int:
    """The computation graph recorded at the point.

    Every node with its op (MulBackward0, ...), shape, value and gradient, and
    for expressions the part of the text it came from.

    \b
    Examples:
      gradcli graph "2*dot(x,x)" --x 0,1,2,3
      gradcli graph "sum(sin(x)*x)" --x 0.1,0.2 --format dot | dot -Tsvg > g.svg
    """
    from .. import graphview
    from ..compute import evaluate
    from ..render import dumps, say

    tgt, inputs, wrt = setup(ctx, target, opts)
    result = evaluate(tgt, inputs, wrt=wrt, grad_output=grad_output(opts),
                      max_elements=opts["max_elements"])
    strict(opts, result)
    with quiet():
        vertices, root = graphview.collect(result.output, result.leaves, result.seed)
    fmt = "json" if opts["json"] else (opts["format"] or "text")
    if fmt == "json":
        text = dumps(graphview.as_json(vertices, root, tgt.label, opts["full"])) + "\n"
    elif fmt == "text":
        text = graphview.as_text(vertices, root, opts["precision"],
                                 ascii_only=not _encodes("├└│…", sys.stdout))
    else:
        text = {"dot": graphview.as_dot,
                "mermaid": graphview.as_mermaid}[fmt](vertices, root, opts["precision"])
    click.echo(text, nl=False)
    for w in result.warnings:
        say("warning", w)
    return 0


def _encodes(chars: str, stream) -> bool:
    """Whether ``stream`` can write ``chars`` (a stream of str without an
    encoding, such as io.StringIO, can write anything)."""
    encoding = getattr(stream, "encoding", None)
    try:
        chars.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


@click.command("ops")
@format_options(default_help="table (default on a terminal), plain, json.")
def ops_command(**opts) -> int:
    """Every function of the op table: signature, derivative rule, kink convention."""
    from .. import render
    from ..engine.ops import OPS

    rows = [(o.name, o.signature(), o, True) for o in OPS.values() if o.expr]
    rows += [(name, sig, o, False) for name, sig, o in _python_only()]
    obj = {"schema": 1, "ops": [
        {"name": name, "signature": sig, "derivative": o.rule, "kink": o.kink,
         "differentiable": o.differentiable, "expression": expr}
        for name, sig, o, expr in rows]}
    view = render.View("gradcli ops", obj, columns=("function", "derivative", "kink convention"),
                       cells=[(sig, o.rule, o.kink) for _, sig, o, _ in rows])
    return render.emit(view, out_format(opts))


def _python_only():
    """(numpy name, signature, op) of the differentiable numpy functions that the
    expression language cannot spell (einsum's subscripts, the decompositions'
    several results): Python API and function files only."""
    import inspect

    from ..engine.op import NUMPY, Op
    from ..engine.ops import OPS

    for fn, target in NUMPY.items():
        op = target if isinstance(target, Op) else OPS.get(f"_{target.__name__}")
        if op is None or op.expr or not op.differentiable:
            continue
        name = f"np.{'linalg.' if fn.__module__ == 'numpy.linalg' else ''}{fn.__name__}"
        sig = op.extra.get("numpy_signature") or str(inspect.signature(target))
        yield name, f"{name}{sig.split(' -> ')[0]}", op
