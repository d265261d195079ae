"""The one error boundary of the CLI: every exception that escapes a command becomes one line.

Exit codes: 0 ok; 1 nothing feasible; 2 bad input, an output path that cannot be written, or a
missing optional dependency; 3 an internal error (a bug: the line names the command and the
exception; ``--debug`` or ``PARAPLAN_DEBUG=1`` prints the full traceback); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import sys
import traceback

#: Set by ``paraplan --debug`` (planner/cli/app.py); PARAPLAN_DEBUG=1 does the same.
DEBUG = False

EXIT_OK, EXIT_INFEASIBLE, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: Optional dependencies and the extra that installs them.
EXTRAS = {"matplotlib": "plot", "torch": "validate"}


def debug_enabled() -> bool:
    """Whether tracebacks are wanted (``--debug`` or PARAPLAN_DEBUG set to anything but 0/empty)."""
    return DEBUG or os.environ.get("PARAPLAN_DEBUG", "") not in ("", "0")


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

    from .app import err_console

    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def command_name(argv: list[str]) -> str:
    """``paraplan validate run`` from the arguments: the leading words that are not options."""
    from .lazy import COMMANDS

    words = []
    for a in (a for a in argv if a != "--debug"):
        if a.startswith("-") or (words and len(words) >= 2) or (not words and a not in COMMANDS):
            break
        words.append(a)
    return " ".join(["paraplan", *words])


def describe(exc: BaseException, argv: list[str]) -> tuple[str, int]:
    """(one line, exit code) for an exception that escaped a command."""
    from ..errors import ParaplanError, format_validation_error

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI behind the error boundary; exits with the codes in the module docstring.
    ``argv`` None: run as the process (the console script, ``python -m planner``), which ends with
    the command; in-process callers (the tests) pass their arguments."""
    try:
        return _run(argv)
    finally:
        if argv is None:
            _spare_exit_collection()


def _spare_exit_collection() -> None:
    """The process exits next: move every object the command left to the cyclic collector's permanent
    generation, so that the interpreter's last full collection (and the teardown's traversals) skip
    them (~0.3 s of `paraplan plan` of DeepSeek-V3 on 2,048 H100 on the 2-core CI VM). Objects are
    still freed by reference counting; nothing is written or computed differently."""
    import gc

    gc.freeze()


def _run(argv: list[str] | None) -> int:
    """``main`` itself."""
    global DEBUG
    from .app import app

    DEBUG = False  # set again by --debug (per invocation: tests call main() many times in one process)
    args = list(sys.argv[1:] if argv is None else argv)
    abort, exit_, click_errors = (_exception_classes(n) for n in ("Abort", "Exit", "ClickException"))
    try:
        rc = app(args=args, prog_name="paraplan", standalone_mode=False)
        if rc == EXIT_INTERRUPTED:  # typer turns Ctrl-C (KeyboardInterrupt) into Exit(130)
            print_error("interrupted")
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except SystemExit:
        raise
    except (KeyboardInterrupt, *abort):
        print_error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except exit_ as exc:
        sys.exit(exc.exit_code)
    except click_errors as exc:
        exc.show()
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
