"""What the commands share: their options, and reading them into a target,
inputs and the names to differentiate (``setup``)."""

from __future__ import annotations

import contextlib
import difflib
import sys
import warnings

import click
import numpy as np

from ..errors import EvaluationError, UsageError

FORMATS = ("table", "plain", "json")

# Inputs are the leftover --NAME VALUE arguments. Subcommands have no short
# options, so a TARGET like "-tanh(x)" is never read as a cluster of them.
EXTRA = {"ignore_unknown_options": True, "allow_extra_args": True,
         "help_option_names": ["--help"]}


def _apply(f, decorators):
    for d in reversed(decorators):
        f = d(f)
    return f


def format_options(formats=FORMATS, default_help=None):
    """--format and its shorthand --json."""
    return lambda f: _apply(f, [
        click.option("--format", "format", type=click.Choice(formats), default=None,
                     help=default_help or "Output: table (default on a terminal), plain "
                     "(default otherwise), json."),
        click.option("--json", "json", is_flag=True, help="Shorthand for --format json."),
    ])


def target_options(formats=FORMATS, default_help=None):
    """TARGET, the inputs and everything every command does with them."""
    return lambda f: _apply(f, [
        click.argument("target"),
        click.option("--var", "var", multiple=True, metavar="NAME=VALUE",
                     help="An input whose name collides with an option of gradcli."),
        click.option("--wrt", multiple=True, metavar="NAME",
                     help="Differentiate with respect to NAME (repeatable; default: all inputs)."),
        format_options(formats, default_help),
        click.option("--precision", type=click.IntRange(1, 17), default=None, metavar="N",
                     help="Significant digits in table/plain output (JSON is always exact)."),
        click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
                     show_default=True, help="Float type of the inputs and the computation."),
        click.option("--seed", type=click.IntRange(0), default=None, metavar="N",
                     help="Seed for randn(...) input values and --random points."),
        click.option("--max-elements", type=click.IntRange(1), default=None, metavar="N",
                     help="Refuse any array larger than N elements (default 10,000,000)."),
        click.option("--strict", is_flag=True,
                     help="Treat a non-finite value or gradient as an error (exit 3)."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ])


class Seconds(click.ParamType):
    """A time budget: a finite number of seconds, more than 0 and at most a day
    (inf, nan and 1e308 are refused here, not by the timer that cannot take them)."""

    name = "seconds"
    MAX = 86400.0

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not 0 < seconds <= self.MAX:  # False for nan
            self.fail(f"{value!r} is not a number of seconds in (0, {self.MAX:g}]",
                      param, ctx)
        return seconds


class Tolerance(click.FloatRange):
    """A tolerance: a number >= 0 (inf: anything passes). Not nan, which would
    fail every comparison and so report a wrong answer (exit 1)."""

    def __init__(self) -> None:
        super().__init__(0)

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if rv != rv:
            self.fail(f"{value!r} is not a tolerance (a number >= 0)", param, ctx)
        return rv


def check_options(f):
    return _apply(f, [
        click.option("--check", is_flag=True,
                     help="Cross-check against sympy and finite differences (exit 1 when "
                     "they disagree)."),
        click.option("--check-timeout", type=Seconds(),
                     default=10.0, show_default=True, metavar="SECONDS",
                     help="Time budget of the whole --check, sympy and finite "
                          "differences (at most 86400)."),
        click.option("--rtol", type=Tolerance(), default=1e-8, show_default=True,
                     help="Relative tolerance of --check and --expect-*."),
        click.option("--atol", type=Tolerance(), default=None,
                     help="Absolute tolerance of --check (default 1e-12) and --expect-* "
                     "(default 0)."),
    ])


def const_options(f):
    """--const NAME and --echo-inputs: inputs that are data, not parameters."""
    return _apply(f, [
        click.option("--const", "const", multiple=True, metavar="NAME",
                     help="Input NAME is data: not differentiated, not in the gradient, "
                     "not echoed in JSON; integer values stay integer (repeatable)."),
        click.option("--echo-inputs", is_flag=True,
                     help="Echo constant inputs in JSON too."),
    ])


