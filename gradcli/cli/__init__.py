"""The command line: thin click commands over the library.

``main`` is the one place that turns errors into output: it prints ``error: ...``
(and at most two ``hint: ...`` lines) on stderr, nothing on stdout, and exits with
the code of the error's class; a traceback only with ``--debug``. Commands live by
kind (evaluate, derivatives, points, misc), their shared options in ``options``;
every answer but graph's (graphview's formats) is written by ``render.emit``.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from .. import __version__
from ..errors import GradcliError, UsageError
from ..render import say
from . import derivatives, evaluate, misc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="gradcli")
def cli() -> None:
    """gradcli: values, gradients and their cross-checks, from the command line.

    \b
      gradcli eval "2*dot(x,x)" --x 0,1,2,3
      gradcli eval model.py:f --a 0.4857
      gradcli ops

    Run 'gradcli COMMAND --help' for the options of a command.
    """


for command in (evaluate.eval_command, evaluate.check_command, derivatives.jacobian_command,
                derivatives.hessian_command, misc.graph_command, misc.ops_command):
    cli.add_command(command)


def _takes_value(token: str) -> bool:
    """``--NAME`` without ``=``: the next token is its value."""
    return token.startswith("--") and "=" not in token and token not in _FLAGS


_FLAGS = {"--json", "--strict", "--debug", "--no-grad", "--check", "--help", "--version"}


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, map every error to its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    # -h is --help (subcommands declare only --help; see options.EXTRA), unless it
    # is the value of an input: --h-like names take the next token.
    args = ["--help" if a == "-h" and not (i and _takes_value(args[i - 1])) else a
            for i, a in enumerate(args)]
    debug = "--debug" in args
    if not args:  # a bare `gradcli` (click's own answer differs between versions)
        say("error", "no command given")
        say("hint", f"commands: {', '.join(sorted(cli.commands))}; see 'gradcli --help'")
        sys.exit(UsageError.exit_code)
    try:
        code = cli.main(args=args, prog_name="gradcli", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:  # click's own usage errors
        say("error", exc.format_message())
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            say("hint", f"see '{ctx.command_path} --help'")
        code = UsageError.exit_code
    except GradcliError as exc:
        if debug:
            traceback.print_exc()
        say("error", str(exc))
        if exc.hint:
            for line in str(exc.hint).split("\n")[:2]:
                say("hint", line)
        code = exc.exit_code
    except click.exceptions.Abort:
        code = 130
    except KeyboardInterrupt:
        click.echo("", err=True)
        code = 130
    except BrokenPipeError:
        # A reader like `head` closed the pipe: stop quietly, as shell tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141
    except Exception as exc:  # a bug in gradcli
        if debug:
            traceback.print_exc()
        say("error", f"internal error: {type(exc).__name__}: {exc}")
        say("hint", "this is a bug in gradcli; rerun with --debug for the traceback")
        code = GradcliError.exit_code
    sys.exit(code or 0)
