"""Checks of the user's own derivative (``check --grad FILE:df``) and checks at
many points (``--random N``, ``--points FILE`` with ``check``, ``--check`` and
``--expect-*``): options and a thin layer over ``gradcli.usercheck``."""

from __future__ import annotations

import click

from ..errors import UsageError
from .options import _apply, shape_option


def user_options(f):
    """--grad, --jacobian, --hessian FILE.py:NAME: the user's derivative."""
    return _apply(f, [
        click.option("--grad", "user_grad", metavar="FILE.py:NAME",
                     help="Check YOUR gradient function (same arguments as TARGET) against "
                     "the engine and finite differences."),
        click.option("--jacobian", "user_jacobian", metavar="FILE.py:NAME",
                     help="Check YOUR Jacobian function likewise."),
        click.option("--hessian", "user_hessian", metavar="FILE.py:NAME",
                     help="Check YOUR Hessian function likewise."),
    ])


def many_options(f):
    """--random N and what goes with it: --domain, --shape, --replay, --all."""
    return _apply(f, [
        click.option("--random", "random", type=click.IntRange(min=1), default=None,
                     metavar="N", help="Check at N random points (with --seed S to replay)."),
        click.option("--domain", multiple=True, metavar="NAME=LO:HI",
                     help="Draw NAME uniformly in [LO, HI] (default: its value +- 1)."),
        shape_option,
        click.option("--replay", type=click.IntRange(min=1), default=None, metavar="K",
                     help="Check only random point K (with the same --seed)."),
        click.option("--all", "show_all", is_flag=True,
                     help="List every failing point (default: the first 10)."),
    ])


def user_kind(opts: dict) -> tuple[str, str] | None:
    """(kind, FILE:NAME) of the one --grad/--jacobian/--hessian given, or None."""
    given = [(k, opts.get(f"user_{o}")) for k, o in
             (("gradient", "grad"), ("jacobian", "jacobian"), ("hessian", "hessian"))]
    given = [(k, s) for k, s in given if s is not None]
    if len(given) > 1:
        raise UsageError("give one of --grad, --jacobian and --hessian")
    return given[0] if given else None


def many(opts: dict) -> bool:
    """Whether the command checks many points (or names an option of that mode)."""
    if opts.get("random") is None:
        for name, flag in (("domain", "--domain"), ("shape", "--shape"),
                           ("replay", "--replay")):
            if opts.get(name):
                raise UsageError(f"{flag} goes with --random N")
        if opts.get("show_all") and opts.get("points") is None:
            raise UsageError("--all goes with --random N or --points FILE")
    return opts.get("random") is not None or opts.get("points") is not None


def run(ctx: click.Context, target: str, opts: dict, *, engine_check: bool,
        expected=None) -> int:
    """One point or many, the user's derivative or the engine's (``engine_check``)
    or ``--expect-*`` (``expected(result) -> [(what, array)]``)."""
    from .. import render
    from .options import out_format

    spec = user_kind(opts)
    if spec is not None and opts.get("grad_output") is not None:
        option = {"gradient": "--grad"}.get(spec[0], f"--{spec[0]}")
        raise UsageError(f"--grad-output does not go with {option}: the whole "
                         "derivative is checked")
    if not many(opts):
        return _one(ctx, target, opts, spec)
    if opts.get("random") is not None and opts.get("points") is not None:
        raise UsageError("give --random N or --points FILE, not both")
    checks = _many(ctx, target, opts, spec, engine_check, expected)
    return render.emit(checks, out_format(opts))


def _one(ctx, target, opts, spec) -> int:
    from .. import render
    from ..compute import Result
    from ..usercheck import check_point, load_derivative
    from .options import out_format, setup, shown_inputs

    tgt, inputs, wrt = setup(ctx, target, opts)
    kind, path = spec
    d = load_derivative(path, kind, list(inputs))
    report, result, value = check_point(
        tgt, d, inputs, wrt, rtol=opts["rtol"], atol=opts["atol"],
        timeout=opts["check_timeout"], max_elements=opts["max_elements"],
        strict=opts["strict"])
    if result is None or report.engine is not None:
        result = Result(value, {}, None)  # no engine gradient to show
    return render.emit(render.result_view(tgt, shown_inputs(inputs, opts), result),
                       out_format(opts),
                       opts["precision"], check=report, verdict_first=True)


