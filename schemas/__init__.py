"""Avro schemas, their pydantic models and the wire codec: the single source of truth for data."""
