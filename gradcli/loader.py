"""``file.py[:name]`` -> a Python function (trusted user code, run like a script)."""

from __future__ import annotations

import contextlib
import inspect
import os
import runpy
import sys
import traceback
from dataclasses import dataclass
from typing import Callable

from .engine import graph
from .errors import EvaluationError, UsageError

_RUN_NAME = "__gradcli_target__"


@dataclass(frozen=True)
class Loaded:
    path: str
    name: str
    func: Callable
    required: tuple[str, ...]  # parameters without defaults: the inputs
    optional: tuple[str, ...]  # parameters with defaults: optional constants
    params: tuple[str, ...] = ()  # every parameter, in the signature's order


def is_file_target(target: str) -> bool:
    """``model.py`` and ``model.py:f`` name function files; anything else is an expression."""
    path = target.rsplit(":", 1)[0] if ":" in target else target
    return path.endswith(".py")


def user_frame(exc: BaseException, path: str) -> str:
    """``model.py, line 7, in f`` for the innermost frame of ``exc`` in the file."""
    real = os.path.realpath(path)
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.realpath(frame.filename) == real:
            where = f"{os.path.basename(path)}, line {frame.lineno}, in {frame.name}"
    return where or os.path.basename(path)


def describe(exc: BaseException) -> str:
    """``ValueError: bad shape``, or the bare name when there is no message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def user_code():
    """While a function file runs: what it prints goes to stderr, so that stdout
    carries only gradcli's result (JSON, plain lines) whatever the user's code
    prints: ``print`` and ``sys.stdout``, and below Python, file descriptor 1
    (``os.system``, a subprocess, ``os.write(1, ...)``)."""
    saved = _point_fd1_at_stderr()
    mode = graph.MODE
    was, mode.file_code = mode.file_code, True
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        mode.file_code = was
        if saved is not None:
            try:
                os.dup2(saved, 1)
            finally:
                os.close(saved)


def _point_fd1_at_stderr() -> int | None:
    """Descriptor 1 made a copy of 2; the old 1, to restore (None: nothing to do,
    as when there is no descriptor 1 or 2, or they are the same file)."""
    try:
        sys.stdout.flush()  # what gradcli wrote before goes where it was meant to
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(1)
    except OSError:
        return None
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(saved)
        return None
    return saved


def load(target: str) -> Loaded:
    path, _, name = target.partition(":") if target.count(":") == 1 else (target, "", "")
    if not os.path.isfile(path):
        why = "no such file" if not os.path.exists(path) else "not a file"
        raise UsageError(f"function file {path!r}: {why}")
    try:
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
        compile(source, path, "exec")
    except SyntaxError as exc:
        # (a null byte, say, has no line: then none is named)
        at = f", line {exc.lineno}" if exc.lineno is not None else ""
        raise UsageError(
            f"{os.path.basename(path)}{at}: syntax error: {exc.msg}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"function file {path!r}: cannot read: {exc}") from exc
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # so the file can import its neighbours
    try:
        with user_code():
            namespace = runpy.run_path(path, run_name=_RUN_NAME)
    except SystemExit as exc:
        raise EvaluationError(f"{os.path.basename(path)} called exit({exc.code})") from exc
    except Exception as exc:
        raise EvaluationError(
            f"{user_frame(exc, path)}: {describe(exc)}"
        ) from exc
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    defined = sorted(
        n for n, v in namespace.items()
        if inspect.isfunction(v) and v.__module__ == _RUN_NAME
    )
    if name:
        func = namespace.get(name)
        if not callable(func):
            raise UsageError(
                f"{os.path.basename(path)} defines no function {name!r}",
                hint=f"functions defined there: {', '.join(defined) or 'none'}",
            )
    elif len(defined) == 1:
        name = defined[0]
        func = namespace[name]
    else:
        raise UsageError(
            f"{os.path.basename(path)} defines {len(defined) or 'no'} functions; "
            "name one as FILE.py:NAME",
            hint=f"functions defined there: {', '.join(defined)}" if defined else None,
        )
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name}: cannot read its parameters: {exc}") from exc
    required, optional = [], []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise UsageError(f"{name}: parameters like *{p.name} cannot be inputs; name each one")
        if p.kind is p.POSITIONAL_ONLY:
            raise UsageError(f"{name}: positional-only parameter {p.name!r} cannot be an input")
        (required if p.default is p.empty else optional).append(p.name)
    return Loaded(path, name, func, tuple(required), tuple(optional),
                  tuple(sig.parameters))
