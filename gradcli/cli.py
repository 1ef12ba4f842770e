"""The command line: options in, compute, render, exit code out.

The one place that turns errors into output: ``main`` prints ``error: ...`` (and
at most two ``hint: ...`` lines) on stderr, nothing on stdout, and exits with the
code of the error's class; a traceback only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import traceback
import warnings

import click
import numpy as np

from . import __version__
from .errors import EvaluationError, GradcliError, UsageError
from .render import say

FORMATS = ("table", "plain", "json")


# -- inputs: --NAME VALUE, --NAME=VALUE and --var NAME=VALUE ---------------------
def _collect_inputs(extra: list[str], pairs: tuple[str, ...], known: list[str]) -> dict[str, str]:
    """Input texts by name, from click's leftover arguments and ``--var``."""
    found: dict[str, str] = {}

    def add(name: str, text: str) -> None:
        if not name.isidentifier():
            raise UsageError(f"{name!r} is not a valid input name")
        if name in found:
            raise UsageError(f"input {name!r} is given twice")
        found[name] = text

    i = 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--") or tok == "--":
            raise UsageError(
                f"unexpected argument {tok!r}",
                hint="the TARGET comes first, then inputs as --NAME VALUE: "
                "gradcli eval \"2*dot(x,x)\" --x 0,1,2,3",
            )
        name, eq, text = tok[2:].partition("=")
        if not eq:
            if i + 1 >= len(extra):
                close = difflib.get_close_matches(tok, known, n=1)
                raise UsageError(
                    f"input {name!r} needs a value: --{name} VALUE",
                    hint=f"did you mean {close[0]}?" if close else None,
                )
            text = extra[i + 1]
            i += 1
        add(name, text)
        i += 1
    for pair in pairs:
        name, eq, text = pair.partition("=")
        if not eq:
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE")
        add(name.strip(), text)
    return found


def _read_inputs(texts: dict[str, str], opts: dict) -> dict[str, np.ndarray]:
    from .values import parse_value

    # numpy.random costs start-up time: only a randn(...) value needs it.
    needs_rng = any("randn" in t for t in texts.values())
    rng = np.random.default_rng(opts["seed"]) if needs_rng else None
    return {
        n: parse_value(t, name=n, dtype=opts["dtype"], rng=rng,
                       max_elements=opts["max_elements"])
        for n, t in texts.items()
    }


def _is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _out_format(opts: dict) -> str:
    if opts.get("json"):
        return "json"
    return opts.get("format") or ("table" if _is_tty() else "plain")


