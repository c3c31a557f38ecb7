from __future__ import annotations

from pathlib import Path

from billing.settings import BillingSettings
from cortex_runtime.service import main

SERVICE_DIR = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    main("billing", BillingSettings, "billing.entrypoints.bootstrap:bootstrap", SERVICE_DIR)
