"""The command line where the input or the environment is the problem (issue 12):
exit codes for a closed pipe, a full disk, a closed stdout, Ctrl-C during
start-up, user code that fails in odd ways, options mistaken for inputs, input
names in other Unicode forms, shell completion, the examples of --help.

Signals, pipes and descriptors are tested on real processes (the installed
``gradcli`` script); the rest in-process through ``gradcli.cli.main``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gradcli.cli import main

REPO = Path(__file__).resolve().parent.parent
EXE = shutil.which("gradcli", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                    os.environ.get("PATH", "")]))
GRADCLI = [EXE] if EXE else [sys.executable, "-m", "gradcli"]
ENV = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable),
                                              os.environ.get("PATH", "")])}
ENV.pop("_GRADCLI_COMPLETE", None)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code
    assert isinstance(code, int), f"main() must exit with a number, got {code!r}"
    return code, out.getvalue(), err.getvalue()


def proc(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(GRADCLI + argv, capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=kw.pop("env", ENV), **kw)


def one_error(err: str) -> str:
    lines = err.splitlines()
    assert lines and lines[0].startswith("error: "), err
    assert all(line.startswith("hint: ") for line in lines[1:]), err
    assert len(lines) <= 3, err
    assert "Traceback" not in err
    return lines[0]


def test_the_installed_script_is_the_entry_module():
    # The start-up handling below is the installed command's.
    assert EXE is not None
    assert "_gradcli_entry" in Path(EXE).read_text(encoding="utf-8", errors="replace")


# -- 14: values an option's type must refuse (exit 2, not 70) ------------------------
@pytest.mark.parametrize("argv", [
    ["--seed", "-5"],
    ["--check", "--check-timeout", "inf"],
    ["--check", "--check-timeout", "nan"],
    ["--check", "--check-timeout", "1e308"],
    ["--check", "--check-timeout", "0"],
    ["--check", "--check-timeout", "-2"],
    ["--expect-value", "1", "--rtol", "nan"],
    ["--expect-value", "1", "--atol", "nan"],
    ["--check", "--rtol", "-1"],
])
def test_bad_option_values_are_usage_errors(argv):
    code, out, err = run("eval", "sum(x*x)", "--x", "randn(3)", *argv)
    assert code == 2, err
    assert out == ""
    assert argv[-2] in one_error(err)


def test_good_option_values_still_work():
    code, out, err = run("eval", "sum(x*x)", "--x", "randn(3)", "--seed", "0",
                         "--check", "--check-timeout", "30", "--json")
    assert code == 0, err
    import json

    import numpy as np

    x = np.random.default_rng(0).standard_normal(3)  # what --seed 0 documents
    obj = json.loads(out)
    assert obj["value"] == pytest.approx(float(x @ x))
    assert obj["grad"]["x"] == pytest.approx((2 * x).tolist())


# -- 14, 16: the user's function fails in ways the engine does not expect (exit 3) ---
FUNCTIONS = {
    "backward": """
        def f(x):
            y = (x * x).sum()
            y.backward()
            return y
    """,
    "array_raises": """
        class Odd:
            def __array__(self, *args, **kwargs):
                raise RuntimeError("no array here")

        def f(x):
            return Odd()
    """,
    "array_raises_in_an_op": """
        class Odd:
            def __array__(self, *args, **kwargs):
                raise RuntimeError("no array here")

        def f(x):
            return (x * Odd()).sum()
    """,
    "generator_exit": """
        def f(x):
            raise GeneratorExit("closed")
    """,
}


@pytest.mark.parametrize("command", ["eval", "jacobian", "hessian", "graph", "check"])
@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_user_code_failures_are_evaluation_errors(tmp_path, command, kind):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(FUNCTIONS[kind]), encoding="utf-8")
    code, out, err = run(command, str(path), "--x", "1,2")
    assert code == 3, err
    assert out == ""
    line = one_error(err)
    assert "model.py" in line and "internal error" not in line
    if kind == "backward":
        assert "backward()" in line


# -- 14, 15: stdout that cannot be written -------------------------------------------
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [
    ["eval", "x*x", "--x", "3"],
    ["ops"],
    ["graph", "x*x", "--x", "3"],
    ["--help"],
])
def test_a_full_disk_is_exit_74_with_one_line(argv):
    with open("/dev/full", "w") as full:
        p = subprocess.run(GRADCLI + argv, stdout=full, stderr=subprocess.PIPE, text=True,
                           timeout=120, cwd=REPO, env=ENV)
    assert p.returncode == 74, p.stderr
    assert p.stderr == "error: cannot write the output: No space left on device\n"


def test_a_closed_stdout_is_exit_74_not_a_silent_success():
    p = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *GRADCLI,
                        "eval", "x*x", "--x", "3"],
                       capture_output=True, text=True, timeout=120, cwd=REPO, env=ENV)
    assert p.returncode == 74, p.stderr
    assert p.stderr == "error: cannot write the output: stdout is closed\n"


def _closed_early(argv: list[str], read: int) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader leaves after ``read`` bytes (0: at once)."""
    p = subprocess.Popen(GRADCLI + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=REPO, env=ENV)
    if read:
        assert len(p.stdout.read(read)) == read
    p.stdout.close()
    try:
        err = p.stderr.read()
        code = p.wait(timeout=120)
    finally:
        p.kill()
    return subprocess.CompletedProcess(argv, code, "", err.decode())


