"""Long Jacobian and Hessian work (issue 12, item 7): refused up front when its
walks would touch more than 100 x --max-elements elements, and reported row by
row as it goes."""

from __future__ import annotations

import time

import numpy as np

from gradcli import compute, transforms
from test_cli import run


def test_a_hessian_whose_walks_are_too_much_work_is_refused_at_once():
    start = time.monotonic()
    # Each of the 3,000 rows walks the 9 million elements of outer(x, x) (120 s before).
    r = run("hessian", "sum(outer(x,x))", "--x", "arange(3000)")
    assert time.monotonic() - start < 10
    assert (r.code, r.out) == (3, "")
    assert r.err.splitlines()[0].startswith("error: the Hessian needs 3,000 rows, each ")
    assert "100 x --max-elements (1,000,000,000)" in r.err
    # The limit is --max-elements's: raised, the same Hessian would run.
    assert run("hessian", "sum(outer(x,x))", "--x", "arange(30)").code == 0


def test_a_jacobian_reports_its_rows_as_it_goes(monkeypatch):
    monkeypatch.setattr(transforms, "MAX_ELEMENTS", 200)  # chunks of a few rows
    seen = []
    tgt = compute.prepare("sin(x) * sum(x)", ["x"])
    x = np.linspace(0.1, 1.0, 40)
    d = compute.jacobian(tgt, {"x": x}, wrt=["x"], progress=lambda done, total:
                         seen.append((done, total)))
    # d(sin(x_i) S)/dx_j = cos(x_i) S [i == j] + sin(x_i), S = sum(x)
    want = np.diag(np.cos(x) * x.sum()) + np.sin(x)[:, None]
    np.testing.assert_allclose(d.blocks["x"], want, rtol=1e-12)
    assert len(seen) > 1 and seen[-1] == (40, 40)
    assert [s[0] for s in seen] == sorted({s[0] for s in seen})  # each chunk once, in order
