from __future__ import annotations

from pathlib import Path

from cortex_runtime.service import main

from billing.entrypoints.bootstrap import bootstrap
from billing.settings import BillingSettings

SERVICE_DIR = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    main("billing", BillingSettings, bootstrap, SERVICE_DIR)
