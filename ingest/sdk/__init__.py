"""The publishing SDK services embed.

`publisher.Publisher` validates, encodes and sends events; `consent_client.ConsentClient`
records a user's consent changes; `metrics` holds the publishing side's Prometheus metrics.
"""
