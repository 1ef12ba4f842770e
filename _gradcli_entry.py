"""The ``gradcli`` command's entry point, outside the package on purpose.

Importing ``gradcli`` loads numpy, a few hundred milliseconds in which a Ctrl-C
would print a KeyboardInterrupt traceback. This module imports nothing heavy:
it makes SIGINT exit 130 quietly first, then loads the command line, whose
``main`` handles a Ctrl-C from there on (also exit 130).
"""

import os
import signal
import sys


def _interrupted(signum, frame):  # noqa: ARG001
    try:
        os.write(2, b"\n")  # after the terminal's ^C, as click does
    except OSError:  # stderr closed
        pass
    os._exit(130)


def main() -> None:
    try:
        signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the main thread: leave signals alone
        pass
    from gradcli.cli import main as run

    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run()
    except KeyboardInterrupt:  # between the two lines above and run()'s own handling
        _interrupted(signal.SIGINT, None)


if __name__ == "__main__":
    sys.exit(main())
