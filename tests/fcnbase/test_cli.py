"""The one error path: exit codes, one line on stderr, interrupts and closed streams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from fcnbase.cli import (
    CliError,
    Parser,
    UsageError,
    deferred_interrupts,
    float_arg,
    int_arg,
    run_cli,
)


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """SIGINT as Python sets it up under a terminal: a job that a non-interactive shell starts
    in the background inherits SIGINT ignored, and these tests are about Ctrl-C."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _raiser(exc: BaseException):
    def main(argv):
        raise exc

    return main


@pytest.mark.parametrize(
    ("exc", "code", "text"),
    [
        (UsageError("--train: bad"), 2, "prog: error: --train: bad"),
        (CliError("data.npz: corrupt"), 1, "prog: error: data.npz: corrupt"),
        (FileNotFoundError(2, "No such file or directory", "x.pt"), 1, "x.pt"),
        (ValueError("two\nlines   here"), 1, "prog: error: two lines here"),
        (OverflowError("int too large"), 1, "int too large"),
        (MemoryError(), 1, "out of memory"),
        (KeyboardInterrupt(), 130, "prog: interrupted"),
        (KeyboardInterrupt("checkpoint saved to a.pt"), 130, "interrupted; checkpoint saved"),
    ],
)
def test_each_failure_is_one_line_and_its_exit_code(capsys, exc, code, text) -> None:
    assert run_cli("prog", _raiser(exc), []) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err and "Traceback" not in err


def test_a_bug_is_not_hidden() -> None:
    with pytest.raises(KeyError):
        run_cli("prog", _raiser(KeyError("x")), [])


def test_parser_usage_error_is_exit_2_in_one_line(capsys) -> None:
    def main(argv):
        p = Parser(prog="prog")
        p.add_argument("--n", type=int_arg(0, 10))
        p.add_argument("--s", type=float_arg(0))
        p.parse_args(argv)
        return 0

    for argv in (["--n", "11"], ["--n", "1e999"], ["--s", "nan"], ["--s", "-1"], ["--bogus"]):
        assert run_cli("prog", main, argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("prog: error: ") and err.count("\n") == 1, argv
    assert run_cli("prog", main, ["--n", "10", "--s", "0.5"]) == 0
    assert run_cli("prog", main, ["--help"]) == 0


def test_huge_integer_is_refused_at_parse_time() -> None:
    parse = int_arg(0, 2**31)
    with pytest.raises(Exception, match="outside"):
        parse("1000000000000000000000000000000")


@pytest.mark.usefixtures("ctrl_c")
def test_deferred_interrupt_waits_for_the_block() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("saved")  # still runs: the signal is held
    assert done == ["saved"]
    with deferred_interrupts(reraise=False):
        os.kill(os.getpid(), signal.SIGINT)
    # handlers are back: a plain SIGINT interrupts again
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


def _child(body: str, *, stderr=subprocess.PIPE, **kw) -> subprocess.CompletedProcess:
    code = "import sys\nfrom fcnbase.cli import *\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], stderr=stderr, capture_output=False,
                          stdout=subprocess.PIPE, text=True, timeout=60, **kw)  # fmt: skip


def test_closed_stderr_gives_the_exit_code_without_noise() -> None:
    r = _child(
        """
        def main(argv):
            raise CliError("x.npz: broken")
        sys.exit(run_cli("prog", main, []))
        """,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        preexec_fn=lambda: os.close(2),
    )
    assert r.returncode == 1
    assert r.stdout == ""  # the error line must not land on stdout instead


def test_sigterm_takes_the_interrupt_path() -> None:
    r = _child(
        """
        import os, signal
        def main(argv):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.5)
            return 0
        sys.exit(run_cli("prog", main, []))
        """
    )
    assert r.returncode == 130 and r.stderr.strip() == "prog: interrupted"


def test_a_ctrl_c_after_the_interrupt_report_keeps_exit_130() -> None:
    r = _child(
        """
        import os, signal
        def main(argv):
            raise KeyboardInterrupt("checkpoint saved to a.pt")
        status = run_cli("prog", main)  # argv None: a real command line
        os.kill(os.getpid(), signal.SIGINT)  # the impatient second Ctrl-C, while exiting
        sys.exit(status)
        """
    )
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip() == "prog: interrupted; checkpoint saved to a.pt"


@pytest.mark.usefixtures("ctrl_c")
def test_in_process_callers_keep_their_ctrl_c() -> None:
    assert run_cli("prog", _raiser(KeyboardInterrupt()), []) == 130
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


def test_help_shows_the_defaults_worth_knowing() -> None:
    p = Parser(prog="prog", epilog="example:\n  prog --seed 1")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", help="output folder")  # default None: nothing to show
    p.add_argument("--force", action="store_true", help="replace outputs")
    p.add_argument("--train", type=int, default=5000, help="images (default 5000)")
    text = p.format_help()
    assert "random seed (default: 0)" in text
    assert "None" not in text and "False" not in text
    assert text.count("5000") == 1  # not repeated when the help already names it
    assert "example:\n  prog --seed 1" in text  # the epilog keeps its layout
