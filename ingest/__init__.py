"""Everything a publisher needs: the Kafka boundary, the publishing SDK, the CLI front."""