@contextlib.contextmanager
def _quiet():
    """inf and nan are results: gradcli reports them once, numpy says nothing."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# -- shared options ------------------------------------------------------------
def _target_options(f=None, *, formats=FORMATS, default_help=None):
    if f is None:
        return lambda g: _target_options(g, formats=formats, default_help=default_help)
    decorators = [
        click.argument("target"),
        click.option("--var", "var", multiple=True, metavar="NAME=VALUE",
                     help="An input whose name collides with an option of gradcli."),
        click.option("--wrt", multiple=True, metavar="NAME",
                     help="Differentiate with respect to NAME (repeatable; default: all inputs)."),
        click.option("--format", "format", type=click.Choice(formats), default=None,
                     help=default_help or "Output: table (default on a terminal), plain "
                     "(default otherwise), json."),
        click.option("--json", "json", is_flag=True, help="Shorthand for --format json."),
        click.option("--precision", type=click.IntRange(1, 17), default=None, metavar="N",
                     help="Significant digits in table/plain output (JSON is always exact)."),
        click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
                     show_default=True, help="Float type of the inputs and the computation."),
        click.option("--seed", type=int, default=None, metavar="N",
                     help="Seed for randn(...) input values."),
        click.option("--max-elements", type=click.IntRange(1), default=None, metavar="N",
                     help="Refuse any array larger than N elements (default 10,000,000)."),
        click.option("--strict", is_flag=True,
                     help="Treat a non-finite value or gradient as an error (exit 3)."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _check_options(f):
    decorators = [
        click.option("--check", is_flag=True,
                     help="Cross-check against sympy and finite differences (exit 1 when "
                     "they disagree)."),
        click.option("--check-timeout", type=click.FloatRange(0, min_open=True),
                     default=10.0, show_default=True, metavar="SECONDS",
                     help="Time budget of the symbolic part of --check."),
        click.option("--rtol", type=click.FloatRange(0), default=1e-8, show_default=True,
                     help="Relative tolerance of --check and --expect-*."),
        click.option("--atol", type=click.FloatRange(0), default=None,
                     help="Absolute tolerance of --check (default 1e-12) and --expect-* "
                     "(default 0)."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


# Subcommands have no short options, so a TARGET like "-tanh(x)" is never read
# as a cluster of them (-t -a -n -h ...).
_GRAD_OUTPUT = click.option(
    "--grad-output", metavar="VALUE|ones",
    help="The vector of a vector-Jacobian product, for a non-scalar output.")

_EXTRA = {"ignore_unknown_options": True, "allow_extra_args": True,
          "help_option_names": ["--help"]}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="gradcli")
def cli() -> None:
    """gradcli: values, gradients and their cross-checks, from the command line.

    \b
      gradcli eval "2*dot(x,x)" --x 0,1,2,3
      gradcli eval model.py:f --a 0.4857
      gradcli ops

    Run 'gradcli COMMAND --help' for the options of a command.
    """


@cli.command("eval", context_settings=_EXTRA)
@_target_options
@_GRAD_OUTPUT
@click.option("--no-grad", is_flag=True, help="Compute the value only.")
@click.option("--expect-value", metavar="VALUE",
              help="Assert the value (exit 1 with a diff when it is not met).")
@click.option("--expect-grad", multiple=True, metavar="NAME=VALUE",
              help="Assert the gradient of NAME (repeatable).")
@click.option("--points", metavar="FILE",
              help="Evaluate at many points: CSV rows or NDJSON lines ('-': stdin).")
@_check_options
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
      gradcli eval model.py:energy --q 0.1,0.2,0.3 --k 2
      gradcli eval "dot(x,x)" --x 1,2 --expect-value 5 --expect-grad x=2,4

    Exit codes: 0 ok, 1 an --expect-* assertion failed, 2 usage or input error,
    3 evaluation error, 70 internal error.
    """
    if opts["points"] is not None:
        if opts["check"]:
            raise UsageError("--check checks one point, not --points")
        return _eval_points(ctx, target, opts)
    return _eval_and_report(ctx, target, opts, verdict_first=False)


@cli.command("check", context_settings=_EXTRA)
@_target_options
@_GRAD_OUTPUT
@_check_options
@click.pass_context
def check_command(ctx: click.Context, target: str, **opts) -> int:
    """Cross-check the gradient of TARGET: sympy and finite differences.

    The same as 'gradcli eval TARGET ... --check', with the verdict first.
    Exit 1 when the engine disagrees with either method (a kink is reported,
    not failed).

    \b
    Examples:
      gradcli check "sum(sin(x)*x)" --x 0.1,0.2
      gradcli check model.py --a 0.4857
    """
    opts.update(check=True, no_grad=False, expect_value=None, expect_grad=())
    return _eval_and_report(ctx, target, opts, verdict_first=True)


def _eval_and_report(ctx: click.Context, target: str, opts: dict, *, verdict_first: bool) -> int:
    from . import expect, render
    from .compute import evaluate

    tgt, inputs, wrt = _setup(ctx, target, opts)
    if opts["check"] and opts["no_grad"]:
        raise UsageError("--check checks the gradient: it cannot go with --no-grad")
    grad_output = _grad_output(opts, inputs)
    result = evaluate(tgt, inputs, wrt=wrt, grad_output=grad_output,
                      no_grad=opts["no_grad"], max_elements=opts["max_elements"])
    _strict(opts, result)
    failures = expect.compare(_expected(opts, result), result, rtol=opts["rtol"],
                              atol=opts["atol"])
    report = _cross_check("gradient", tgt, inputs, wrt, result, opts) if opts["check"] else None
    return render.emit(render.result_view(tgt, inputs, result), _out_format(opts),
                       opts["precision"], check=report, failures=failures,
                       verdict_first=verdict_first)


