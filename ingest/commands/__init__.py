"""CLI subcommands, one module each.

Each module defines NAME, HELP, `configure(parser)` and `run(args) -> int`,
and is listed once in `ingest.cli.COMMANDS`.
"""
