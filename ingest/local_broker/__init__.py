"""The local development broker: one KRaft node from the official Kafka jars, in a run folder.

`jars` fetches the jars once (Maven) and finds java, `server_properties` writes the
node's configuration, and `broker.LocalBroker` starts, watches and stops the process.
For `consentgate broker` and `demo`, the integration tests and the benchmarks; it runs
from a source checkout (the jars are those of deploy/kafka/pom.xml).
"""