def _cross_check(kind: str, tgt, inputs: dict, wrt: list[str], answer, opts: dict):
    """--check: the engine's ``answer`` (a Result for kind "gradient", Derivatives
    for "jacobian" and "hessian") against sympy and finite differences."""
    from . import check

    empty = [n for n in wrt if inputs[n].size == 0]
    if empty:
        raise UsageError(f"--check: input {empty[0]!r} is empty; there is no derivative "
                         "to compare")
    # What the symbolic check differentiates: the expression, or the graph
    # recorded at the point (a Result, or Derivatives holding one).
    if tgt.tree is not None:
        source = {"tree": tgt.tree}
    else:
        r = getattr(answer, "recorded", answer)
        source = {"graph": (r.output, r.leaves)}
    common = dict(wrt=wrt, **source, rtol=opts["rtol"], atol=opts["atol"],
                  timeout=opts["check_timeout"])
    f = _value_function(tgt, opts)
    with _quiet():
        if kind == "gradient":
            vjp = answer.seed if answer.value.size != 1 else None
            return check.run_check(f, inputs, answer.grads, grad_output=vjp, **common)
        if kind == "jacobian":
            return check.check_jacobian(f, inputs, answer.blocks, **common)
        from .compute import evaluate

        def gradient(point):
            return evaluate(tgt, point, wrt=wrt, max_elements=opts["max_elements"]).grads

        pairs = {(a, b): block for a, row in answer.blocks.items() for b, block in row.items()}
        return check.check_hessian(gradient, inputs, pairs, f_value=f, **common)


def _value_function(tgt, opts):
    """What finite differences vary: the function as written (an expression's own
    evaluation holds detach(...) fixed, so None lets the check build it)."""
    if tgt.tree is not None:
        return None
    from .compute import evaluate

    return lambda point: evaluate(tgt, point, no_grad=True,
                                  max_elements=opts["max_elements"]).value


def _eval_points(ctx: click.Context, target: str, opts: dict) -> int:
    """One result per row, streamed in order; a bad row gets an error record."""
    from . import points, render
    from .compute import DEFAULT_MAX_ELEMENTS

    if opts["expect_value"] is not None or opts["expect_grad"]:
        raise UsageError("--expect-value/--expect-grad check one point, not --points")
    if opts["grad_output"] is not None:
        raise UsageError("--grad-output is for one point; with --points each row's "
                         "value must be a number")
    opts["max_elements"] = opts["max_elements"] or DEFAULT_MAX_ELEMENTS
    fixed = _read_inputs(_collect_inputs(ctx.args, opts["var"], _option_names(ctx)), opts)
    path = opts["points"]
    try:
        lines = sys.stdin if path == "-" else open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"--points {path}: cannot read: {exc.strerror}") from exc
    fmt = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(
        os.path.splitext(path)[1].lower())
    batch = points.stream(target, fixed, lines, source=path, fmt=fmt, dtype=opts["dtype"],
                          max_elements=opts["max_elements"], wrt=opts["wrt"],
                          no_grad=opts["no_grad"], strict=opts["strict"])
    batch.chunks = _Progress(path).follow(batch.chunks)
    return render.emit(batch, _out_format(opts), opts["precision"])


