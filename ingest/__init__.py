"""The publishers' side of the pipeline, one room (sub-package) each.

- `kafka`: the Kafka boundary: one transport interface, two clients, settings, topics, ACLs.
- `sdk`: the publishing SDK services embed: `Publisher` and `ConsentClient`.
- `simulator`: the synthetic fleet: users, phones, consent over time, their events.
- `local_broker`: the local development broker: one KRaft node from the official jars.
- `cli`: the command-line front: `consentgate`, one module per subcommand.

Beside the rooms: `errors` (configuration, Kafka, local broker and command-line errors)
and `metrics_text` (the Prometheus text reader that `demo`, tests and benchmarks share).
"""
