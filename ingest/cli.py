"""The `consentgate` command: one entry point, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from schemas.errors import ConsentgateError

# The explicit list of subcommands: adding one is a module plus one line here.
COMMANDS: tuple[str, ...] = (
    "ingest.commands.broker",
    "ingest.commands.topics",
    "ingest.commands.publish",
    "ingest.commands.consent",
    "ingest.commands.run",
    "ingest.commands.tail",
    "ingest.commands.demo",
    "ingest.commands.simulate",
)

EXIT_USAGE = 2
EXIT_FAILURE = 1


def build_parser(modules: Sequence[ModuleType]) -> argparse.ArgumentParser:
    """Build the top-level parser with one subparser per command module."""
    parser = argparse.ArgumentParser(
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


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run one subcommand, turn known errors into one line."""
    modules = [importlib.import_module(name) for name in COMMANDS]
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    try:
        code: int = args._run(args)
    except KeyboardInterrupt:
        print("consentgate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0
    except ConsentgateError as exc:
        from ingest.errors import UsageError

        print(f"consentgate {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
