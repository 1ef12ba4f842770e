"""The installed command and `python -m gradcli`, as real processes; and what a plain
`eval` imports at start-up (neither sympy nor, for json/plain output, rich)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARGS = ["eval", "2*dot(x,x)", "--x", "0,1,2,3"]


def _gradcli() -> list[str]:
    exe = shutil.which("gradcli")
    return [exe] if exe else [sys.executable, "-m", "gradcli"]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, capture_output=True, check=False, text=True, timeout=60, cwd=REPO, **kw
    )


def _strict(text: str):
    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token!r}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("launcher", ["entry point", "python -m"])
def test_eval_json(launcher):
    cmd = _gradcli() if launcher == "entry point" else [sys.executable, "-m", "gradcli"]
    p = _run(cmd + ARGS + ["--json"])
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    obj = _strict(p.stdout)
    assert obj["schema"] == 1
    assert obj["value"] == 28.0  # 2 * (0 + 1 + 4 + 9)
    assert obj["grad"] == {"x": [0.0, 4.0, 8.0, 12.0]}  # 4x
    assert obj["shape"] == []


def test_entry_point_plain_is_the_default_in_a_pipe():
    p = _run(_gradcli() + ARGS)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "value 28\ngrad.x 0,4,8,12\n"


@pytest.mark.parametrize(
    "argv, code",
    [
        (["eval", "x +", "--x", "1"], 2),
        (["eval", "x*x", "--x", "1,2"], 3),
        (["eval", "dot(x,x)", "--x", "1,2", "--expect-value", "6"], 1),
        (["eval", "x", "--x", "1", "--format", "xml"], 2),
        (["nosuchcommand"], 2),
    ],
)
def test_exit_codes_of_the_process(argv, code):
    p = _run(_gradcli() + argv)
    assert p.returncode == code, p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("error: ") or code == 1, p.stderr
    if code != 1:
        assert p.stdout == ""


def test_version_of_the_process():
    p = _run(_gradcli() + ["--version"])
    assert p.returncode == 0
    from importlib.metadata import version

    assert version("gradcli") in p.stdout


_IMPORTS = textwrap.dedent("""
    import contextlib, io, json, sys
    from gradcli.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main({argv!r})
        except SystemExit as exc:
            code = exc.code
    def loaded(pkg):
        return any(m == pkg or m.startswith(pkg + ".") for m in sys.modules)
    print(json.dumps({{"code": code, "out": out.getvalue(),
                       "sympy": loaded("sympy"), "rich": loaded("rich"),
                       "other": [m for m in ("shutil", "gradcli.taylor") if loaded(m)]}}))
""")


def _imports(argv: list[str]) -> dict:
    p = _run([sys.executable, "-c", _IMPORTS.format(argv=argv)])
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1])


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_plain_eval_imports_neither_sympy_nor_rich(fmt):
    r = _imports(ARGS + ["--format", fmt])
    assert r["code"] in (0, None), r
    assert "28" in r["out"]
    assert not r["sympy"], "a plain eval must not import sympy"
    assert not r["rich"], f"eval --format {fmt} must not import rich"
    # (a plot's terminal size, the taylor module: not on every start)
    assert not r["other"], r["other"]


def test_table_eval_does_not_import_sympy():
    r = _imports(ARGS + ["--format", "table"])
    assert r["code"] in (0, None), r
    assert not r["sympy"]


def test_importtime_agrees():
    p = _run(
        [sys.executable, "-X", "importtime", "-m", "gradcli", *ARGS, "--format", "json"]
    )
    assert p.returncode == 0
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in p.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "numpy" in imported  # the probe sees imports at all
    assert "sympy" not in imported
    assert "rich" not in imported