@pytest.mark.parametrize("argv", [
    ["eval", "x*x", "--x", "3"],
    ["ops"],
    ["graph", "sum(sin(x)*x)", "--x", "0.1,0.2"],
    ["--help"],
    ["eval", "--help"],
    ["plot", "sin(x)", "--x", "-1:1", "--format", "csv"],
])
def test_a_closed_pipe_is_exit_141_quietly(argv):
    p = _closed_early(argv, 0)
    assert p.returncode == 141, p.stderr
    assert p.stderr == ""


@pytest.mark.parametrize("argv", [
    ["ops"],
    ["graph", "sum(sin(x)*x)", "--x", "arange(20000)", "--json", "--full"],
    ["plot", "sin(x)", "--x", "-1:1", "--format", "csv", "--samples", "10000"],
])
def test_head_reading_a_part_ends_it_quietly(argv):
    # `gradcli ... | head -c 100`: the reader may leave before the last write
    # (141) or after it (0); never 1 ("the answer is no"), never a traceback.
    p = _closed_early(argv, 100)
    assert p.returncode in (0, 141), p.stderr
    assert p.stderr == ""


@pytest.mark.parametrize("argv", [
    ["eval", "x*x", "--x", "arange(200000)", "--grad-output", "ones", "--format", "plain"],
    ["eval", "x*x", "--x", "arange(200000)", "--grad-output", "ones", "--json"],
])
def test_a_reader_gone_before_a_large_answer_ends_is_141(argv):
    # A tester found exit 0 here: the whole answer (several MB) went in one
    # write, which can report success although the reader left after 10 bytes.
    # Written 64 KiB at a time, a write after the reader left fails: exit 141.
    p = _closed_early(argv, 10)
    assert p.returncode == 141, p.stderr
    assert p.stderr == ""


def test_head_in_a_shell_pipeline():
    p = subprocess.run(["bash", "-c", '"$@" | head -1; echo "status ${PIPESTATUS[0]}"',
                        "bash", *GRADCLI, "ops"],
                       capture_output=True, text=True, timeout=120, cwd=REPO, env=ENV)
    lines = p.stdout.splitlines()
    assert lines[0].startswith("add(a, b)\t"), p.stdout
    assert lines[-1] in ("status 0", "status 141"), p.stdout
    assert p.stderr == ""


# -- 16: Ctrl-C while the command starts -----------------------------------------------
SLOW = """
import time

def f(x):
    time.sleep(60)
    return x
"""


