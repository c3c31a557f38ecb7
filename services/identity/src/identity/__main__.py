from __future__ import annotations

from pathlib import Path

from cortex_runtime.service import main
from identity.entrypoints.bootstrap import bootstrap
from identity.settings import IdentitySettings

SERVICE_DIR = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    main("identity", IdentitySettings, bootstrap, SERVICE_DIR)
