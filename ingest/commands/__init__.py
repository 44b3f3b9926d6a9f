"""CLI subcommands, one module each.

Each module defines NAME, HELP, `configure(parser)` and `run(args) -> int`,
and is listed once in `ingest.cli.COMMANDS`. Two helpers are not commands:
`connection` (the options shared by commands that talk to Kafka) and
`arguments` (value types that turn a bad option value into one line, exit 2).
"""
