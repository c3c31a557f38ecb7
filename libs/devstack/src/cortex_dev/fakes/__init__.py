"""Stateful fakes of the calendar providers' HTTP APIs (Google Calendar, Microsoft Graph),
OAuth included, speaking their documented wire formats; for integration tests and e2e.

    fake = FakeGoogle()
    fake.add_calendar("ada@example.com", "primary-cal", "Ada", primary=True)
    base_url, stop = run_in_thread(fake.app)
    ...  # GoogleCalendar(client, f"{base_url}{GOOGLE_API_PREFIX}", access_token_provider=...)
    stop()
"""

from cortex_dev.fakes.google import API_PREFIX as GOOGLE_API_PREFIX
from cortex_dev.fakes.google import FakeGoogle
from cortex_dev.fakes.graph import API_PREFIX as GRAPH_API_PREFIX
from cortex_dev.fakes.graph import FakeGraph
from cortex_dev.fakes.server import Authorization, FakeOAuth, run_in_thread, unsigned_jwt

__all__ = [
    "GOOGLE_API_PREFIX",
    "GRAPH_API_PREFIX",
    "Authorization",
    "FakeGoogle",
    "FakeGraph",
    "FakeOAuth",
    "run_in_thread",
    "unsigned_jwt",
]
