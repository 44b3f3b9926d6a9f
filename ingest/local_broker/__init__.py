"""The local development broker: one KRaft node from the official Kafka jars, in a run folder.

For `consentgate broker` and `demo`, the integration tests and the benchmarks. It runs
from a source checkout: the jars come from deploy/kafka/pom.xml, fetched by Maven.
"""
