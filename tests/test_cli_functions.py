"""Function files that return, print or do what they should not (issue 12,
items 12, 13, 14 and 16's GeneratorExit), and the words of non-finite warnings
(item 22)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_cli import run


def _file(tmp_path, body: str, head: str = "") -> str:
    f = tmp_path / "model.py"
    f.write_text(f"import gradcli as gc\n{head}\ndef f(x):\n    {body}\n")
    return f"{f}:f"


@pytest.mark.parametrize(
    "body, says",
    [
        ("return None", "model.py: f() returned None; return a tensor or a number"),
        ("return '1.5'", "model.py: f() returned the str '1.5'; return a tensor or a number"),
        ("return [x, x]", "model.py: f() returned an object of class list; return a "
                          "tensor or a number"),
        ("return True", "model.py: f() returned True; return a tensor or a number"),
        ("return Bad()", "model.py: f() returned an object of class Bad; return a tensor "
                         "or a number"),
    ],
)
def test_a_function_returning_no_number_is_an_evaluation_error(tmp_path, body, says):
    # None gave `value nan` and exit 0 (check: PASS); "1.5" gave 1.5.
    head = "class Bad:\n    def __array__(self, *a, **k):\n        raise RuntimeError('no')\n"
    for command in ("eval", "check"):
        r = run(command, _file(tmp_path, body, head), "--x", "2")
        assert (r.code, r.out) == (3, ""), r.err
        assert r.err.splitlines() == [f"error: {says}"]


def test_what_a_function_prints_goes_to_stderr(tmp_path):
    target = _file(tmp_path, "print('step', x.item()); return x * x",
                   head="print('loading')")
    r = run("eval", target, "--x", "3", "--json")
    assert r.code == 0, r.err
    obj = json.loads(r.out)  # stdout is the JSON alone
    assert (obj["value"], obj["grad"]) == (9.0, {"x": 6.0})  # x^2, 2x
    assert "loading" in r.err and "step 3.0" in r.err


def test_a_function_that_walks_its_own_graph_is_an_evaluation_error(tmp_path):
    r = run("eval", _file(tmp_path, "y = x * x\n    y.backward()\n    return y"), "--x", "2")
    assert r.code == 3, r.err
    assert r.err.splitlines()[0].endswith(
        "ran backward() itself, which freed the graph that gradcli differentiates")


def test_a_function_raising_generator_exit_is_an_evaluation_error(tmp_path):
    r = run("eval", _file(tmp_path, "raise GeneratorExit"), "--x", "2")
    assert r.code == 3 and "Traceback" not in r.err
    assert r.err.splitlines() == ["error: model.py, line 4, in f: GeneratorExit"]


@pytest.mark.parametrize(
    "args, warning",
    [
        (["9**9**9"], "value is inf; first inf in pow at '9**9**9' (forward pass)"),
        (["sum(sqrt(x))", "--x", "0,1,0"],
         "grad.x is inf: 2 of 3 elements; first inf in sqrt at 'sqrt(x)' (backward pass)"),
        (["log(x)", "--x", "-1,0,1,0", "--grad-output", "ones"],
         "value has 1 nan and 2 -inf in 4 elements; first nan in log at 'log(x)' "
         "(forward pass)"),
    ],
)
def test_non_finite_warnings_say_which_how_many_and_where(args, warning):
    # log(-1) = nan, log(0) = -inf; d sqrt(x)/dx = 1/(2 sqrt x) is inf at 0.
    r = run("eval", *args, "--format", "plain")
    assert r.code == 0
    assert f"warning: {warning}" in r.err.splitlines()


def test_output_below_python_goes_to_stderr_too(tmp_path):
    # os.system, a subprocess and os.write(1, ...) write to descriptor 1, past
    # sys.stdout: they must not land in front of the JSON either.
    import subprocess
    import sys

    f = tmp_path / "noisy.py"
    f.write_text(
        "import os, subprocess, sys\n"
        "def f(x):\n"
        "    os.system('echo from-system')\n"
        "    subprocess.run([sys.executable, '-c', 'print(\"from-child\")'])\n"
        "    os.write(1, b'fd1\\n')\n"
        "    return (x * x).sum()\n",
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, "-m", "gradcli", "eval", f"{f}:f", "--x", "3",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)  # stdout is the JSON and nothing else
    assert out["value"] == 9.0 and out["grad"] == {"x": 6.0}  # x^2 and 2x at 3
    assert done.stderr.split() == ["from-system", "from-child", "fd1"]


@pytest.mark.parametrize(
    "body, call",
    [
        ("return x.var()", "x.var()"),
        ("return x.std()", "x.std()"),
        ("return np.sum(x.max(0))", "x.max(0)"),
        ("return np.sum(x.repeat(2) * x)", "x.repeat(n)"),
        ("x.sort()\n    return x[0]", "x.sort()"),
    ],
)
def test_a_method_whose_pytorch_and_numpy_meanings_differ_is_refused_in_a_file(
        tmp_path, body, call):
    # x.var() of [1, 2, 4] gave PyTorch's 2.33 (unbiased) where the same file
    # run on arrays, and the user's own df, read numpy's 1.56: check --grad
    # passed a df with the wrong denominator and failed the right one
    r = run("eval", _file(tmp_path, body, "import numpy as np"), "--x", "1,2,4")
    assert (r.code, r.out) == (3, ""), r.err
    assert call in r.err and "PyTorch" in r.err and "numpy" in r.err
    assert len(r.err.splitlines()) == 1


def test_the_explicit_forms_of_those_methods_mean_what_they_say_in_a_file(tmp_path):
    x = np.array([1.0, 2.0, 4.0])
    for body, want in (("return x.var(ddof=0)", np.var(x)),
                       ("return x.std(unbiased=True)", np.std(x, ddof=1)),
                       ("return np.var(x)", np.var(x)),
                       ("return np.sum(x.max(axis=0))", 4.0),
                       ("return np.sum(x.sort(dim=-1).values * x)", 1 + 4 + 16)):
        r = run("eval", _file(tmp_path, body, "import numpy as np"), "--x", "1,2,4",
                "--format", "json")
        assert r.code == 0, r.err
        assert json.loads(r.out)["value"] == pytest.approx(want, rel=1e-15)
    # numpy's var: its gradient 2 (x - mean) / n, written by hand, passes
    f = tmp_path / "v.py"
    f.write_text("import numpy as np\ndef f(x):\n    return x.var(ddof=0)\n"
                 "def df(x):\n    return 2 * (x - x.mean()) / len(x)\n"
                 "def df_torch(x):\n    return 2 * (x - x.mean()) / (len(x) - 1)\n")
    assert run("check", f"{f}:f", "--grad", f"{f}:df", "--x", "1,2,4").code == 0
    assert run("check", f"{f}:f", "--grad", f"{f}:df_torch", "--x", "1,2,4").code == 1
