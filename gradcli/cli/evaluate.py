"""``gradcli eval`` and ``gradcli check``: a value and its gradient at one point."""

from __future__ import annotations

import click

from ..errors import UsageError
from . import sigma
from .checks import many, many_options, user_kind, user_options
from .options import (EXTRA, check_options, const_options, cross_check, grad_output,
                      grad_output_option, out_format, setup, shown_inputs, sigma_options,
                      strict, target_options)


@click.command("eval", context_settings=EXTRA)
@target_options()
@grad_output_option
@click.option("--no-grad", is_flag=True, help="Compute the value only.")
@click.option("--expect-value", metavar="VALUE",
              help="Assert the value (exit 1 with a diff when it is not met).")
@click.option("--expect-grad", multiple=True, metavar="NAME=VALUE",
              help="Assert the gradient of NAME (repeatable).")
@click.option("--points", metavar="FILE",
              help="Evaluate at many points: CSV rows or NDJSON lines ('-': stdin).")
@click.option("--max-line-bytes", type=click.IntRange(min=1), metavar="N",
              help="Longest line of a --points file, in bytes (default 16 MiB).")
@click.option("--tangent", multiple=True, metavar="NAME=VALUE",
              help="Also the directional derivative J v along this tangent of input "
                   "NAME (repeatable; inputs not given: zero), in forward mode.")
@check_options
@const_options
@sigma_options
@many_options
@click.pass_context
def eval_command(ctx: click.Context, target: str, **opts) -> int:
    """Value and gradient of TARGET at the given inputs.

    TARGET is an expression in numpy-style names, or a function file PATH.py
    (its single function) or PATH.py:NAME. Each input is given as --NAME VALUE.

    \b
    VALUE is a number (0.5, -1e-3), a list (0,1,2,3), a matrix ("1,2;3,4"),
    JSON ("[[1,2],[3,4]]"), @file (.npy .csv .json .txt) or a constructor:
    arange(4) linspace(0,1,5) zeros(3) ones(2,3) eye(3) randn(3).

    \b
    Examples:
      gradcli eval "2*dot(x,x)" --x 0,1,2,3
      gradcli eval "sum(sin(x)*x)" --x 0.1,0.2 --format json
      gradcli eval "x @ A @ x" --x 1,2 --A "1,2;3,4" --wrt x
      gradcli eval "x*x" --x 1,2,3 --grad-output ones
      gradcli eval examples/model.py:f --a 0.5
      gradcli eval "dot(x,x)" --x 1,2 --expect-value 5 --expect-grad x=2,4
      gradcli eval "sin(x)*y" --x 1,2 --y 3 --tangent x=1,0

    Exit codes: 0 ok, 1 an --expect-* assertion failed, 2 usage or input error,
    3 evaluation error, 70 internal error.
    """
    expects = opts["expect_value"] is not None or opts["expect_grad"]
    if many(opts) and (opts["sigma"] or opts["cov"]):
        raise UsageError("--sigma and --cov are for one point, not --points or --random")
    if many(opts) and opts["tangent"]:
        raise UsageError("--tangent gives one point's directional derivative; it "
                         "does not go with --points or --random")
    if many(opts) and (opts["check"] or expects):
        from . import checks

        return checks.run(ctx, target, opts, engine_check=opts["check"],
                          expected=(lambda r: _expected(opts, r)) if expects else None)
    if opts["random"] is not None:
        raise UsageError("--random N goes with --check or --expect-*")
    if opts["points"] is not None:
        if opts["const"] or opts["sigma"] or opts["cov"]:
            raise UsageError("--const, --sigma and --cov are for one point, not --points")
        from .points import eval_points

        return eval_points(ctx, target, opts)
    return _evaluate(ctx, target, opts, verdict_first=False)


@click.command("check", context_settings=EXTRA)
@target_options()
@grad_output_option
@check_options
@const_options
@user_options
@many_options
@click.option("--points", metavar="FILE",
              help="Check at every row of FILE: CSV rows or NDJSON lines ('-': stdin).")
