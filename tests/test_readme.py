"""The README's examples run as tests: each ```console block's `$ gradcli ...`
command, run from the repository root, prints the lines shown under it (the
text exactly, each number to the last digits this machine's kernels round
alike: tests/shown.py) and exits 0. The Quick start commands are there."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
from shown import same_lines

from gradcli.cli import main

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def _blocks(lang: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(
        rf"^```{lang}[ \t]*\n(.*?)^```[ \t]*$", text, re.MULTILINE | re.DOTALL
    )


def _console_examples() -> list[tuple[str, list[str]]]:
    """(command, expected stdout lines) for every `$ ` line of every console block."""
    examples = []
    for block in _blocks("console"):
        current = None
        for line in block.splitlines():
            if line.startswith("$ "):
                if current:
                    examples.append(current)
                current = (line[2:].strip(), [])
            elif current is not None:
                current[1].append(line)
        if current:
            examples.append(current)
    return examples


EXAMPLES = _console_examples()


def test_readme_has_console_examples():
    assert len(EXAMPLES) >= 5
    assert all(cmd.startswith("gradcli ") for cmd, _ in EXAMPLES), [
        c for c, _ in EXAMPLES
    ]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    return (0 if code is None else code), out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command, expected", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_console_example(command, expected, monkeypatch):
    monkeypatch.chdir(REPO)  # so that examples/model.py resolves
    argv = shlex.split(command)
    assert argv[0] == "gradcli"
    code, out, err = _run(argv[1:])
    assert code == 0, f"{command}\nexit {code}\nstderr: {err}"
    # (each number to the rounding of this machine's BLAS and SIMD kernels: shown.py)
    assert same_lines(out.splitlines(), expected), f"{command}\n{out}\nstderr: {err}"


def test_quick_start_commands():
    sh = [line.strip() for block in _blocks("sh") for line in block.splitlines()]
    install = [line for line in sh if "pip install" in line]
    assert install, "a pip install line in a ```sh block"
    assert any('gradcli eval "2*dot(x,x)" --x 0,1,2,3' in line for line in install), (
        install
    )
    assert "pytest" in sh, "the one command that runs the tests"


def test_quick_start_comes_first():
    text = README.read_text(encoding="utf-8")
    first_command = re.search(
        r"^```(?:sh|console)[ \t]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL
    )
    assert (
        first_command
        and 'gradcli eval "2*dot(x,x)" --x 0,1,2,3' in first_command.group(1)
    )


def test_the_comparison_forgives_rounding_only():
    from shown import same_line

    assert same_line("grad.w 0.01708328259191405,-1.9", "grad.w 0.01708328259191394,-1.9")
    assert same_line("fd 0.0170832826111 ± 4.09e-10", "fd 0.0170832826356 ± 4.09e-10")
    assert not same_line("fd 0.0170832836111 ± 4.09e-10", "fd 0.0170832826356 ± 4.09e-10")
    assert not same_line("grad.w 0.0171,-1.9", "grad.w 0.0170,-1.9")
    assert not same_line("grad.w 1,2", "grad.w 1,2,3")
    assert not same_line("yours 1", "engine 1")
    assert not same_line("value -1", "value 1")
