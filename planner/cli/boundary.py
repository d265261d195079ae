"""The one error boundary of the CLI: every exception that escapes a command becomes one line.

Exit codes: 0 ok; 1 nothing feasible; 2 bad input, an output path that cannot be written, or a
missing optional dependency; 3 an internal error (a bug: the line names the command and the
exception; ``--debug`` or ``PARAPLAN_DEBUG=1`` prints the full traceback); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import traceback
import warnings

from ..errors import ParaplanError, ParaplanWarning, format_validation_error
from . import debug as debug_state
from .app import app, err_console
from .debug import debug_enabled
from .lazy import COMMANDS

EXIT_OK, EXIT_INFEASIBLE, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: Optional dependencies and the extra that installs them.
EXTRAS = {"matplotlib": "plot", "torch": "validate"}


def _exception_classes(name: str) -> tuple[type, ...]:
    """``name`` from typer's vendored click and from click where it is installed."""
    found: list[type] = []
    for module in ("typer._click.exceptions", "click.exceptions", "typer.exceptions"):
        if module.startswith("click") and "click" not in sys.modules:
            continue  # never import click just to catch its errors
        try:
            cls = getattr(__import__(module, fromlist=[name]), name, None)
        except ImportError:  # pragma: no cover - depends on the installed typer
            cls = None
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


def print_error(message: str) -> None:
    """One line on stderr; the message is plain text (no rich markup interpretation)."""
    from rich.text import Text

    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def command_name(argv: list[str]) -> str:
    """``paraplan validate run`` from the arguments: the leading words that are not options."""
    words = []
    for a in (a for a in argv if a != "--debug"):
        if a.startswith("-") or (words and len(words) >= 2) or (not words and a not in COMMANDS):
            break
        words.append(a)
    return " ".join(["paraplan", *words])


def describe(exc: BaseException, argv: list[str]) -> tuple[str, int]:
    """(one line, exit code) for an exception that escaped a command."""
    if isinstance(exc, ParaplanError):
        return str(exc), exc.exit_code
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        return format_validation_error(exc), EXIT_BAD_INPUT
    if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] in EXTRAS:
        extra = EXTRAS[exc.name.split(".")[0]]
        return f"{command_name(argv)} needs paraplan[{extra}]: pip install 'paraplan[{extra}]'", EXIT_BAD_INPUT
    if isinstance(exc, OSError) and exc.filename is not None:
        what = exc.strerror or type(exc).__name__
        return f"{command_name(argv)}: {exc.filename}: {what}", EXIT_BAD_INPUT
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    hint = "" if debug_enabled() else " (an internal error; rerun with --debug for the traceback)"
    return f"{command_name(argv)} failed: {type(exc).__name__}{': ' + text if text else ''}{hint}", EXIT_INTERNAL


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwound like Ctrl-C (jobs stopped, nothing half-written), exit 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


#: The SIGTERM / SIGHUP that ended this command, if one did (typer may hand back only an exit code).
_signalled: list[int] = []


def _on_signal(signum, _frame) -> None:
    _signalled.append(signum)
    raise Terminated(signum)


def _interrupted() -> None:
    """Print the interrupt line and exit: 128 + the signal for SIGTERM / SIGHUP, 130 for Ctrl-C."""
    if _signalled:
        signum = _signalled[-1]
        print_error(f"interrupted ({signal.Signals(signum).name})")
        sys.exit(128 + signum)
    print_error("interrupted")
    sys.exit(EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI behind the error boundary; exits with the codes in the module docstring.
    ``argv`` None: run as the process (the console script, ``python -m planner``), which ends with
    the command, and where SIGTERM and SIGHUP unwind the command like Ctrl-C (a validation job's
    process group is stopped, temporary files removed); in-process callers (the tests) pass their
    arguments."""
    if argv is None:
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), _on_signal)
    try:
        return _run(argv)
    finally:
        if argv is None:
            _spare_exit_collection()


def print_warning(message: str) -> None:
    """One ``warning:`` line on stderr (plain text)."""
    from rich.text import Text

    err_console.print(Text.assemble(("warning: ", "bold yellow"), message), highlight=False, soft_wrap=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning for the CLI: a library ParaplanWarning becomes one ``warning:`` line."""
    if issubclass(category, ParaplanWarning):
        print_warning(str(message))
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def usage_line(exc) -> str:
    """One line from a typer/click usage error: ``--tp: 'abc' is not a valid integer (paraplan estimate --help)``."""
    text = " ".join(exc.format_message().split())
    match = re.match(r"Invalid value for '([^']+)': (.*)", text)
    if match:
        text = f"{match.group(1).split(' / ')[0]}: {match.group(2)}"
    match = re.match(r"Missing option '([^']+)'\.?(.*)", text)
    if match:
        text = f"{match.group(1).split(' / ')[0]}: required{match.group(2)}"
    match = re.match(r"Option '([^']+)' requires an argument\.?", text)
    if match:
        text = f"{match.group(1)}: needs a value"
    ctx = getattr(exc, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None and getattr(ctx, "command_path", None) else ""
    return text.rstrip(".") + where


def _spare_exit_collection() -> None:
    """The process exits next: move every object the command left to the cyclic collector's permanent
    generation, so that the interpreter's last full collection (and the teardown's traversals) skip
    them (~0.3 s of `paraplan plan` of DeepSeek-V3 on 2,048 H100 on the 2-core CI VM). Objects are
    still freed by reference counting; nothing is written or computed differently."""
    import gc

    gc.freeze()


def _run(argv: list[str] | None) -> int:
    """``main`` itself."""
    debug_state.DEBUG = False  # set again by --debug (per invocation: tests call main() many times in one process)
    _signalled.clear()
    args = list(sys.argv[1:] if argv is None else argv)
    abort, exit_, click_errors = (_exception_classes(n) for n in ("Abort", "Exit", "ClickException"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", ParaplanWarning)
            warnings.showwarning = _show_warning
            rc = app(args=args, prog_name="paraplan", standalone_mode=False)
        if rc == EXIT_INTERRUPTED:  # typer turns Ctrl-C (KeyboardInterrupt) into Exit(130)
            _interrupted()
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except SystemExit:
        raise
    except (KeyboardInterrupt, *abort):
        _interrupted()
    except exit_ as exc:
        sys.exit(exc.exit_code)
    except click_errors as exc:
        print_error(usage_line(exc))
        sys.exit(exc.exit_code if exc.exit_code else EXIT_BAD_INPUT)
    except BrokenPipeError:  # stdout closed early (| head): quiet, like other tools
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python from failing at exit flush
        sys.exit(EXIT_INFEASIBLE)
    except Exception as exc:
        message, code = describe(exc, args)
        if debug_enabled() or "--debug" in args:
            traceback.print_exc()
        print_error(message)
        sys.exit(code)
    return EXIT_OK
