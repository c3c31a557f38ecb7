"""The Cortex billing service."""