class _Progress:
    """A one-line progress bar on stderr: only on a terminal, and only once the
    batch has run for a second (a short one never flickers)."""

    def __init__(self, path: str) -> None:
        import time

        self.on = sys.stderr.isatty()
        self.done = 0
        self.total = None
        self.clock = time.monotonic
        self.start = self.clock()
        if self.on and path != "-":
            with open(path, "rb") as fh:
                self.total = max(sum(1 for _ in fh) - 1, 1)

    def follow(self, chunks):
        """The chunks, counted as each is written (the writer asks for the next)."""
        for chunk in chunks:
            yield chunk
            self.update(len(chunk))
        self.close()

    def update(self, n: int) -> None:
        self.done += n
        if not self.on or self.clock() - self.start < 1.0:
            return
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\r[{bar:<30}] {self.done}/{self.total} rows")
        else:
            sys.stderr.write(f"\r{self.done} rows")
        sys.stderr.flush()

    def close(self) -> None:
        if self.on and self.clock() - self.start >= 1.0:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


@cli.command("jacobian", context_settings=_EXTRA)
@_target_options
@_check_options
@click.pass_context
def jacobian_command(ctx: click.Context, target: str, **opts) -> int:
    """The full Jacobian of TARGET's output with respect to each input.

    Each block has shape output.shape + input.shape. Inputs, options, formats
    and exit codes are those of 'gradcli eval'.

    \b
    Examples:
      gradcli jacobian "A @ x" --x 1,2 --A "1,2;3,4" --wrt x
      gradcli jacobian "sin(x)*x" --x 0.1,0.2,0.3 --json
    """
    from . import render
    from .compute import jacobian

    tgt, inputs, wrt = _setup(ctx, target, opts)
    d = jacobian(tgt, inputs, wrt=wrt, max_elements=opts["max_elements"])
    report = _cross_check("jacobian", tgt, inputs, wrt, d, opts) if opts["check"] else None
    _strict(opts, d)
    return render.emit(render.jacobian_view(tgt, inputs, d), _out_format(opts),
                       opts["precision"], check=report)


@cli.command("hessian", context_settings=_EXTRA)
@_target_options
@_check_options
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
    from . import render
    from .compute import hessian, hessian_summary

    tgt, inputs, wrt = _setup(ctx, target, opts)
    d = hessian(tgt, inputs, wrt=wrt, max_elements=opts["max_elements"])
    summary = hessian_summary(d, inputs, wrt)
    report = _cross_check("hessian", tgt, inputs, wrt, d, opts) if opts["check"] else None
    _strict(opts, d)
    view = render.hessian_view(tgt, inputs, d, summary, opts["precision"])
    return render.emit(view, _out_format(opts), opts["precision"], check=report)


def _strict(opts: dict, answer) -> None:
    """--strict: the first warning is an error."""
    if opts["strict"] and answer.warnings:
        raise EvaluationError(f"--strict: {answer.warnings[0]}")


def _setup(ctx: click.Context, target: str, opts: dict):
    """The target, its input values and the names to differentiate."""
    from .compute import DEFAULT_MAX_ELEMENTS, prepare

    opts["max_elements"] = opts["max_elements"] or DEFAULT_MAX_ELEMENTS
    texts = _collect_inputs(ctx.args, opts["var"], _option_names(ctx))
    try:
        tgt = prepare(target, list(texts))
    except UsageError as exc:
        # An input named like one of gradcli's options was taken as that option.
        name = (exc.hint or "").removeprefix("give it a value with --").removesuffix(" VALUE")
        if exc.hint and f"--{name}" in _option_names(ctx):
            exc.hint = f"--{name} is an option of gradcli: give the input as --var {name}=VALUE"
        raise
    inputs = _read_inputs(texts, opts)
    wrt = list(dict.fromkeys(opts["wrt"])) or list(inputs)
    for n in wrt:
        if n not in inputs:
            raise UsageError(f"--wrt {n}: no input named {n!r}",
                             hint=f"inputs: {', '.join(inputs) or 'none'}")
    return tgt, inputs, wrt


@cli.command("graph", context_settings=_EXTRA)
@_target_options(formats=("text", "dot", "mermaid", "json"),
                 default_help="text (a tree, the default), dot (Graphviz), mermaid, json.")
