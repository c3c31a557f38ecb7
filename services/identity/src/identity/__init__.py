"""The Cortex identity service."""
