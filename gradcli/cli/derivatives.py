"""``gradcli jacobian`` and ``gradcli hessian``: whole derivatives at one point."""

from __future__ import annotations

import click

from .options import (EXTRA, check_options, const_options, cross_check, out_format, setup,
                      shown_inputs, strict, target_options, progress_line)


@click.command("jacobian", context_settings=EXTRA)
@target_options()
@click.option("--mode", type=click.Choice(["auto", "forward", "reverse"]), default="auto",
              show_default=True,
              help="forward: one tangent per input component (columns); reverse: one "
                   "cotangent per output component (rows); auto: forward when the "
                   "inputs have fewer components than the output.")
@check_options
@const_options
@click.pass_context
def jacobian_command(ctx: click.Context, target: str, **opts) -> int:
    """The full Jacobian of TARGET's output with respect to each input.

    Each block has shape output.shape + input.shape. Inputs, options, formats
    and exit codes are those of 'gradcli eval'. Forward and reverse mode give
    the same numbers; the faster one depends on the shapes (--mode).

    \b
    Examples:
      gradcli jacobian "A @ x" --x 1,2 --A "1,2;3,4" --wrt x
      gradcli jacobian "sin(x)*x" --x 0.1,0.2,0.3 --json
      gradcli jacobian "exp(t*k)*c" --k 0.5 --c 2 --t "linspace(0,1,100)" --wrt k --wrt c --mode forward
    """
    from .. import render
    from ..compute import jacobian

    tgt, inputs, wrt = setup(ctx, target, opts)
    d = jacobian(tgt, inputs, wrt=wrt, max_elements=opts["max_elements"],
                 progress=progress_line("jacobian"), mode=opts["mode"])
    report = cross_check("jacobian", tgt, inputs, wrt, d, opts) if opts["check"] else None
    strict(opts, d)
    return render.emit(render.jacobian_view(tgt, shown_inputs(inputs, opts), d), out_format(opts),
                       opts["precision"], check=report)


@click.command("hessian", context_settings=EXTRA)
@target_options()
@check_options
@const_options
@click.pass_context
def hessian_command(ctx: click.Context, target: str, **opts) -> int:
    """The Hessian of TARGET's single-number output, per pair of inputs.

    Each block H[a][b] has shape a.shape + b.shape. The table also says whether
    the whole Hessian is symmetric to rounding and, for a single input, gives
    its eigenvalues (a convexity hint).

    \b
    Examples:
      gradcli hessian "sum(x**4) + dot(x,x)**2" --x 1,2,3
      gradcli hessian "x @ A @ x" --x 1,2 --A "1,2;3,4" --wrt x --json
    """
    from .. import render
    from ..compute import hessian, hessian_summary

    tgt, inputs, wrt = setup(ctx, target, opts)
    d = hessian(tgt, inputs, wrt=wrt, max_elements=opts["max_elements"],
                progress=progress_line("hessian"))
    summary = hessian_summary(d, inputs, wrt)
    report = cross_check("hessian", tgt, inputs, wrt, d, opts) if opts["check"] else None
    strict(opts, d)
    view = render.hessian_view(tgt, shown_inputs(inputs, opts), d, summary, opts["precision"])
    return render.emit(view, out_format(opts), opts["precision"], check=report)
