"""The command line: thin click commands over the library.

``main`` is the one place that turns errors into output: it prints ``error: ...``
(and at most two ``hint: ...`` lines) on stderr, nothing on stdout, and exits with
the code of the error's class; a traceback only with ``--debug``. Commands live by
kind (evaluate, derivatives, points, misc), their shared options in ``options``;
every answer but graph's (graphview's formats) is written by ``render.emit``.
"""

from __future__ import annotations

import errno
import io
import os
import sys
import traceback

import click

from .. import __version__
from ..errors import GradcliError, OutputError, UsageError
from ..render import say
from . import derivatives, evaluate, formula, misc
from . import plot as plot_cli


class _Unwritten(Exception):
    """Carries an OSError past click, which takes EPIPE for its own and exits 1."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _Group(click.Group):
    # --help, --version and every command write inside these two.
    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except OSError as exc:
            raise _Unwritten(exc) from exc

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OSError as exc:
            raise _Unwritten(exc) from exc

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            _refuse_repeats(command, name, ctx, rest)
        return name, command, rest


def _refuse_repeats(command: click.Command, name, parent, args) -> None:
    """``--json`` with another ``--format`` is a usage error, and so is a
    single-valued option given twice: click keeps the
    last silently, which would drop an assertion (``--expect-value 7
    --expect-value 5`` checked only 5) or a tolerance, or pick one of two
    output formats. Flags and repeatable options may repeat."""
    ctx = command.context_class(command, info_name=name, parent=parent,
                                resilient_parsing=True, **command.context_settings)
    try:
        values, _, order = command.make_parser(ctx).parse_args(args=list(args))
    except click.ClickException:
        return  # the real parse reports it
    fmt = values.get("format")
    if values.get("json") and isinstance(fmt, str) and fmt != "json":
        raise UsageError(f"--json and --format {fmt} ask for two output formats; "
                         "give one")
    seen: set[str] = set()
    for param in order:
        if (not isinstance(param, click.Option) or param.multiple or param.count
                or param.is_flag or param.name is None):
            continue
        if param.name in seen:
            opt = max(param.opts, key=len)
            raise UsageError(f"{opt} is given more than once (only one value "
                             "would count); give it once")
        seen.add(param.name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="gradcli")
def cli() -> None:
    """gradcli: values, gradients and their cross-checks, from the command line.

    \b
      gradcli eval "2*dot(x,x)" --x 0,1,2,3
      gradcli eval examples/model.py:f --a 0.4857
      gradcli ops

    Run 'gradcli COMMAND --help' for the options of a command.
    """


for command in (evaluate.eval_command, evaluate.check_command, derivatives.jacobian_command,
                derivatives.hessian_command, misc.graph_command, misc.ops_command):
    cli.add_command(command)
for command in (plot_cli.plot_command, formula.diff_command, formula.taylor_command):
    cli.add_command(command)


def _takes_value(token: str, flags: set[str]) -> bool:
    """``--NAME`` without ``=``: the next token is its value, unless NAME is a flag."""
    return token.startswith("--") and "=" not in token and token not in flags


def _flags(args: list[str]) -> set[str]:
    """The options of the command ``args`` names that take no value (``--hessian``
    is one of diff's, and takes a file in check)."""
    command = cli.commands.get(args[0]) if args else None
    params = [*cli.params, *(command.params if command is not None else ())]
    return {"--help", *(o for p in params if getattr(p, "is_flag", False)
                        for o in (*p.opts, *p.secondary_opts))}


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, map every error to its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    # -h is --help (subcommands declare only --help; see options.EXTRA), unless it
    # is the value of an input: --h-like names take the next token.
    flags = _flags(args)
    args = ["--help" if a == "-h" and not (i and _takes_value(args[i - 1], flags)) else a
            for i, a in enumerate(args)]
    debug = "--debug" in args
    _guard_stdout()
    _chunk_stdout()
    # A bare `gradcli` (click's own answer differs between versions); a shell's
    # completion request has no arguments either, and is click's to answer.
    if not args and f"_{PROG.upper()}_COMPLETE" not in os.environ:
        _say_safely("error", "no command given")
        _say_safely("hint", f"commands: {', '.join(sorted(cli.commands))}; see 'gradcli --help'")
        sys.exit(UsageError.exit_code)
    try:
        try:
            code = cli.main(args=args, prog_name=PROG, standalone_mode=False)
        except _Unwritten as exc:
            raise exc.error from None
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:  # click's own usage errors
        _say_safely("error", exc.format_message())
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            _say_safely("hint", f"see '{ctx.command_path} --help'")
        code = UsageError.exit_code
    except GradcliError as exc:
        if debug:
            traceback.print_exc()
        _say_safely("error", str(exc))
        if exc.hint:
            for line in str(exc.hint).split("\n")[:2]:
                _say_safely("hint", line)
        code = exc.exit_code
    except click.exceptions.Abort:
        code = 130
    except KeyboardInterrupt:
        click.echo("", err=True)
        code = 130
    except OSError as exc:
        if not _is_output_error(exc):
            code = _internal(exc, debug)
        else:
            # stdout cannot take the answer: nothing more will be written to it
            # (not even Python's last flush), and no traceback.
            _discard_stdout()
            if exc.errno == errno.EPIPE:
                # A reader like `head` closed the pipe: stop quietly, as shell
                # tools do (128 + SIGPIPE, what the shell reports for them).
                code = EXIT_PIPE
            else:
                if debug:
                    traceback.print_exc()
                why = ("stdout is closed" if exc.errno == errno.EBADF
                       else exc.strerror or str(exc))
                _say_safely("error", f"cannot write the output: {why}")
                code = OutputError.exit_code
    except Exception as exc:
        code = _internal(exc, debug)
    sys.exit(code or 0)


PROG = "gradcli"
EXIT_PIPE = 141  # 128 + SIGPIPE


# Writing stdout (or stderr) fails with these; gradcli writes no other file, and
# an OSError from opening or reading one has a filename and is caught where it is
# read.
_OUTPUT_ERRNOS = {errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO,
                  errno.EBADF}


def _is_output_error(exc: OSError) -> bool:
    return exc.errno in _OUTPUT_ERRNOS and exc.filename is None


def _discard_stdout() -> None:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a file (tests: StringIO)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _guard_stdout() -> None:
    """Started with stdout closed (``>&-``), Python has no sys.stdout and
    writing is silently skipped. Put a descriptor there that refuses writes
    (EBADF, exit 74), so the answer is not lost with exit 0, and no file opened
    later lands on descriptor 1."""
    if sys.stdout is not None:
        return
    try:
        os.fstat(1)
        return  # a descriptor Python chose not to use: leave it alone
    except OSError:
        pass
    fd = os.open(os.devnull, os.O_RDONLY)
    if fd != 1:
        os.dup2(fd, 1)
        os.close(fd)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")


class _Chunked:
    """stdout written (and flushed) 64 KiB at a time: one large write into a
    pipe can report success although its reader has gone (seen on some
    kernels), and the answer's end would then go nowhere with exit 0; a write
    after the reader closed fails (EPIPE: exit 141, as ``yes | head`` does)."""

    CHUNK = 1 << 16

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if len(text) <= self.CHUNK:
            return self._stream.write(text)
        for i in range(0, len(text), self.CHUNK):
            self._stream.write(text[i:i + self.CHUNK])
            self._stream.flush()
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _chunk_stdout() -> None:
    """Put ``_Chunked`` in front of stdout when it is a pipe or a file (not a
    terminal, nor a test's StringIO)."""
    out = sys.stdout
    try:
        if out is None or isinstance(out, _Chunked) or out.isatty():
            return
        out.fileno()
    except (AttributeError, ValueError, OSError):
        return
    sys.stdout = _Chunked(out)


def _say_safely(kind: str, text: str) -> None:
    try:
        say(kind, text)
    except OSError:  # stderr is gone too: the exit code says it
        pass


def _internal(exc: BaseException, debug: bool) -> int:
    """A bug in gradcli."""
    if debug:
        traceback.print_exc()
    _say_safely("error", f"internal error: {type(exc).__name__}: {exc}")
    _say_safely("hint", "this is a bug in gradcli; rerun with --debug for the traceback")
    return GradcliError.exit_code
