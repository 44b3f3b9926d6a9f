"""The command-line front: the `consentgate` command, one module per subcommand.

`main` parses the command line and turns every error into one line and an exit
status. Each subcommand module defines NAME, HELP, `configure(parser)` and
`run(args) -> int`, and is listed once in `ingest.cli.main.COMMANDS`. The other
modules are helpers, not commands: `connection` (the options shared by commands that
talk to Kafka), `arguments` (value types that turn a bad option value into one line,
exit 2), `progress` (the progress line of `publish` and `simulate`) and `run_summary`
(the closing table of `demo`).
"""
