"""The `consentgate` command: one entry point, one module per subcommand.

Exit status, one rule for every command (README "Commands"), applied here only:

* 0: success.
* 2: a user mistake: a bad argument or option value, a bad setting or
  configuration value (`UsageError`, `ConfigError`), an input file that cannot
  be opened. One line on stderr, no traceback.
* 1: a runtime failure: broker unreachable, authentication refused, records not
  delivered (`TransportError` and every other project error), or an operating
  system error. One line on stderr. Commands that answer a question also exit 1
  for "no": `topics check` on drift, `broker status` when it is not running,
  `publish` when any line was rejected or undelivered (after its summary).
* 130: interrupted. `run` also exits 3 when a newer worker fenced it.

Anything else escaping a command is a bug, and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from ingest.errors import AuthenticationError, ConfigError, UsageError
from ingest.kafka.errors import UnreachableError
from schemas.errors import ConsentgateError

# The explicit list of subcommands: adding one is a module plus one line here.
COMMANDS: tuple[str, ...] = (
    "ingest.cli.broker",
    "ingest.cli.topics",
    "ingest.cli.publish",
    "ingest.cli.consent",
    "ingest.cli.run",
    "ingest.cli.tail",
    "ingest.cli.demo",
    "ingest.cli.simulate",
    "ingest.cli.dlq",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# The user's mistakes; every other error is a runtime failure.
USER_MISTAKES: tuple[type[Exception], ...] = (UsageError, ConfigError)


class CommandLineParser(argparse.ArgumentParser):
    """argparse, but a command-line mistake is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print `PROG: MESSAGE (see PROG --help)` instead of the usage block, exit 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(modules: Sequence[ModuleType]) -> argparse.ArgumentParser:
    """Build the top-level parser with one subparser per command module."""
    parser = CommandLineParser(
        prog="consentgate",
        description="Consent-gated event ingestion pipeline on Apache Kafka.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in modules:
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.configure(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def exit_status(exc: BaseException) -> int:
    """The exit status for an error a command raised: 2 for the user's mistakes, else 1."""
    return EXIT_USAGE if isinstance(exc, USER_MISTAKES) else EXIT_FAILURE


def describe(exc: BaseException) -> str:
    """The one line to print for an error; never a secret or a personal value."""
    if isinstance(exc, AuthenticationError):
        principal = os.environ.get("CONSENTGATE_SASL_USERNAME") or "(none)"
        return (
            f"authentication failed for principal {principal!r}; check "
            "CONSENTGATE_SASL_USERNAME and CONSENTGATE_SASL_PASSWORD or the password file "
            f"(CONSENTGATE_SASL_PASSWORD_FILE) [{exc}]"
        )
    sasl = os.environ.get("CONSENTGATE_SECURITY_PROTOCOL", "").upper().startswith("SASL")
    if isinstance(exc, UnreachableError) and sasl:
        # kafka-python reports refused credentials only as a timeout (README "Commands").
        principal = os.environ.get("CONSENTGATE_SASL_USERNAME") or "(none)"
        return (
            f"{exc}; if the cluster is up, check the SASL credentials of principal "
            f"{principal!r} (CONSENTGATE_SASL_USERNAME, password or password file)"
        )
    if isinstance(exc, OSError) and not isinstance(exc, ConsentgateError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or type(exc).__name__}{where}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run one subcommand, turn errors into one line and a status."""
    modules = [importlib.import_module(name) for name in COMMANDS]
    parser = build_parser(modules)
    args = parser.parse_args(argv)  # a mistake here exits 2 with one line
    try:
        code: int = args._run(args)
    except KeyboardInterrupt:
        print("consentgate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return EXIT_OK
    except (ConsentgateError, OSError) as exc:
        print(f"consentgate {args.command}: {describe(exc)}", file=sys.stderr)
        return exit_status(exc)
    return code


if __name__ == "__main__":
    sys.exit(main())