def _many(ctx, target, opts, spec, engine_check, expected):
    import math

    import numpy as np

    from .. import expect, points, usercheck
    from ..compute import DEFAULT_MAX_ELEMENTS, evaluate, evaluate_rows, kinks, prepare
    from .options import collect_inputs, cross_check, normalise, read_inputs, read_shapes

    opts["max_elements"] = opts["max_elements"] or DEFAULT_MAX_ELEMENTS
    explicit = list(dict.fromkeys(normalise(n.strip()) for n in opts.get("const", ())))
    fixed = read_inputs(collect_inputs(ctx, opts["var"]), opts, frozenset(explicit))
    derivative = None
    common = dict(rtol=opts["rtol"], atol=opts["atol"], timeout=opts["check_timeout"],
                  max_elements=opts["max_elements"], strict=opts["strict"])

    if opts.get("grad_output") is not None:
        raise UsageError("--grad-output is for one point; at many points the value "
                         "must be a single number")
    if opts.get("points") is not None:
        rows, names, source = _file_rows(opts, fixed)
    else:
        shapes = read_shapes(opts["shape"])
        for name, shape in shapes.items():
            size = math.prod(shape)
            if size > opts["max_elements"]:
                raise UsageError(f"--shape {name}: too many elements ({size}; the limit "
                                 f"is {opts['max_elements']})",
                                 hint="a smaller shape (or raise --max-elements)")
        domains = {}
        for pair in opts["domain"]:
            name, lo, hi = points.read_domain(pair)
            if name in domains:
                raise UsageError(f"--domain {name}: given twice")
            domains[name] = (lo, hi)
        both = sorted(set(shapes) & set(fixed))
        if both:
            raise UsageError(f"input {both[0]!r} has a value and a --shape; give one")
        names = list(fixed) + [n for n in shapes if n not in fixed]
        for n in domains:
            if n not in names:
                raise UsageError(f"--domain {n}: no input named {n!r}",
                                 hint=f"inputs: {', '.join(names) or 'none'}")
        source = None
    tgt = prepare(target, names)
    names = tgt.order(names)  # the target's order, not the flags' (as setup)
    fixed = {n: fixed[n] for n in tgt.order(fixed)}
    consts = _many_constants(tgt, names, fixed, explicit, opts)
    opts["constants"] = consts
    wrt = list(dict.fromkeys(opts["wrt"])) or [n for n in names if n not in consts]
    for n in wrt:
        if n not in names:
            raise UsageError(f"--wrt {n}: no input named {n!r}",
                             hint=f"inputs: {', '.join(names) or 'none'}")
    if spec is not None:
        derivative = usercheck.load_derivative(spec[1], spec[0], names)
    if expected is not None:  # read once, and its mistakes are usage errors now
        from types import SimpleNamespace

        wants = expected(SimpleNamespace(grads=dict.fromkeys(wrt)))
        expected = lambda result: wants  # noqa: E731

    # The engine's gradient at the last random point the kink test evaluated
    # (a user's gradient check needs it too): (inputs, Result).
    shared: list = [None]
    share = derivative is not None and derivative.kind == "gradient"

    def check_one(number, inputs):
        if derivative is not None:
            last, shared[0] = shared[0], None
            done = last[1] if last is not None and last[0] is inputs else None
            report, _, value = usercheck.check_point(tgt, derivative, inputs, wrt,
                                                     thorough=False, engine_result=done,
                                                     **common)
            return (usercheck.not_finite(number, inputs, value)
                    or usercheck.verdict_of(number, inputs, report))
        result = evaluate(tgt, inputs, wrt=wrt, max_elements=opts["max_elements"])
        if engine_check and (bad := usercheck.not_finite(number, inputs, result.value)):
            return bad
        report = (cross_check("gradient", tgt, inputs, wrt, result, opts)
                  if engine_check else None)
        failures = (expect.compare(expected(result), result, rtol=opts["rtol"],
                                   atol=opts["atol"]) if expected else [])
        return usercheck.verdict_of(number, inputs, report, failures)

    if source is not None:
        checks = usercheck.ManyChecks(f"points of {source}", None)
    else:
        seed = opts["seed"]
        if seed is None:
            import secrets

            seed = secrets.randbelow(2**32)

        def at_kink(inputs):
            shared[0] = None
            try:
                with np.errstate(all="ignore"):
                    if share:  # the gradient check's own evaluation, kept for it
                        try:
                            result = evaluate(tgt, inputs, wrt=wrt,
                                              max_elements=opts["max_elements"])
                        except Exception:  # the forward pass alone, as below
                            pass
                        else:
                            shared[0] = (inputs, result)
                            return bool(result.notes)
                    return bool(kinks(evaluate(tgt, inputs, no_grad=True, record=True,
                                               max_elements=opts["max_elements"]).output))
            except Exception:  # the check itself reports what fails there
                return False

        n, start = opts["random"], 1
        if opts["replay"] is not None:
            n, start = 1, opts["replay"]
        drawn = wrt + [n for n in shapes if n not in wrt and n not in consts]
        for name in domains:
            if name not in drawn:
                raise UsageError(f"--domain {name}: {name} is not drawn (only the "
                                 f"inputs differentiated are: {', '.join(drawn)})")
        def draw(n, start, at_kink):
            return points.random_points(fixed, shapes, domains, drawn, n, seed,
                                        dtype=opts["dtype"], start=start, at_kink=at_kink)

        rows = draw(n, start, at_kink)
        what = (f"random point {start}" if opts["replay"] is not None
                else f"{n} random point{'s' * (n != 1)}")
        checks = usercheck.ManyChecks(what, None, seed=seed,
                                      replay=f"--seed {seed} --replay {{k}}",
                                      drawn=tuple(drawn))
    checks.show_all = opts["show_all"]
    if derivative is None and not engine_check:
        # --expect-* alone: no finite differences, so rows are evaluated in
        # chunks (as one, where the target allows: compute.evaluate_rows).
        def check_chunk(chunk):
            results = evaluate_rows(tgt, [inputs for _, inputs in chunk], wrt=wrt,
                                    no_grad=False, max_elements=opts["max_elements"])
            for (number, inputs), result in zip(chunk, results):
                if isinstance(result, Exception):
                    raise result
                yield usercheck.verdict_of(number, inputs, None, expect.compare(
                    expected(result), result, rtol=opts["rtol"], atol=opts["atol"]))

        verdicts = usercheck.check_chunks(rows, check_chunk, points.CHUNK)
    elif (derivative is not None and derivative.kind == "gradient"
          and tgt.loaded is not None):
        # Chunks of rows in one call of f and df where they are vectorised
        # (usercheck.GradientBatches decides); the rows a batch does not pass,
        # one at a time as below. Random points: a batch takes each point's
        # first draw, and a row checked alone is drawn again as here, with the
        # kink test (the same point, unless that draw sat on a kink).
        batches = usercheck.GradientBatches(tgt, derivative, wrt, **common)
        if source is None:
            import itertools

            first = draw(n, start, None)

            def redraw(rs):
                return itertools.chain.from_iterable(draw(1, r.number, at_kink)
                                                     for r in rs)

            def rest(k):
                return draw(start + n - k, k, at_kink)
        else:
            first, redraw, rest = rows, None, None
        verdicts = usercheck.check_batched(
            first, batches, lambda rs: usercheck.check_rows(rs, check_one), redraw, rest)
    else:
        verdicts = usercheck.check_rows(rows, check_one)
    checks.verdicts = _progress(verdicts, opts.get("random"))
    return checks


