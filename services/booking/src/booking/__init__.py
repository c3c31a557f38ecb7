"""The Cortex booking service."""
