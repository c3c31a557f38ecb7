from billing.adapters.tables import metadata
from cortex_runtime.migrations import run_env

run_env(metadata)