def sigma_options(f):
    """--sigma and --cov: the inputs' uncertainties, propagated to the value."""
    return _apply(f, [
        click.option("--sigma", "sigma", multiple=True, metavar="NAME=VALUE",
                     help="Standard uncertainty of input NAME: one number, or one per "
                     "component; prints the value's error bar (repeatable)."),
        click.option("--cov", "cov", multiple=True, metavar="A,B=VALUE",
                     help="Covariance of inputs A and B (a matrix for vectors; A,A=MATRIX "
                     "is A's whole covariance matrix) (repeatable)."),
    ])


def read_pairs(option: str, pairs: tuple[str, ...], example: str) -> dict[str, str]:
    """Repeated ``--OPTION NAME=TEXT`` options, read: ``{name: text}``, the names
    normalised as input names; a pair without ``=`` or a name given twice is a
    usage error naming the option."""
    texts: dict[str, str] = {}
    for pair in pairs:
        name, eq, text = pair.partition("=")
        name = normalise(name.strip())
        if not eq or not name.isidentifier():
            raise UsageError(f"{option} {pair!r}: expected NAME=VALUE, e.g. {option} {example}")
        if name in texts:
            raise UsageError(f"{option} {name}: given twice")
        texts[name] = text
    return texts


shape_option = click.option(
    "--shape", "shape", multiple=True, metavar="NAME=DIMS",
    help="The shape of input NAME: x=3, A=3,4, s= for a scalar (repeatable).")


