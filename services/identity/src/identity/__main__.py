from __future__ import annotations

from pathlib import Path

from cortex_runtime.service import main
from identity.settings import IdentitySettings

SERVICE_DIR = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    main("identity", IdentitySettings, "identity.entrypoints.bootstrap:bootstrap", SERVICE_DIR)
