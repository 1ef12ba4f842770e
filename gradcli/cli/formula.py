"""``gradcli diff`` (derivatives as formulas) and ``gradcli taylor`` (Taylor
expansions). Both import sympy, only when they run."""

from __future__ import annotations

import math

import click
import numpy as np

from ..errors import EvaluationError, UsageError
from .options import (
    _NAMED,
    EXTRA,
    Seconds,
    _raise_option_mistake,
    collect_inputs,
    format_options,
    normalise,
    out_format,
    read_inputs,
    read_shapes,
    shape_option,
)

FORMATS = ("plain", "json", "table")


def _inputs_options(f):
    for d in reversed([
        click.argument("target"),
        click.option("--var", "var", multiple=True, metavar="NAME=VALUE",
                     help="An input whose name collides with an option of gradcli."),
        format_options(FORMATS, "Output: plain (default), json, table."),
        click.option("--seed", type=click.IntRange(0), default=None, metavar="N",
                     help="Seed of the random point (and of randn(...) values)."),
        click.option("--max-elements", type=click.IntRange(1), default=None, metavar="N",
                     help="Refuse any array larger than N elements (default 10,000,000)."),
        click.option("--check-timeout", type=Seconds(), default=10.0, show_default=True,
                     metavar="SECONDS", help="Time budget of sympy's work."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]):
        f = d(f)
    return f


def _setup(ctx, target: str, opts: dict, shapes_allowed: bool = True):
    """The target and its inputs: values given as --NAME VALUE, or shapes given
    as --shape NAME=DIMS (then a random point, uniform in [0.2, 0.9): inside the
    domain of log, sqrt, arcsin and their kin)."""
    from ..compute import DEFAULT_MAX_ELEMENTS, prepare

    opts["max_elements"] = opts["max_elements"] or DEFAULT_MAX_ELEMENTS
    opts.setdefault("dtype", "float64")
    texts = collect_inputs(ctx, opts["var"])
    shapes = read_shapes(opts.get("shape") or ())
    both = sorted(set(texts) & set(shapes))
    if both:
        raise UsageError(f"input {both[0]!r} has both a value and a --shape; give one")
    try:
        tgt = prepare(target, list(texts) + list(shapes))
    except UsageError as exc:
        for name in ctx.meta.get(_NAMED, ()):
            if f"input {name!r} is not used" in str(exc) or f"unknown input {name!r}" in str(exc):
                _raise_option_mistake(ctx, name)
        if shapes_allowed and (exc.hint or "").startswith("give it a value with --"):
            name = exc.hint.removeprefix("give it a value with --").removesuffix(" VALUE")
            exc.hint = f"give it a value (--{name} VALUE) or a shape (--shape {name}=DIMS)"
        raise
    inputs = read_inputs(texts, opts)
    rng = np.random.default_rng(0 if opts["seed"] is None else opts["seed"])
    for n in tgt.order(shapes):  # (drawn in the target's order, as output)
        s = shapes[n]
        if math.prod(s) > opts["max_elements"]:
            raise UsageError(f"--shape {n}: {math.prod(s):,} elements, over the limit of "
                             f"{opts['max_elements']:,}")
        inputs[n] = rng.uniform(0.2, 0.9, s)
    # The target's order (parameters, or first appearance), not the flags'
    return tgt, {n: inputs[n] for n in tgt.order(inputs)}, shapes


def _wrt(opts: dict, inputs: dict, tgt=None) -> list[str]:
    # A function file's parameters with a default value are constants unless
    # named in --wrt, as in every other command.
    optional = tgt.loaded.optional if tgt is not None and tgt.loaded is not None else ()
    wrt = ([normalise(n) for n in dict.fromkeys(opts["wrt"])]
           or [n for n in inputs if n not in optional])
    for n in wrt:
        if n not in inputs:
            raise UsageError(f"--wrt {n}: no input named {n!r}",
                             hint=f"inputs: {', '.join(inputs) or 'none'}")
    if not wrt:
        raise UsageError("there is no input to differentiate", hint="give one as --NAME VALUE")
    return wrt


# -- gradcli diff -------------------------------------------------------------------
@click.command("diff", context_settings=EXTRA)
@_inputs_options
@shape_option
@click.option("--wrt", multiple=True, metavar="NAME",
              help="Differentiate with respect to NAME (repeatable; default: all inputs).")
@click.option("--hessian", is_flag=True, help="The Hessian's formulas (a scalar output).")
@click.option("--jacobian", is_flag=True, help="The Jacobian's formulas (any output).")
@click.option("--latex", is_flag=True, help="Print the formulas as LaTeX.")
@click.option("--numpy", "numpy_code", is_flag=True,
              help="Print a small Python function computing them with numpy.")
@click.option("--max-terms", type=click.IntRange(1, 1000), default=20, show_default=True,
              metavar="N", help="Components shown when there is no closed form.")
@click.pass_context
def diff_command(ctx: click.Context, target: str, **opts) -> int:
    """The derivative of TARGET as a formula.

    Inputs need only a shape (--shape x=4, A=3,3; s= for a scalar) or an
    example value (--x 0,1,2,3). The formula is written in gradcli's expression
    language (paste it into 'gradcli eval'); sympy simplifies it within
    --check-timeout. Without a closed matrix form, the elementwise form is
    printed, at most --max-terms components. Every formula is evaluated at the
    point (given, or random) and compared with the engine's derivative before it
    is printed; a disagreement is a bug (exit 70). At a kink the op table knows
    (maximum(x, 0) at 0, a tie of max, clip at a bound) the engine's convention is
    no formula's, and a formula can be 0/0 or overflow where the derivative is
    finite (sinc at 0, softplus at 1000): the formula, which holds away from
    there, is then checked at a nearby point, and a note says so (exit 3 if none
    will do). For a function file, the formula holds along the path taken at the
    given point.

    \b
    Examples:
      gradcli diff "2*dot(x,x)" --shape x=4
      gradcli diff "x @ A @ x" --shape x=3 --shape A=3,3 --wrt x
      gradcli diff "sum(sin(x)*x)" --x 0,1,2 --latex
      gradcli diff "x @ A @ x" --shape x=3 --shape A=3,3 --wrt x --hessian
    """
    from .. import formula

    if opts["hessian"] and opts["jacobian"]:
        raise UsageError("--hessian and --jacobian: choose one")
    if opts["latex"] and opts["numpy_code"]:
        raise UsageError("--latex and --numpy: choose one")
    quantity = "hessian" if opts["hessian"] else "jacobian" if opts["jacobian"] else "gradient"
    tgt, inputs, shapes = _setup(ctx, target, opts)
    wrt = _wrt(opts, inputs, tgt)
    with np.errstate(all="ignore"):
        try:
            expected = formula.engine_blocks(quantity, tgt, inputs, wrt,
                                             opts["max_elements"])
        except EvaluationError as exc:
            if "not a single number" in str(exc):
                exc.hint = ("wrap the expression in sum(...), or ask for the formulas "
                            "of the whole Jacobian with --jacobian")
            raise
        graph = None
        if tgt.tree is None:
            from ..compute import evaluate

            r = evaluate(tgt, inputs, record=True, no_grad=True,
                         max_elements=opts["max_elements"])
            graph = (r.output, r.leaves)
    bad = [k for k, v in expected.items() if not np.isfinite(v).all()]
    if bad:
        raise EvaluationError(
            f"{bad[0]} is not finite at the point, so no formula can be checked there",
            hint="give values inside the function's domain (--NAME VALUE)")
    derived, checked = formula.derive_checked(
        quantity, inputs, wrt, expected, tgt, graph=graph, max_terms=opts["max_terms"],
        timeout=opts["check_timeout"], max_elements=opts["max_elements"], seed=opts["seed"])
    if checked.note:
        derived.notes.append(checked.note)
    code = formula.numpy_function(derived, {n: a.shape for n, a in inputs.items()})
    fmt = out_format(opts)
    fmt = "plain" if fmt == "table" and not opts.get("format") else fmt
    _emit_formulas(tgt, inputs, shapes, derived, code, checked, fmt, opts)
    return 0


_LATEX_HEAD = {"grad": r"\nabla_{{{0}}} f", "jacobian": r"\frac{{\partial f}}{{\partial {0}}}",
               "hessian": r"\frac{{\partial^2 f}}{{\partial {0} \partial {1}}}"}


def _latex_head(name: str) -> str:
    base, _, index = name.partition("[")
    kind, *args = base.split(".")
    head = _LATEX_HEAD[kind].format(*args)
    return rf"\left({head}\right)_{{{index.rstrip(']')}}}" if index else head


def _emit_formulas(tgt, inputs, shapes, derived, code, checked, fmt, opts) -> None:
    from ..render import dumps, jsonable, make_console, say

    if fmt == "json":
        obj = {
            "schema": 1, "target": tgt.label, "kind": tgt.kind,
            "quantity": derived.quantity,
            "shapes": {n: list(a.shape) for n, a in inputs.items()},
            "point": jsonable(inputs),
            "point_kind": "random" if shapes else "given",
            "formulas": [
                {"name": b.name, "form": b.form, "shape": list(b.shape),
                 "components": b.total, "args": b.args,
                 "pieces": [{"name": p.name,
                             "index": None if p.index is None else list(p.index),
                             "text": p.text, "latex": p.latex, "srepr": p.srepr,
                             "numpy": p.numpy} for p in b.pieces]}
                for b in derived.blocks],
            "numpy": code,
            "verified": {"max_rel_diff": checked.worst, "at": checked.at,
                         "point": None if checked.moved is None
                         else jsonable(checked.moved)},
            "notes": derived.notes,
        }
        click.echo(dumps(obj))
    elif opts["numpy_code"]:
        click.echo(code, nl=False)
    else:
        rows = [(p.name, _latex_head(p.name) if opts["latex"] else p.name,
                 p.latex if opts["latex"] else p.text)
                for b in derived.blocks for p in b.pieces]
        if fmt == "table":
            import io

            from rich.table import Table
            from rich.text import Text

            t = Table(title=Text(tgt.label), title_justify="left")
            t.add_column("derivative", style="bold")
            t.add_column("formula", overflow="fold")
            for _, head, text in rows:
                t.add_row(Text(head), Text(text))
            buf = io.StringIO()
            make_console(buf).print(t)
            click.echo(buf.getvalue(), nl=False)
        else:
            click.echo("\n".join(f"{head} = {text}" for _, head, text in rows))
    for n in derived.notes:
        say("note", n)


# -- gradcli taylor -----------------------------------------------------------------
class _Order(click.ParamType):
    """An order from 0 to taylor's MAX_ORDER, read when one is given: taylor
    loads with the taylor command, not at every start (0.75 ms)."""

    name = "integer"

    def convert(self, value, param, ctx):
        from ..taylor import MAX_ORDER

        n = click.INT.convert(value, param, ctx)
        if not 0 <= n <= MAX_ORDER:
            self.fail(f"{n} is not in the range 0<=x<={MAX_ORDER}.", param, ctx)
        return n


@click.command("taylor", context_settings=EXTRA)
@_inputs_options
@click.option("--wrt", multiple=True, metavar="NAME",
              help="The input to expand in (needed when there are several).")
@click.option("--order", type=_Order(), default=5, show_default=True, metavar="N",
              help="Highest derivative (0 to 20).")
@click.option("--along", metavar="VALUE",
              help="A direction d: expand f(x + t d) in t (a vector input).")
@click.option("--latex", is_flag=True, help="Print the polynomial as LaTeX.")
@click.option("--no-check", is_flag=True, help="Skip the cross-check against sympy.")
@click.option("--rtol", type=click.FloatRange(0), default=1e-7, show_default=True,
              help="Relative tolerance of the cross-check.")
@click.pass_context
def taylor_command(ctx: click.Context, target: str, **opts) -> int:
    """Derivatives of TARGET in one variable at a point, and its Taylor polynomial.

    TARGET must give a single number. The derivatives d1..dN come from
    Taylor-mode propagation through the graph the engine recorded at the point;
    they are cross-checked against sympy's (within --check-timeout; exit 1 when
    they disagree beyond --rtol). They are float64 numbers: integer derivatives
    (exp or tan at 0) exact, others to about 1e-15 relative up to order 10 for
    most functions (a quotient such as sin(x)/x loses digits order by order:
    see the README). At a kink the op table
    knows (relu at 0, a tie of maximum, clip at a bound) they follow the engine's
    convention, with a warning, and a difference from sympy's there is noted, not
    a failure. A vector input is expanded along --along d, in t.

    \b
    Examples:
      gradcli taylor "exp(x)" --x 0 --order 4
      gradcli taylor "sin(x)*x" --x 0.5 --order 3 --json
      gradcli taylor "dot(x,x)" --x 1,2 --along 1,0 --order 2
    """
    from .. import taylor
    from ..render import dumps, jsonable, say, text_value

    opts["shape"] = ()
    tgt, inputs, _ = _setup(ctx, target, opts, shapes_allowed=False)
    wrt = _wrt(opts, inputs, tgt)
    if len(wrt) != 1:
        raise UsageError(f"taylor expands in one input; there are {len(wrt)}: "
                         f"{', '.join(wrt)}", hint="name one with --wrt NAME")
    name = wrt[0]
    along = None
    if opts["along"] is not None:
        from ..values import parse_value

        along = parse_value(opts["along"], name="--along", dtype="float64",
                            max_elements=opts["max_elements"])
        if along.shape != inputs[name].shape:
            raise UsageError(f"--along has shape {along.shape}, but {name} has shape "
                             f"{inputs[name].shape}")
    elif inputs[name].size != 1 or inputs[name].ndim:
        raise UsageError(f"{name} has shape {inputs[name].shape}: a Taylor expansion is "
                         "in one variable",
                         hint=f"expand along a direction: --along D (shape "
                         f"{inputs[name].shape})")
    e = taylor.expand(tgt, inputs, name, opts["order"], along=along,
                      max_elements=opts["max_elements"])
    check = None
    if not opts["no_check"]:
        from ..symbolic import SymbolicSkip  # sympy: only for the check

        try:
            ref = taylor.sympy_derivatives(tgt, inputs, name, opts["order"], along=along,
                                           timeout=opts["check_timeout"])
            scale = max(1.0, float(np.max(np.abs(ref[np.isfinite(ref)]), initial=0.0)))
            worst = np.abs(e.derivatives - ref)
            ok = np.abs(e.derivatives - ref) <= opts["rtol"] * np.abs(ref) + 1e-12 * scale
            # not finite on either side: not compared (the warning says so)
            unseen = ~(np.isfinite(ref) & np.isfinite(e.derivatives))
            ok |= unseen
            # At a kink the expansion takes the engine's convention and sympy
            # its own (or a side): a difference there is the kink, not a failure.
            status = "pass" if ok.all() else "kink" if e.kinks else "fail"
            check = {"sympy": [float(v) if np.isfinite(v) else str(v) for v in ref],
                     "passed": status != "fail", "status": status,
                     "disagree": [int(k) for k in np.flatnonzero(~ok)],
                     "not_compared": [int(k) for k in np.flatnonzero(unseen)],
                     "max_abs_diff": float(np.max(worst[np.isfinite(worst)], initial=0.0))}
        except SymbolicSkip as exc:
            check = {"skipped": str(exc)}
    poly = taylor.polynomial_text(e)
    latex = taylor.polynomial_latex(e)
    if out_format(opts) == "json":
        obj = {"schema": 1, "target": tgt.label, "kind": tgt.kind, "variable": name,
               "point": jsonable(inputs), "along": None if along is None else jsonable(along),
               "order": opts["order"], "value": jsonable(e.derivatives[0]),
               "derivatives": jsonable(e.derivatives),
               "coefficients": jsonable(e.coefficients),
               "polynomial": poly, "latex": latex, "check": check,
               "warnings": e.warnings}
        click.echo(dumps(obj))
    elif opts["latex"]:
        click.echo(latex)
    else:
        lines = [f"value {text_value(e.derivatives[0])}"]
        lines += [f"d{k} {text_value(v)}" for k, v in enumerate(e.derivatives) if k]
        lines.append(f"polynomial {poly}")
        click.echo("\n".join(lines))
    for w in e.warnings:
        say("warning", w)
    if check and "skipped" in check:
        say("note", f"sympy cross-check skipped: {check['skipped']}")
    if check and not check.get("skipped") and check["disagree"]:
        ks = ", ".join(f"d{k}" for k in check["disagree"])
        if check["status"] == "kink":
            say("note", f"sympy disagrees on {ks}: not a failure, the point is on a "
                        "kink, where each takes its own convention")
        else:
            say("error", f"the check failed: sympy disagrees on {ks}")
            return 1
    return 0
