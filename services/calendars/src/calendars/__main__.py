from __future__ import annotations

from pathlib import Path

from cortex_runtime.service import main

from calendars.entrypoints.bootstrap import bootstrap
from calendars.settings import CalendarsSettings

SERVICE_DIR = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    main("calendars", CalendarsSettings, bootstrap, SERVICE_DIR)
