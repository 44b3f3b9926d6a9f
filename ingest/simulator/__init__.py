"""The synthetic fleet, reproducible from a seed, for demos, tests and benchmarks.

`catalog` loads the values drawn from (`catalog.toml`), `fleet` the users and their
phones, `consent_timeline` their consent records over time, and `simulate` the
event stream: consent records and device and log events, in publish order.
"""
