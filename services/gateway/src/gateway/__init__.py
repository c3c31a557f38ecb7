"""The Cortex gateway: HTTP in, NATS request/reply out. It has no database."""
