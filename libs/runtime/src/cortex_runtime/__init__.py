"""What every Cortex service shares: settings, database, outbox/inbox, broker, logs."""
