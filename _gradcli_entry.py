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


def _interrupt(signum, frame):  # noqa: ARG001
    """From the command line on: KeyboardInterrupt, which ``main`` answers with
    exit 130 after its own cleanup. Python swallows an exception raised inside a
    ``__del__`` or a weakref callback (it only reports it), and a Ctrl-C can land
    there: a timer then exits 130 a second later all the same."""
    import threading

    timer = threading.Timer(1.0, _interrupted, (signum, None))
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def main() -> None:
    try:
        signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the main thread: leave signals alone
        pass
    from gradcli.cli import main as run

    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        run()
    except KeyboardInterrupt:  # between the two lines above and run()'s own handling
        _interrupted(signal.SIGINT, None)


if __name__ == "__main__":
    sys.exit(main())