def _mapped(pid: int, needle: str) -> bool:
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
            return needle in fh.read()
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc")
@pytest.mark.parametrize("after", [0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 1.0, 3.0])
def test_ctrl_c_during_start_up_is_exit_130_without_a_traceback(tmp_path, after):
    # The signal is sent `after` seconds once numpy's core has been mapped into
    # the process: numpy (and then gradcli) are still being imported; the last
    # delays land later, in the function, which sleeps so that the process is
    # alive whenever the signal comes.
    path = tmp_path / "slow.py"
    path.write_text(SLOW, encoding="utf-8")
    p = subprocess.Popen(GRADCLI + ["eval", str(path), "--x", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO, env=ENV)
    try:
        deadline = time.monotonic() + 60
        while not _mapped(p.pid, "_multiarray_umath") and time.monotonic() < deadline:
            assert p.poll() is None, p.communicate()
            time.sleep(0.001)
        time.sleep(after)
        assert p.poll() is None, "the command ended before the signal"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip() == ""
    assert out == ""


STUBBORN = """
import time

def f(x):
    while True:  # user code that swallows every KeyboardInterrupt
        try:
            time.sleep(0.01)
        except BaseException:
            pass
"""


def test_ctrl_c_exits_130_even_when_user_code_swallows_it(tmp_path):
    # The KeyboardInterrupt can be lost (user code catching it, or it landing
    # in a __del__, where Python only reports it): a second later the process
    # exits 130 all the same, instead of running on.
    path = tmp_path / "stubborn.py"
    path.write_text(STUBBORN, encoding="utf-8")
    p = subprocess.Popen(GRADCLI + ["eval", f"{path}:f", "--x", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO, env=ENV)
    try:
        time.sleep(1.5)  # past start-up, in the loop
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert out == "" and "Traceback" not in err


# -- 19: options read as inputs ---------------------------------------------------------
@pytest.mark.parametrize("argv, message, hint", [
    (["eval", "x*2", "--x", "1", "--formt", "json"],
     "'gradcli eval' has no option --formt", "hint: did you mean --format?"),
    (["eval", "x*2", "--x", "1", "--formt"],
     "'gradcli eval' has no option --formt", "hint: did you mean --format?"),
    (["hessian", "x*x", "--x", "1", "--expect-value", "2"],
     "--expect-value is not an option of 'gradcli hessian'",
     "hint: --expect-value is an option of gradcli eval"),
    (["jacobian", "x*x", "--x", "1", "--points", "f.csv"],
     "--points is not an option of 'gradcli jacobian'",
     "hint: --points is an option of gradcli check, gradcli eval"),
    (["graph", "x*x", "--x", "1", "--no-grad"],
     "--no-grad is not an option of 'gradcli graph'",
     "hint: --no-grad is an option of gradcli eval"),
    (["graph", "x*x", "--no-grad", "--x", "1"],
     "--no-grad is not an option of 'gradcli graph'",
     "hint: --no-grad is an option of gradcli eval"),
    (["hessian", "x*x", "--x", "1", "--grad-output", "ones"],
     "--grad-output is not an option of 'gradcli hessian'",
     "hint: --grad-output is an option of gradcli check, gradcli eval, gradcli graph"),
])
def test_an_option_mistaken_for_an_input_is_named(argv, message, hint):
    code, out, err = run(*argv)
    assert code == 2, err
    assert out == ""
    assert err.splitlines() == [f"error: {message}", hint]


def test_an_input_named_like_another_commands_option_is_still_an_input(tmp_path):
    code, out, err = run("jacobian", "points*full", "--points", "3", "--full", "2")
    assert code == 0, err
    assert out.splitlines() == ["value 6", "jacobian.points 2", "jacobian.full 3"]
    path = tmp_path / "m.py"
    path.write_text("def f(points):\n    return points * points\n", encoding="utf-8")
    code, out, err = run("hessian", str(path), "--points", "3")
    assert code == 0, err
    assert "hessian.points.points 2" in out.splitlines()


def test_an_unused_input_far_from_any_option_keeps_its_message():
    code, out, err = run("eval", "x*2", "--x", "1", "--zzz", "3")
    assert code == 2
    assert one_error(err) == "error: input 'zzz' is not used by the expression"


# -- 20: input names normalised as the parser normalises names ------------------------
@pytest.mark.parametrize("expr, argv", [
    ("ｘ*2", ["--ｘ", "1.5"]),    # fullwidth in both
    ("x*2", ["--ｘ", "1.5"]),     # fullwidth input, ASCII expression
    ("ｘ*2", ["--x", "1.5"]),     # the other way round
    ("ｘ*2", ["--var", "ｘ=1.5"]),
    ("ｘ*2", ["--ｘ=1.5"]),
])
def test_input_names_are_nfkc_normalised(expr, argv):
    code, out, err = run("eval", expr, *argv)
    assert code == 0, err
    assert out == "value 3\ngrad.x 2\n"


def test_one_name_in_two_forms_is_given_twice():
    code, out, err = run("eval", "x*2", "--x", "1", "--ｘ", "2")
    assert code == 2
    assert one_error(err) == "error: input 'x' is given twice"


def test_a_function_files_parameter_takes_the_normalised_name(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f(ｘ):\n    return ｘ * 3\n", encoding="utf-8")
    code, out, err = run("eval", str(path), "--ｘ", "2")
    assert code == 0, err
    assert out == "value 6\ngrad.x 3\n"


# -- 25: shell completion ---------------------------------------------------------------
def _complete(shell: str, words: str, cword: str) -> list[str]:
    env = {**ENV, "_GRADCLI_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
           "COMP_CWORD": cword}
    p = proc([], env=env)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    return p.stdout.splitlines()


@pytest.mark.parametrize("shell, marker", [
    ("bash", "complete -o nosort -F _gradcli_completion gradcli"),
    ("zsh", "compdef _gradcli_completion gradcli"),
    ("fish", "complete --no-files --command gradcli"),
])
def test_the_completion_script_generates(shell, marker):
    p = proc([], env={**ENV, "_GRADCLI_COMPLETE": f"{shell}_source"})
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert marker in p.stdout
    assert f"_GRADCLI_COMPLETE={shell}_complete" in p.stdout


COMMANDS = ["check", "diff", "eval", "graph", "hessian", "jacobian", "ops", "plot", "taylor"]


def test_bash_completes_commands_and_options():
    assert _complete("bash", "gradcli ", "1") == [f"plain,{c}" for c in COMMANDS]
    assert _complete("bash", "gradcli eval x --fo", "3") == ["plain,--format"]


def test_zsh_completes_commands_and_options():
    out = _complete("zsh", "gradcli ", "1")
    assert [out[i + 1] for i in range(0, len(out), 3)] == COMMANDS
    out = _complete("zsh", "gradcli hessian x --chec", "3")
    assert [out[i + 1] for i in range(0, len(out), 3)] == ["--check", "--check-timeout"]


def test_fish_completes_commands_and_options():
    out = _complete("fish", "gradcli ", "")
    assert [line.split("\t")[0] for line in out] == [f"plain,{c}" for c in COMMANDS]
    out = _complete("fish", "gradcli graph x --fu", "--fu")
    assert [line.split("\t")[0] for line in out] == ["plain,--full"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_readme_line_works_in_bash():
    # eval "$(_GRADCLI_COMPLETE=bash_source gradcli)", then what bash does on TAB.
    script = textwrap.dedent("""
        eval "$(_GRADCLI_COMPLETE=bash_source gradcli)"
        complete -p gradcli
        COMP_WORDS=(gradcli ja); COMP_CWORD=1
        _gradcli_completion gradcli
        printf '%s\\n' "${COMPREPLY[@]}"
        COMPREPLY=()
        COMP_WORDS=(gradcli eval x --che); COMP_CWORD=3
        _gradcli_completion gradcli
        printf '%s\\n' "${COMPREPLY[@]}"
    """)
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                       timeout=120, cwd=REPO, env=ENV)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "complete -o nosort -F _gradcli_completion gradcli",
        "jacobian", "--check", "--check-timeout"]
    assert "error" not in p.stderr


def test_a_bare_gradcli_is_still_a_usage_error():
    p = proc([])
    assert p.returncode == 2
    assert one_error(p.stderr) == "error: no command given"


# -- 27: the examples of --help run --------------------------------------------------
def _help_examples() -> list[str]:
    lines = []
    for command in ["", *COMMANDS]:
        code, out, err = run(*([command] if command else []), "--help")
        assert code == 0, err
        lines += [ln.strip() for ln in out.splitlines()
                  if ln.strip().startswith("gradcli ") and "|" not in ln]
    return lines


def test_help_examples_exist():
    assert "gradcli eval examples/model.py:f --a 0.5" in _help_examples()


@pytest.mark.parametrize("example", _help_examples())
def test_every_help_example_runs_from_the_repository_root(example, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, err = run(*shlex.split(example)[1:])
    assert code == 0, f"{example}: {err}"
    assert out