@click.pass_context
def check_command(ctx: click.Context, target: str, **opts) -> int:
    """Cross-check the gradient of TARGET: sympy and finite differences.

    The same as 'gradcli eval TARGET ... --check', with the verdict first.
    Exit 1 when the engine disagrees with either method (a kink is reported,
    not failed). With --grad FILE.py:NAME (or --jacobian, --hessian): YOUR
    derivative against the engine and finite differences. --random N or
    --points FILE: at many points.

    \b
    Examples:
      gradcli check "sum(sin(x)*x)" --x 0.1,0.2
      gradcli check examples/model.py --a 0.4857
      gradcli check examples/logistic.py:loss --grad examples/logistic.py:grad --w 0,0,0
      gradcli check "sum(x*x)" --x 0,1 --random 3 --seed 1
    """
    opts.update(check=True, no_grad=False, expect_value=None, expect_grad=())
    if user_kind(opts) or many(opts):
        from . import checks

        return checks.run(ctx, target, opts, engine_check=True)
    return _evaluate(ctx, target, opts, verdict_first=True)


def _evaluate(ctx: click.Context, target: str, opts: dict, *, verdict_first: bool) -> int:
    from .. import expect, render
    from ..compute import evaluate

    tgt, inputs, wrt = setup(ctx, target, opts)
    if opts["check"] and opts["no_grad"]:
        raise UsageError("--check checks the gradient: it cannot go with --no-grad")
    if sigma.wanted(opts) and opts["no_grad"]:
        raise UsageError("--sigma/--cov propagate through the derivative: they cannot "
                         "go with --no-grad")
    tangents = _tangents(opts)
    if sigma.wanted(opts) and tangents is not None:
        raise UsageError("--tangent and --sigma/--cov: give one of them at a time")
    result = evaluate(tgt, inputs, wrt=wrt, grad_output=grad_output(opts),
                      no_grad=opts["no_grad"] or sigma.vector_output(tgt, inputs, opts),
                      max_elements=opts["max_elements"], tangents=tangents)
    if opts["check"] and tangents is not None and not result.grads:
        raise UsageError("--check checks the gradient, and this output (shape "
                         f"{result.value.shape}) has none without --grad-output",
                         hint="give --grad-output, or check every derivative with "
                              "'gradcli jacobian --check'")
    strict(opts, result)
    failures = expect.compare(_expected(opts, result), result, rtol=opts["rtol"],
                              atol=opts["atol"])
    report = (cross_check("gradient", tgt, inputs, wrt, result, opts)
              if opts["check"] else None)
    view = render.result_view(tgt, shown_inputs(inputs, opts), result)
    u = sigma.propagate(tgt, inputs, wrt, opts) if sigma.wanted(opts) else None
    if u is not None:
        render.add_uncertainty(view, u, opts["precision"])
    code = render.emit(view, out_format(opts), opts["precision"], check=report,
                       failures=failures, verdict_first=verdict_first)
    for note in u.notes if u is not None else ():
        render.say("note", note)
    return code


def _tangents(opts: dict) -> dict | None:
    """--tangent NAME=VALUE, read: {name: array}, or None when not given."""
    from ..values import parse_value
    from .options import read_pairs

    if not opts.get("tangent"):
        return None
    return {name: parse_value(text, name=f"--tangent {name}", dtype=opts["dtype"],
                              max_elements=opts["max_elements"])
            for name, text in read_pairs("--tangent", opts["tangent"], "x=1,0").items()}


def _expected(opts: dict, result) -> list:
    """--expect-value and --expect-grad NAME=VALUE, read: [(what, array)]."""
    from ..values import parse_value

    expected = []
    if opts["expect_value"] is not None:
        expected.append(("value", parse_value(opts["expect_value"], name="--expect-value")))
    for pair in opts["expect_grad"]:
        name, eq, text = pair.partition("=")
        if not eq:
            raise UsageError(f"--expect-grad {pair!r}: expected NAME=VALUE")
        if name not in result.grads:
            raise UsageError(f"--expect-grad {name}: no gradient of {name!r} was computed")
        expected.append((f"grad.{name}", parse_value(text, name=f"--expect-grad {name}")))
    return expected
