"""``eval --sigma NAME=VALUE --cov A,B=VALUE``: the value's error bar (the maths
is ``gradcli.uncertainty``'s; this reads the options and adds the answer)."""

from __future__ import annotations

from ..errors import UsageError
from .options import normalise, quiet, read_pairs


def wanted(opts: dict) -> bool:
    return bool(opts.get("sigma") or opts.get("cov"))


def vector_output(tgt, inputs: dict, opts: dict) -> bool:
    """With --sigma, an output of several numbers has no gradient (unless
    --grad-output asks for one), just its covariance: True for such a target."""
    if not wanted(opts) or opts["grad_output"] is not None or opts["check"] \
            or opts["expect_grad"]:
        return False
    from ..compute import evaluate

    probe = evaluate(tgt, inputs, no_grad=True, max_elements=opts["max_elements"])
    return probe.value.size != 1


def propagate(tgt, inputs: dict, wrt: list[str], opts: dict):
    """The options read and checked, then ``uncertainty.propagate``."""
    from .. import uncertainty
    from ..values import parse_value

    def value(option: str, text: str):
        return parse_value(text, name=option, max_elements=opts["max_elements"])

    sigmas = {name: value(f"--sigma {name}", text)
              for name, text in read_pairs("--sigma", opts["sigma"], "m=0.1").items()}
    covs = {}
    for pair in opts["cov"]:
        names, eq, text = pair.partition("=")
        both = tuple(normalise(n.strip()) for n in names.split(","))
        if not eq or len(both) != 2 or not all(n.isidentifier() for n in both):
            raise UsageError(f"--cov {pair!r}: expected NAME,NAME=VALUE, e.g. "
                             "--cov a,b=0.01")
        if both in covs:
            raise UsageError(f"--cov {','.join(both)}: given twice")
        covs[both] = value(f"--cov {','.join(both)}", text)
    consts = opts.get("constants", ())
    for n in [*sigmas, *(n for pair in covs for n in pair)]:
        if n in inputs and n not in wrt:
            why = "a constant" if n in consts else "not differentiated"
            raise UsageError(f"--sigma/--cov {n}: input {n!r} is {why}",
                             hint=f"an input with an uncertainty must be differentiated: "
                                  f"--wrt {n}" + (f" (and drop --const {n})"
                                                  if n in opts.get("const", ()) else ""))
    with quiet():  # overflow is reported as a warning, not numpy's
        cov = uncertainty.covariance(inputs, sigmas, covs,
                                     max_elements=opts["max_elements"])
        return uncertainty.propagate(tgt, inputs, cov, max_elements=opts["max_elements"])
