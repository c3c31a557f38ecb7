"""What `cortex up` lets a CalDAV server_url reach: loopback (a local Radicale), but never the
ports of the servers the stack itself runs (NATS, PostgreSQL, the gateways)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from calendars.adapters.factory import build_providers
from calendars.adapters.providers import CalendarProvider
from calendars.adapters.secrets import SecretBox
from calendars.adapters.ssrf import UrlRefused
from calendars.settings import CalendarsSettings
from cortex_dev.embedded import free_port
from cortex_dev.pytest_plugin import CaldavAccount
from cortex_dev.stack import Stack, isolated_environ

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack's embedded NATS and PostgreSQL, as `cortex up` starts them (no services)."""
    system = Stack(
        data_dir=tmp_path_factory.mktemp("reach") / "data",
        gateway_port=free_port(),
        replicas={"gateway": 2},
        environ=isolated_environ(),
    )
    try:
        system.start_infrastructure()
        yield system
    finally:
        system.stop()


def _no_database() -> Any:
    raise AssertionError("a CalDAV client built for a check needs no database")


def _caldav_as_cortex_up_configures_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str, str], CalendarProvider]:
    """calendars' CalDAV client, built from the environment `cortex up` gives calendars."""
    for name, value in stack.env_for("calendars").items():
        if name.startswith("CORTEX_"):
            monkeypatch.setenv(name, value)
    settings = CalendarsSettings()
    box = SecretBox(settings.encryption_keys.get_secret_value())
    return build_providers(settings, box, _no_database).caldav


def _ports(stack: Stack) -> dict[str, int]:
    assert stack.nats is not None and stack.postgres is not None
    gateways = [int(url.rsplit(":", 1)[1]) for url in stack.gateway_urls]
    return {"nats": stack.nats.port, "postgres": stack.postgres.port} | {
        f"gateway-{i + 1}": port for i, port in enumerate(gateways)
    }


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2", "[::1]"])
async def test_cortex_up_refuses_its_own_servers_ports(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    caldav = _caldav_as_cortex_up_configures_it(stack, monkeypatch)
    for name, port in _ports(stack).items():
        client = caldav(f"http://{host}:{port}/", "user", "password")
        try:
            with pytest.raises(UrlRefused, match="reserved"):
                await client.list_calendars()
        finally:
            await client.aclose()
        assert name  # every one of them


async def test_cortex_up_still_reaches_a_local_radicale(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caldav_account: CaldavAccount
) -> None:
    caldav = _caldav_as_cortex_up_configures_it(stack, monkeypatch)
    client = caldav(caldav_account.url, caldav_account.username, caldav_account.password)
    try:
        assert await client.list_calendars() is not None
    finally:
        await client.aclose()


def test_cortex_up_says_what_calendars_may_reach(stack: Stack) -> None:
    said: list[str] = []
    stack.say = said.append
    try:
        stack.announce_caldav_reach()
    finally:
        stack.say = lambda _: None
    (line,) = said
    assert "127.0.0.0/8" in line and "::1" in line
    for port in _ports(stack).values():
        assert str(port) in line
