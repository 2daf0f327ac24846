"""The one error path of every command (``m2nist-gen``, ``tinyfcn-train``, ``fullfcn-*``).

A command-line tool has three ways to end besides success, and users script against them:

* exit **2**, a *usage error*: the command line itself is wrong (bad option, impossible
  combination). Raised as :class:`UsageError` (a ``ValueError``, so the Python API raises
  the same thing for the same mistake);
* exit **1**, a *runtime error*: the command line was fine but the world was not (a missing
  or corrupt file, a full disk, an output that already exists). Raised as :class:`CliError`
  or as the ``OSError`` / ``ValueError`` / ``RuntimeError`` that a library gave;
* exit **130** on Ctrl-C or SIGTERM, after the command has saved what can be saved.

Whatever the cause, the user sees exactly one line, ``prog: error: <what, naming the file>``,
never a traceback: a traceback says "bug", and bad input is not a bug. Tracebacks remain
for what really is one (a ``KeyError`` or ``TypeError`` escaping is a defect to fix, not to
hide), so :func:`run_cli` deliberately does not catch everything.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, NoReturn

EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPT = 1, 2, 130


class UsageError(ValueError):
    """The command line (or the same arguments given to the Python API) can never work."""


class CliError(RuntimeError):
    """A runtime problem the user can fix: a file, a folder, a resource. Exit status 1."""


#: Exceptions that mean "bad input or environment", reported as one line with exit 1.
#: OverflowError and MemoryError come from absurd sizes that slipped past a check.
RUNTIME_ERRORS = (CliError, OSError, ValueError, RuntimeError, OverflowError, MemoryError)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` that shows every option's default and keeps the epilog's examples as laid out.

    argparse's ``ArgumentDefaultsHelpFormatter`` also prints ``(default: None)`` and
    ``(default: False)``, which say nothing, and repeats a default the help text already
    names; this one shows only the defaults a user needs to know.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default  # identity, not ==: a default of 0 is worth showing
        silent = default is None or default is False or default is argparse.SUPPRESS
        silent = silent or not action.option_strings
        if silent or "default" in text:  # also "%(default)s": the text names it
            return text
        return f"{text} (default: %(default)s)".lstrip()


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are a :class:`UsageError`, reported by :func:`run_cli`
    as one line (argparse's own prints the whole usage block first), and whose ``--help``
    shows the defaults (:class:`HelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def int_arg(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a decimal integer in ``[low, high]``.

    Bounds are part of the type, so ``--train 10**30`` is a usage error at parse time, not
    an ``OverflowError`` after minutes of work.
    """

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        return _in_range(text, value, low, high)

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def float_arg(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    """An argparse type: a *finite* number in ``[low, high]`` (``nan`` and ``inf`` refused:
    a NaN budget compares false with everything and silently disables the checks using it)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        return _in_range(text, value, low, high)

    parse.__name__ = "number"
    return parse


def _in_range(text: str, value: Any, low: float | None, high: float | None) -> Any:
    """``value`` (parsed from ``text``) when it lies in ``[low, high]``; else argparse's error."""
    if (low is None or value >= low) and (high is None or value <= high):
        return value
    bound = f">= {low}" if high is None else f"<= {high}" if low is None else f"{low}..{high}"
    raise argparse.ArgumentTypeError(f"{text} is outside {bound}")


def one_line(exc: BaseException) -> str:
    """The exception's message folded onto one line (library messages often span several)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return f"out of memory{': ' + text if text else ''}"
    return text or type(exc).__name__


def _say(text: str) -> None:
    """Print to stderr; a closed or broken stderr must not turn an error into a traceback."""
    if sys.stderr is None:  # started with stderr closed (2>&-): print() would pick stdout
        return
    with suppress(OSError, ValueError, AttributeError):
        print(text, file=sys.stderr, flush=True)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, torchrun, a batch scheduler) takes the Ctrl-C path: save, exit 130.

    An inherited *ignore* is respected, as Unix tools do: a job started with SIGTERM
    ignored asked not to be stopped by it.
    """
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # KeyboardInterrupt
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred_interrupts(*, reraise: bool = True) -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM while the block runs, then act on them.

    Wrap what must finish once started -- saving a checkpoint after a first Ctrl-C -- so
    that an impatient second Ctrl-C waits for the save instead of abandoning it (the file
    itself is atomic either way; this keeps the *work*). A held signal is raised as
    ``KeyboardInterrupt`` when the block ends (``reraise=False``: dropped, for a block that
    already handles one). Outside the main thread, where Python delivers no signals, it
    does nothing.
    """
    if not _in_main_thread():
        yield
        return
    received: list[int] = []
    watched = [
        s
        for s in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(s) not in (signal.SIG_IGN, signal.SIG_DFL, None)
    ]
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in watched}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received and reraise:
        raise KeyboardInterrupt


def run_cli(
    prog: str,
    main: Callable[[Sequence[str] | None], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Run a command's ``main(argv)`` and turn every expected failure into its exit status.

    ``main`` raises; it never prints its own errors. A ``KeyboardInterrupt`` whose message
    is set (``raise KeyboardInterrupt("checkpoint saved to X")``) has it appended to the
    ``interrupted`` line, so the user learns what survived.
    """
    with _sigterm_as_interrupt():
        try:
            status = main(argv)
        except SystemExit as done:  # --help / --version (0)
            status = done.code if isinstance(done.code, int) else EXIT_USAGE
        except UsageError as exc:
            _say(f"{prog}: error: {one_line(exc)}")
            status = EXIT_USAGE
        except KeyboardInterrupt as exc:
            # A further Ctrl-C must not interrupt the report...
            with deferred_interrupts(reraise=False):
                saved = one_line(exc) if str(exc) else ""
                _say(f"{prog}: interrupted{'; ' + saved if saved else ''}")
            status = EXIT_INTERRUPT
        except RUNTIME_ERRORS as exc:
            _say(f"{prog}: error: {one_line(exc)}")
            status = EXIT_RUNTIME
    if status == EXIT_INTERRUPT and argv is None and _in_main_thread():
        # ...nor kill the process while it winds down (interpreter and torch teardown take
        # a moment), which would replace exit 130 with death by SIGINT. Only for a real
        # command line (argv None: sys.argv); an in-process caller keeps its own Ctrl-C.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
    _flush_stdout()
    return status


def _flush_stdout() -> None:
    """Flush stdout now; if its reader is gone (``| head``), point it at /dev/null so the
    interpreter's own flush at exit prints no "Exception ignored" message."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        with suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
