"""Local development and test tooling: embedded NATS and PostgreSQL, `cortex up`, tests."""