@_GRAD_OUTPUT
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
    from . import graphview
    from .compute import evaluate
    from .render import dumps

    tgt, inputs, wrt = _setup(ctx, target, opts)
    result = evaluate(tgt, inputs, wrt=wrt, grad_output=_grad_output(opts, inputs),
                      max_elements=opts["max_elements"])
    _strict(opts, result)
    with _quiet():
        vertices, root = graphview.collect(result.output, result.leaves, result.seed)
    fmt = "json" if opts["json"] else (opts["format"] or "text")
    if fmt == "json":
        text = dumps(graphview.as_json(vertices, root, tgt.label)) + "\n"
    else:
        text = {"text": graphview.as_text, "dot": graphview.as_dot,
                "mermaid": graphview.as_mermaid}[fmt](vertices, root, opts["precision"])
    click.echo(text, nl=False)
    for w in result.warnings:
        say("warning", w)
    return 0


def _grad_output(opts: dict, inputs: dict):
    text = opts["grad_output"]
    if text is None:
        return None
    if text.strip() == "ones":
        return "ones"
    from .values import parse_value

    return parse_value(text, name="--grad-output", dtype=opts["dtype"],
                       max_elements=opts["max_elements"])


def _expected(opts: dict, result) -> list:
    """--expect-value and --expect-grad NAME=VALUE, read: [(what, array)]."""
    from .values import parse_value

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


def _option_names(ctx: click.Context) -> list[str]:
    return [o for p in ctx.command.params for o in getattr(p, "opts", []) if o.startswith("--")]


@cli.command("ops")
@click.option("--format", "format", type=click.Choice(FORMATS), default=None,
              help="table (default on a terminal), plain, json.")
@click.option("--json", "json", is_flag=True, help="Shorthand for --format json.")
def ops_command(**opts) -> int:
    """Every function of the op table: signature, derivative rule, kink convention."""
    from . import render
    from .engine.ops import OPS

    rows = [o for o in OPS.values() if o.expr]
    obj = {"schema": 1, "ops": [
        {"name": o.name, "signature": o.signature(), "derivative": o.rule,
         "kink": o.kink, "differentiable": o.differentiable} for o in rows]}
    return render.emit(render.View("gradcli ops", obj, columns=(
        "function", "derivative", "kink convention"),
        cells=[(o.signature(), o.rule, o.kink) for o in rows]), _out_format(opts))


def _takes_value(token: str) -> bool:
    """``--NAME`` without ``=``: the next token is its value."""
    return token.startswith("--") and "=" not in token and token not in _FLAGS


_FLAGS = {"--json", "--strict", "--debug", "--no-grad", "--check", "--help", "--version"}


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, map every error to its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    # -h is --help (subcommands declare only --help; see _EXTRA), unless it is
    # the value of an input: --h-like names take the next token.
    args = ["--help" if a == "-h" and not (i and _takes_value(args[i - 1])) else a
            for i, a in enumerate(args)]
    debug = "--debug" in args
    if not args:  # a bare `gradcli` (click's own answer differs between versions)
        say("error", "no command given")
        say("hint", f"commands: {', '.join(sorted(cli.commands))}; see 'gradcli --help'")
        sys.exit(UsageError.exit_code)
    try:
        code = cli.main(args=args, prog_name="gradcli", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:  # click's own usage errors
        say("error", exc.format_message())
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            say("hint", f"see '{ctx.command_path} --help'")
        code = UsageError.exit_code
    except GradcliError as exc:
        if debug:
            traceback.print_exc()
        say("error", str(exc))
        if exc.hint:
            for line in str(exc.hint).split("\n")[:2]:
                say("hint", line)
        code = exc.exit_code
    except click.exceptions.Abort:
        code = 130
    except KeyboardInterrupt:
        click.echo("", err=True)
        code = 130
    except BrokenPipeError:
        # A reader like `head` closed the pipe: stop quietly, as shell tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141
    except Exception as exc:  # a bug in gradcli
        if debug:
            traceback.print_exc()
        say("error", f"internal error: {type(exc).__name__}: {exc}")
        say("hint", "this is a bug in gradcli; rerun with --debug for the traceback")
        code = GradcliError.exit_code
    sys.exit(code or 0)
