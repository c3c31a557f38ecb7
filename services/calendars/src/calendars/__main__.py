from __future__ import annotations

from pathlib import Path

from calendars.settings import CalendarsSettings
from cortex_runtime.service import main

SERVICE_DIR = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    main("calendars", CalendarsSettings, "calendars.entrypoints.bootstrap:bootstrap", SERVICE_DIR)
