"""Connecting Google through the gateway, with the whole system as processes and the Google
fake: a connection completes only in the browser that went through the tenant's link.

Mallory (a tenant) wants Victor's calendar in her account; Olga (another tenant) connects her
own. Each browser is an ``httpx.Client`` with its own cookie jar that follows no redirect by
itself, so every step is seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cortex_dev.fakes import GOOGLE_API_PREFIX, FakeGoogle, run_in_thread
from tests.e2e.harness import System, SystemOptions, Tenant, cli_tenant

pytestmark = pytest.mark.e2e

VICTOR = "victor@example.org"  # has a Google calendar, and no reason to share it with Mallory
OLGA = "olga@example.net"


@dataclass
class Google:
    fake: FakeGoogle
    url: str


@pytest.fixture(scope="module")
def google() -> Iterator[Google]:
    fake = FakeGoogle()
    fake.add_calendar(VICTOR, "victor-primary", "Victor", primary=True)
    fake.add_calendar(OLGA, "olga-primary", "Olga", primary=True)
    base, stop_google = run_in_thread(fake.app)
    try:
        yield Google(fake, base)
    finally:
        stop_google()


@pytest.fixture(scope="module")
def system_options(google: Google) -> SystemOptions:
    oauth = google.fake.oauth
    return SystemOptions(
        environ={
            "CORTEX_CALENDARS_GOOGLE_CLIENT_ID": oauth.client_id,
            "CORTEX_CALENDARS_GOOGLE_CLIENT_SECRET": oauth.client_secret,
            "CORTEX_CALENDARS_GOOGLE_AUTH_URL": f"{google.url}/authorize",
            "CORTEX_CALENDARS_GOOGLE_TOKEN_URL": f"{google.url}/token",
            "CORTEX_CALENDARS_GOOGLE_API_URL": f"{google.url}{GOOGLE_API_PREFIX}",
        }
    )


def tenant(system: System, name: str) -> Tenant:
    slug = f"{name}-{uuid.uuid4().hex[:8]}"
    return cli_tenant(system, f"{slug}@example.com", slug, name=name.title())


def connect_link(system: System, account: Tenant) -> str:
    answer = httpx.get(f"{system.gateway}/api/v1/calendars/google/connect", headers=account.auth)
    assert answer.status_code == 200, answer.text
    link: str = answer.json()["authorization_url"]
    return link


def connections(system: System, account: Tenant) -> list[dict[str, object]]:
    listed = httpx.get(f"{system.gateway}/api/v1/calendars", headers=account.auth)
    assert listed.status_code == 200, listed.text
    found: list[dict[str, object]] = listed.json()["connections"]
    return found


def browser() -> httpx.Client:
    return httpx.Client(follow_redirects=False, timeout=30)


def through_the_link(google: Google, web: httpx.Client, link: str) -> str:
    """Open the link as its owner does (the page, then Continue); the provider URL it sends
    the browser to."""
    page = web.get(link)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    go = web.get(f"{link}&confirmed=true")
    assert go.status_code == 302, go.text
    provider_url: str = go.headers["location"]
    assert provider_url.startswith(f"{google.url}/authorize?")
    return provider_url


def at_google(google: Google, web: httpx.Client, provider_url: str, who: str) -> str:
    """Google signs ``who`` in, asks consent, and sends the browser back: the callback URL."""
    google.fake.oauth.login_as = who
    consent = web.get(provider_url)
    assert consent.status_code == 302, consent.text
    callback = consent.headers["location"]
    assert "/api/v1/calendars/google/callback?" in callback and "code=" in callback
    return callback


def test_a_callback_in_another_browser_links_nothing(system: System, google: Google) -> None:
    mallory = tenant(system, "mallory")
    link = connect_link(system, mallory)
    if link.startswith(google.url):  # what connect answered before the browser binding
        provider_url = link
    else:  # Mallory goes through her own link to learn where it leads
        with browser() as mallorys:
            provider_url = through_the_link(google, mallorys, link)
    # Mallory sends the provider URL (it holds her state) to Victor, who consents at Google
    with browser() as victors:
        callback = at_google(google, victors, provider_url, VICTOR)
        answer = victors.get(callback)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "oauth_browser_mismatch" and answer.json()["error"]
    assert connections(system, mallory) == []


def test_the_link_itself_names_the_account_and_cannot_skip_its_page(system: System) -> None:
    mallory = tenant(system, "mallory")
    link = connect_link(system, mallory)
    assert link.startswith(f"{system.gateway}/api/v1/calendars/google/authorize?ticket=")
    with browser() as victors:
        # Victor is sent straight to the Continue link: he gets the page, not Google
        skipped = victors.get(f"{link}&confirmed=true")
        assert skipped.status_code == 200 and "location" not in skipped.headers
        assert mallory.email in skipped.text  # whose account the calendar would go to
        assert "cortex_oauth_bind_google" not in victors.cookies
        assert victors.cookies.get("cortex_oauth_confirm_google")
    # a ticket the gateway did not sign, or for another provider, is a 400
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    for url in (tampered, link.replace("/google/", "/outlook/")):
        refused = httpx.get(url)
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_ticket"
    assert connections(system, mallory) == []


def test_a_cookie_of_another_flow_does_not_match(system: System, google: Google) -> None:
    mallory, olga = tenant(system, "mallory"), tenant(system, "olga")
    with browser() as mallorys:
        mallorys_provider_url = through_the_link(google, mallorys, connect_link(system, mallory))
    with browser() as olgas:
        # Olga has started her own connection: her browser holds the cookie of her flow
        olgas_provider_url = through_the_link(google, olgas, connect_link(system, olga))
        # and is lured to Mallory's provider URL: the callback carries Mallory's state
        lured = olgas.get(at_google(google, olgas, mallorys_provider_url, OLGA))
        assert lured.status_code == 403 and lured.json()["code"] == "oauth_browser_mismatch"
        assert connections(system, mallory) == []
        # her own flow still completes, into her own account
        done = olgas.get(at_google(google, olgas, olgas_provider_url, OLGA))
        assert done.status_code == 200, done.text
        assert done.json()["provider"] == "google" and done.json()["email"] == OLGA
        assert "cortex_oauth_bind_google" not in olgas.cookies  # spent with the flow
    (connected,) = connections(system, olga)
    assert connected["email"] == OLGA
    assert connections(system, mallory) == []


def test_the_owner_connects_in_her_own_browser(system: System, google: Google) -> None:
    olga = tenant(system, "olga")
    link = connect_link(system, olga)
    with browser() as olgas:
        page = olgas.get(link)
        assert page.status_code == 200 and olga.email in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        confirm = next(c for c in olgas.cookies.jar if c.name == "cortex_oauth_confirm_google")
        assert confirm.path == "/api/v1/calendars/google/authorize"
        assert confirm.has_nonstandard_attr("HttpOnly")
        assert "samesite=strict" in page.headers["set-cookie"].lower()
        go = olgas.get(f"{link}&confirmed=true")
        assert go.status_code == 302
        cookie = go.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=" in cookie
        assert "path=/api/v1/calendars/google/callback" in cookie
        params = parse_qs(urlsplit(go.headers["location"]).query)
        assert params["redirect_uri"] == [f"{system.gateway}/api/v1/calendars/google/callback"]
        done = olgas.get(at_google(google, olgas, go.headers["location"], OLGA))
        assert done.status_code == 200, done.text
    (connected,) = connections(system, olga)
    assert connected["provider"] == "google" and connected["email"] == OLGA
