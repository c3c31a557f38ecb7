import booking.adapters.policy_tables  # noqa: F401  (its tables join the metadata)
from booking.adapters.tables import metadata
from cortex_runtime.migrations import run_env

run_env(metadata)