def _many_constants(tgt, names, fixed, explicit, opts) -> list[str]:
    """The inputs held fixed at every point and not differentiated: --const
    NAME (with a value given, which every point keeps, its dtype too), and a
    function file's parameters with a default value (unless named in --wrt)
    when given a value: ``options``' rule, and a constant is never drawn."""
    from .options import _constants

    for n in explicit:
        if n in names and n not in fixed and opts.get("points") is None:
            raise UsageError(f"--const {n}: give its value (--{n} VALUE); constants "
                             "are not drawn")
    from_file = opts.get("points") is not None  # (a column of the file: a value too)
    return [n for n in _constants(tgt, dict.fromkeys(names), opts)
            if n in explicit or n in fixed or from_file]


def _file_rows(opts, fixed):
    """The rows of --points FILE (read as they come) and the input names."""
    import itertools
    import os
    import sys

    from .. import points

    path = opts["points"]
    if path == "-":
        raw = getattr(sys.stdin, "buffer", sys.stdin)
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 (read lazily, closed at exit)
        except OSError as exc:
            raise UsageError(f"--points {path}: cannot read: {exc.strerror}") from exc
    fmt = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(
        os.path.splitext(path)[1].lower())
    lines = points.lines_of(raw, opts.get("max_line_bytes") or points.MAX_LINE_BYTES)
    declared, rows = points.read(lines, fmt=fmt, dtype=opts["dtype"],
                                 max_elements=opts["max_elements"])
    ahead = []
    if declared is None:  # NDJSON: the first readable line names the inputs
        for r in rows:
            ahead.append(r)
            if r.inputs is not None:
                declared = list(r.inputs)
                break
    if declared is None:
        raise UsageError(f"--points {path}: no rows")
    both = sorted(set(declared) & set(fixed))
    if both:
        raise UsageError(f"input {both[0]!r} is given by --points and by --{both[0]}: "
                         "give it once")
    names = list(declared) + [n for n in fixed if n not in declared]

    def merged():
        try:
            yield from _merge(itertools.chain(ahead, rows), fixed, names)
        finally:
            if path != "-":
                raw.close()

    return merged(), names, path


def _merge(rows, fixed, names):
    """Each row with the fixed inputs; a row without every input, or with one
    the others lack, gets its error."""
    for r in rows:
        if r.inputs is not None:
            r.inputs = {**fixed, **r.inputs}
            if set(r.inputs) != set(names):
                missing = sorted(set(names) - set(r.inputs))
                r.error = (f"row {r.number}: missing input {missing[0]!r}" if missing
                           else f"row {r.number}: unknown input "
                           f"{sorted(set(r.inputs) - set(names))[0]!r}")
                r.inputs = None
        yield r


def _progress(verdicts, total):
    """The verdicts, and on a terminal, once the work has run for a second, a
    progress line on stderr."""
    import sys
    import time

    if not sys.stderr.isatty():
        yield from verdicts
        return
    start, done = time.monotonic(), 0
    for v in verdicts:
        done += 1
        if time.monotonic() - start >= 1.0:
            of = f"/{total:,}" if total else ""
            sys.stderr.write(f"\rcheck: {done:,}{of} points")
            sys.stderr.flush()
        yield v
    if time.monotonic() - start >= 1.0:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
