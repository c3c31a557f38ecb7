"""The Cortex calendars service."""