def read_shapes(pairs: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """``--shape NAME=DIMS`` options, read: ``{"A": (3, 4)}``. DIMS are
    comma-separated counts >= 1 (an empty DIMS, or ``()``, is a scalar)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, dims in read_pairs("--shape", pairs, "A=3,4").items():
        pair = f"{name}={dims}"
        dims = dims.strip().removeprefix("(").removesuffix(")").strip()
        parts = [d.strip() for d in dims.split(",")] if dims else []
        if parts and parts[-1] == "":
            parts.pop()  # "3," as Python writes a 1-tuple
        if len(parts) > 32 or not all(d.isdigit() and d.isascii() and 0 < int(d) <= 10**9
                                      for d in parts):
            raise UsageError(f"--shape {pair!r}: each dimension must be a whole number "
                             "from 1 to 10**9 (at most 32 of them)")
        shapes[name] = tuple(int(d) for d in parts)
    return shapes


grad_output_option = click.option(
    "--grad-output", metavar="VALUE|ones",
    help="The vector of a vector-Jacobian product, for a non-scalar output.")


# -- inputs: --NAME VALUE, --NAME=VALUE and --var NAME=VALUE ---------------------
def collect_inputs(ctx: click.Context, pairs: tuple[str, ...]) -> dict[str, str]:
    """Input texts by name, from click's leftover arguments and ``--var``.

    Names are normalised as Python normalises identifiers (NFKC), and so as the
    expression parser and a function file's parameters are: ``--ｘ`` is ``x``.
    A ``--NAME`` that cannot be an input and is an option elsewhere, or close to
    one here, is reported as that option's mistake."""
    extra = ctx.args
    found: dict[str, str] = {}
    named = ctx.meta.setdefault(_NAMED, [])

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
        name = normalise(name)
        if not name.isidentifier():
            _raise_option_mistake(ctx, name)
        if not eq:
            if i + 1 >= len(extra):
                _raise_option_mistake(ctx, name)
                raise UsageError(f"input {name!r} needs a value: --{name} VALUE")
            text = extra[i + 1]
            i += 1
        add(name, text)
        named.append(name)
        i += 1
    for pair in pairs:
        name, eq, text = pair.partition("=")
        if not eq:
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE")
        add(normalise(name.strip()), text)
    return found


_NAMED = "gradcli.inputs_as_options"  # ctx.meta: the names given as --NAME


def normalise(name: str) -> str:
    """An input name as Python (and so gradcli's parser) reads an identifier."""
    if name.isascii():
        return name
    import unicodedata

    return unicodedata.normalize("NFKC", name)


def _raise_option_mistake(ctx: click.Context, name: str) -> None:
    """``--NAME`` where an option was meant: one of another command (which
    commands take it), or a typo of one of this command's (did you mean)."""
    opt = f"--{name}"
    root = ctx.find_root().command
    commands = getattr(root, "commands", {})
    takers = sorted(n for n, c in commands.items() if c is not ctx.command
                    and any(opt in getattr(p, "opts", ()) for p in c.params))
    if takers:
        raise UsageError(
            f"{opt} is not an option of '{ctx.command_path}'",
            hint=f"{opt} is an option of {', '.join(f'gradcli {c}' for c in takers)}",
        )
    close = difflib.get_close_matches(opt, option_names(ctx), n=1, cutoff=0.75)
    if close:
        raise UsageError(f"'{ctx.command_path}' has no option {opt}",
                         hint=f"did you mean {close[0]}?")


def read_inputs(texts: dict[str, str], opts: dict,
                keep_integers: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """Each input's value; those in ``keep_integers`` (--const data) stay int64
    when every value is a whole number (labels and indices)."""
    from ..values import parse_value

    # numpy.random costs start-up time: only a randn(...) value needs it.
    needs_rng = any("randn" in t for t in texts.values())
    rng = np.random.default_rng(opts["seed"]) if needs_rng else None

    def read(n: str, t: str) -> np.ndarray:
        if n not in keep_integers:
            return parse_value(t, name=n, dtype=opts["dtype"], rng=rng,
                               max_elements=opts["max_elements"])
        a = parse_value(t, name=n, rng=rng, max_elements=opts["max_elements"])
        if a.size and np.all(a == np.round(a)) and np.all(np.abs(a) < 2.0 ** 53):
            return a.astype(np.int64)  # exact: whole numbers below 2**53
        with np.errstate(over="ignore"):
            cast = a.astype(opts["dtype"])  # as parse_value casts: from float64
        if not np.isfinite(cast).all():
            raise UsageError(f"input {n}: a value overflows {opts['dtype']}")
        return cast
    return {n: read(n, t) for n, t in texts.items()}


def option_names(ctx: click.Context) -> list[str]:
    return [o for p in ctx.command.params for o in getattr(p, "opts", []) if o.startswith("--")]


def setup(ctx: click.Context, target: str, opts: dict, keep_text=None):
    """The target, its input values and the names to differentiate. An input
    whose text ``keep_text(text)`` accepts (a plot's range) is left as text."""
    from ..compute import DEFAULT_MAX_ELEMENTS, prepare

    opts["max_elements"] = opts["max_elements"] or DEFAULT_MAX_ELEMENTS
    texts = collect_inputs(ctx, opts["var"])
    try:
        tgt = prepare(target, list(texts))
    except UsageError as exc:
        # An input the target does not take, given as --NAME: a mistyped option,
        # or another command's, is the likelier story.
        for name in ctx.meta.get(_NAMED, ()):
            if f"input {name!r} is not used" in str(exc) or f"unknown input {name!r}" in str(exc):
                _raise_option_mistake(ctx, name)
        # An input named like one of gradcli's options was taken as that option.
        name = (exc.hint or "").removeprefix("give it a value with --").removesuffix(" VALUE")
        if exc.hint and f"--{name}" in option_names(ctx):
            exc.hint = f"--{name} is an option of gradcli: give the input as --var {name}=VALUE"
        raise
    # The target's order (parameters, or first appearance), not the flags': the
    # outputs and a derivative's returned tuple follow it.
    texts = {n: texts[n] for n in tgt.order(texts)}
    consts = _constants(tgt, texts, opts)
    explicit = frozenset(normalise(n.strip()) for n in opts.get("const", ()))
    kept = {n: t for n, t in texts.items() if keep_text is not None and keep_text(t)}
    inputs = {**read_inputs({n: t for n, t in texts.items() if n not in kept}, opts,
                            explicit), **kept}
    wrt = list(dict.fromkeys(opts["wrt"])) or [n for n in inputs if n not in consts]
    for n in wrt:
        if n not in inputs:
            raise UsageError(f"--wrt {n}: no input named {n!r}",
                             hint=f"inputs: {', '.join(inputs) or 'none'}")
    opts["constants"] = consts
    return tgt, inputs, wrt


def _constants(tgt, texts: dict[str, str], opts: dict) -> list[str]:
    """The inputs not differentiated by default: --const NAME, and a function
    file's parameters with a default value (unless named in --wrt)."""
    wrt = set(opts["wrt"])
    consts = [normalise(n.strip()) for n in dict.fromkeys(opts.get("const", ()))]
    for n in consts:
        if n not in texts:
            raise UsageError(f"--const {n}: no input named {n!r}",
                             hint=f"inputs: {', '.join(texts) or 'none'}")
        if n in wrt:
            raise UsageError(f"--const {n} and --wrt {n}: an input is either data or "
                             "differentiated, not both")
    optional = tgt.loaded.optional if tgt.loaded is not None else ()
    consts += [n for n in texts if n in optional and n not in wrt and n not in consts]
    return consts


def shown_inputs(inputs: dict[str, np.ndarray], opts: dict) -> dict[str, np.ndarray]:
    """The inputs a JSON answer echoes: constants only with --echo-inputs."""
    if opts.get("echo_inputs"):
        return inputs
    consts = set(opts.get("constants", ()))
    return {n: a for n, a in inputs.items() if n not in consts}


def grad_output(opts: dict):
    text = opts["grad_output"]
    if text is None:
        return None
    if text.strip() == "ones":
        return "ones"
    from ..values import parse_value

    return parse_value(text, name="--grad-output", dtype=opts["dtype"],
                       max_elements=opts["max_elements"])


def strict(opts: dict, answer) -> None:
    """--strict: the first warning is an error."""
    if opts["strict"] and answer.warnings:
        raise EvaluationError(f"--strict: {answer.warnings[0]}")


def out_format(opts: dict) -> str:
    if opts.get("json"):
        return "json"
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return opts.get("format") or ("table" if tty else "plain")


@contextlib.contextmanager
def quiet():
    """inf and nan are results: gradcli reports them once, numpy says nothing."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# -- --check ---------------------------------------------------------------------
def cross_check(kind: str, tgt, inputs: dict, wrt: list[str], answer, opts: dict):
    """--check: the engine's ``answer`` (a Result for kind "gradient", Derivatives
    for "jacobian" and "hessian") against sympy and finite differences."""
    from .. import check
    from ..compute import evaluate

    empty = [n for n in wrt if inputs[n].size == 0]
    if empty:
        raise UsageError(f"--check: input {empty[0]!r} is empty; there is no derivative "
                         "to compare")
    # sympy differentiates the expression, or else the graph recorded at the point
    # (a Result, or Derivatives holding one). Finite differences vary the function
    # as written: f=None lets the check build it from the expression, whose own
    # evaluation would hold detach(...) fixed.
    common = dict(wrt=wrt, rtol=opts["rtol"], atol=opts["atol"],
                  timeout=opts["check_timeout"], strict=opts["strict"])
    if tgt.tree is not None:
        f, common["tree"] = None, tgt.tree
    else:
        r = getattr(answer, "recorded", answer)
        # A graph cut by a conversion (float(x)) is not f: its formula would be
        # wrong away from the point, so sympy has nothing to translate then.
        common["graph"] = None if getattr(r, "cuts", None) else (r.output, r.leaves)

        def f(point):
            # The check varies only ``wrt``: the others keep their own values and
            # dtypes (integer --const data, which the check reads as floats).
            point = {n: a if n in wrt else inputs[n] for n, a in point.items()}
            return evaluate(tgt, point, no_grad=True, max_elements=opts["max_elements"]).value
    with quiet():
        if kind == "gradient":
            vjp = answer.seed if answer.value.size != 1 else None
            if vjp is None and answer.value.size != 1:
                # nothing differentiated (no input): no seed was made; nothing
                # will be compared, as for a single number
                vjp = np.ones(answer.value.shape)
            return check.run_check(f, inputs, answer.grads, grad_output=vjp, **common)
        if kind == "jacobian":
            return check.check_jacobian(f, inputs, answer.blocks, **common)

        def gradient(point):
            point = {n: a if n in wrt else inputs[n] for n, a in point.items()}
            return evaluate(tgt, point, wrt=wrt, max_elements=opts["max_elements"]).grads

        pairs = {(a, b): block for a, row in answer.blocks.items() for b, block in row.items()}
        return check.check_hessian(gradient, inputs, pairs, f_value=f, **common)



def progress_line(what: str):
    """A callback ``(done, total)`` writing ``what: done/total rows`` on stderr,
    once the work has run for a second, and only on a terminal; else None."""
    if not sys.stderr.isatty():
        return None
    import time

    start = time.monotonic()

    def report(done: int, total: int) -> None:
        if time.monotonic() - start < 1.0:
            return
        end = "\r\033[K" if done >= total else ""
        sys.stderr.write(f"\r{what}: {done:,}/{total:,} rows{end}")
        sys.stderr.flush()

    return report
