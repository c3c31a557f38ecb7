"""The Google Calendar and Microsoft Graph clients against the devstack fakes, over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from calendars.adapters.google import GoogleCalendar, event_id_for_uid, uid_from_event_id
from calendars.adapters.graph import UID_PROPERTY_ID, GraphCalendar
from calendars.adapters.oauth import (
    AccessTokens,
    OAuthEndpoints,
    TokenSet,
    authorization_url,
    exchange_code,
    google_endpoints,
    microsoft_endpoints,
    new_pkce,
    pkce_challenge,
    refresh,
)
from calendars.adapters.providers import (
    CredentialsRejected,
    ProviderError,
    ProviderUnavailable,
    SyncTokenExpired,
)
from calendars.domain.remote import RemoteEvent
from cortex_dev.fakes import (
    GOOGLE_API_PREFIX,
    GRAPH_API_PREFIX,
    FakeGoogle,
    FakeGraph,
    run_in_thread,
)

REDIRECT = "https://cortex.test/oauth/callback"
ADA = "ada@example.com"
PARIS = ZoneInfo("Europe/Paris")
W_START = datetime(2025, 3, 10, tzinfo=UTC)
W_END = datetime(2025, 3, 17, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogle, str]]:
    fake = FakeGoogle(page_size=2)
    fake.add_calendar(ADA, "ada@example.com", "Ada", primary=True, time_zone="Europe/Paris")
    base, stop = run_in_thread(fake.app)
    yield fake, base
    stop()


@pytest.fixture
def graph() -> Iterator[tuple[FakeGraph, str]]:
    fake = FakeGraph(page_size=2)
    fake.add_user(ADA, "ada@contoso.onmicrosoft.com")
    fake.add_calendar(ADA, "AAMkCal1", "Calendar", default=True)
    base, stop = run_in_thread(fake.app)
    yield fake, base
    stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def google_oauth(fake: FakeGoogle, base: str) -> OAuthEndpoints:
    return google_endpoints(
        fake.oauth.client_id,
        fake.oauth.client_secret,
        REDIRECT,
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/token",
    )


def graph_oauth(fake: FakeGraph, base: str) -> OAuthEndpoints:
    return microsoft_endpoints(
        fake.oauth.client_id,
        fake.oauth.client_secret,
        REDIRECT,
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/token",
        graph_url=f"{base}{GRAPH_API_PREFIX}",
    )


def static(token: str) -> Callable[[], Awaitable[str]]:
    async def provide() -> str:
        return token

    return provide


def google_client(client: httpx.AsyncClient, fake: FakeGoogle, base: str) -> GoogleCalendar:
    return GoogleCalendar(
        client, f"{base}{GOOGLE_API_PREFIX}", access_token_provider=static(fake.issue_token(ADA))
    )


def graph_client(client: httpx.AsyncClient, fake: FakeGraph, base: str) -> GraphCalendar:
    return GraphCalendar(
        client, f"{base}{GRAPH_API_PREFIX}", access_token_provider=static(fake.issue_token(ADA))
    )


async def authorize(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    """Drive the authorization endpoint like a browser; the redirect's query."""
    response = await client.get(url)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- OAuth ---------------------------------------------------------------------------------


def test_pkce_pair() -> None:
    verifier, challenge = new_pkce()
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert challenge == pkce_challenge(verifier) and "=" not in challenge
    # RFC 7636 appendix B
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    assert new_pkce()[0] != verifier


def test_default_endpoints_are_the_real_ones() -> None:
    g = google_endpoints("id", "secret", REDIRECT)
    assert g.authorize_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert g.token_url == "https://oauth2.googleapis.com/token"
    assert g.scopes == ("https://www.googleapis.com/auth/calendar", "openid", "email")
    m = microsoft_endpoints("id", "secret", REDIRECT)
    assert m.authorize_url == "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    assert m.token_url == "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert m.scopes == ("offline_access", "Calendars.ReadWrite", "User.Read")
    assert m.userinfo_url == "https://graph.microsoft.com/v1.0/me"


async def test_google_oauth_code_flow(
    google: tuple[FakeGoogle, str], client: httpx.AsyncClient
) -> None:
    fake, base = google
    endpoints = google_oauth(fake, base)
    verifier, challenge = new_pkce()
    url = authorization_url(endpoints, "state-123", challenge)
    query = parse_qs(urlsplit(url).query)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["https://www.googleapis.com/auth/calendar openid email"]

    redirect = await authorize(client, url)
    assert redirect["state"] == "state-123"
    assert fake.oauth.authorizations[-1].params["code_challenge"] == challenge

    tokens = await exchange_code(client, endpoints, redirect["code"], verifier)
    assert tokens.email == ADA
    assert tokens.refresh_token
    assert tokens.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    assert tokens.access_token not in repr(tokens)

    calendars = await GoogleCalendar(
        client, f"{base}{GOOGLE_API_PREFIX}", access_token_provider=static(tokens.access_token)
    ).list_calendars()
    assert [c.id for c in calendars] == [ADA]

    renewed = await refresh(client, endpoints, tokens.refresh_token)
    assert renewed.access_token != tokens.access_token
    assert renewed.refresh_token == tokens.refresh_token  # Google sends none: kept

    # The code is single use.
    with pytest.raises(CredentialsRejected):
        await exchange_code(client, endpoints, redirect["code"], verifier)

    fake.revoke_refresh_token(tokens.refresh_token)
    with pytest.raises(CredentialsRejected) as refused:
        await refresh(client, endpoints, tokens.refresh_token)
    assert tokens.refresh_token not in str(refused.value)
    assert str(refused.value).endswith(".")


async def test_wrong_pkce_verifier_is_refused(
    google: tuple[FakeGoogle, str], graph: tuple[FakeGraph, str], client: httpx.AsyncClient
) -> None:
    for endpoints in (google_oauth(*google), graph_oauth(*graph)):
        _, challenge = new_pkce()
        redirect = await authorize(client, authorization_url(endpoints, "s", challenge))
        other_verifier, _ = new_pkce()
        with pytest.raises(CredentialsRejected):
            await exchange_code(client, endpoints, redirect["code"], other_verifier)


async def test_wrong_client_secret_is_refused(
    google: tuple[FakeGoogle, str], client: httpx.AsyncClient
) -> None:
    fake, base = google
    good = google_oauth(fake, base)
    verifier, challenge = new_pkce()
    redirect = await authorize(client, authorization_url(good, "s", challenge))
    bad = google_endpoints(
        good.client_id,
        "not-the-secret",
        REDIRECT,
        authorize_url=good.authorize_url,
        token_url=good.token_url,
    )
    with pytest.raises(CredentialsRejected) as refused:
        await exchange_code(client, bad, redirect["code"], verifier)
    assert "not-the-secret" not in str(refused.value)


async def test_graph_oauth_code_flow(
    graph: tuple[FakeGraph, str], client: httpx.AsyncClient
) -> None:
    fake, base = graph
    endpoints = graph_oauth(fake, base)
    verifier, challenge = new_pkce()
    url = authorization_url(endpoints, "st", challenge)
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == ["offline_access Calendars.ReadWrite User.Read"]
    assert "access_type" not in query

    redirect = await authorize(client, url)
    assert redirect["state"] == "st"
    tokens = await exchange_code(client, endpoints, redirect["code"], verifier)
    assert tokens.email == ADA  # from Graph /me
    assert tokens.refresh_token

    renewed = await refresh(client, endpoints, tokens.refresh_token)
    assert renewed.refresh_token and renewed.refresh_token != tokens.refresh_token  # rotated

    fake.revoke_refresh_token(renewed.refresh_token)
    with pytest.raises(CredentialsRejected):
        await refresh(client, endpoints, renewed.refresh_token)


async def test_access_tokens_refresh_and_retry_once_on_401(
    google: tuple[FakeGoogle, str], client: httpx.AsyncClient
) -> None:
    fake, base = google
    endpoints = google_oauth(fake, base)
    verifier, challenge = new_pkce()
    redirect = await authorize(client, authorization_url(endpoints, "s", challenge))
    tokens = await exchange_code(client, endpoints, redirect["code"], verifier)
    stored: list[TokenSet] = []

    async def save(new: TokenSet) -> None:
        stored.append(new)

    provider = AccessTokens(client, endpoints, tokens, on_refresh=save)
    calendar = GoogleCalendar(client, f"{base}{GOOGLE_API_PREFIX}", access_token_provider=provider)
    assert await calendar.list_calendars()
    assert stored == []  # still valid: no refresh

    # The provider drops the token before its announced expiry: 401, refresh, retry.
    fake.expire_access_token(tokens.access_token)
    assert await calendar.list_calendars()
    assert len(stored) == 1 and stored[0].access_token != tokens.access_token
    assert stored[0].email == ADA

    # A token about to expire is refreshed before use.
    provider.tokens.expires_at = datetime.now(UTC) + timedelta(seconds=10)
    assert await calendar.list_calendars()
    assert len(stored) == 2

    # Revoked grant: the retry cannot get a new token.
    fake.expire_access_token(stored[-1].access_token)
    fake.revoke_refresh_token(tokens.refresh_token or "")
    with pytest.raises(CredentialsRejected):
        await calendar.list_calendars()

    # A provider that keeps returning a rejected token: one attempt, then rejected.
    with pytest.raises(CredentialsRejected):
        await GoogleCalendar(
            client, f"{base}{GOOGLE_API_PREFIX}", access_token_provider=static("nope")
        ).list_calendars()


# -- Google Calendar -----------------------------------------------------------------------


async def test_google_list_calendars(
    google: tuple[FakeGoogle, str], client: httpx.AsyncClient
) -> None:
    fake, base = google
    fake.add_calendar(ADA, "team@group.calendar.google.com", "Team", access_role="writer")
    fake.add_calendar(ADA, "holidays@group.v.calendar.google.com", "Holidays", access_role="reader")
    fake.add_calendar("bob@example.com", "bob@example.com", "Bob", primary=True)
    calendars = await google_client(client, fake, base).list_calendars()  # paged by 2
    assert {(c.id, c.name, c.primary, c.writable) for c in calendars} == {
        (ADA, "Ada", True, True),
        ("team@group.calendar.google.com", "Team", False, True),
        ("holidays@group.v.calendar.google.com", "Holidays", False, False),
    }


def seed_google(fake: FakeGoogle) -> dict[str, str]:
    cal = ADA
    ids = {
        "meeting": fake.add_event(cal, at(10, 9), at(10, 10), summary="Meeting", ical_uid="m@x"),
        "holiday": fake.add_event(
            cal, date(2025, 3, 12), date(2025, 3, 13), summary="Holiday", ical_uid="h@x"
        ),
        "cancelled": fake.add_event(
            cal, at(11, 9), at(11, 10), summary="Off", status="cancelled", ical_uid="c@x"
        ),
        "free": fake.add_event(
            cal, at(11, 12), at(11, 13), summary="Lunch", transparent=True, ical_uid="f@x"
        ),
        "tentative": fake.add_event(
            cal, at(13, 9), at(13, 11), summary="Maybe", status="tentative", ical_uid="t@x"
        ),
        "before": fake.add_event(cal, at(3, 9), at(3, 10), ical_uid="before@x"),
        "after": fake.add_event(cal, at(20, 9), at(20, 10), ical_uid="after@x"),
    }
    master, occurrences = fake.add_recurring(
        cal,
        [(at(d, 15), at(d, 16)) for d in (9, 10, 11, 12)],
        summary="Standup",
        ical_uid="standup@x",
    )
    ids["series"] = master
    ids["occurrence"] = occurrences[2]  # March 11
    return ids


async def test_google_fetch_window(
    google: tuple[FakeGoogle, str], client: httpx.AsyncClient
) -> None:
    fake, base = google
    seed_google(fake)
    window = await google_client(client, fake, base).fetch_window(ADA, W_START, W_END)
    by_uid: dict[str, list[RemoteEvent]] = {}
    for event in window.events:
        by_uid.setdefault(event.uid, []).append(event)
    assert set(by_uid) == {"m@x", "h@x", "c@x", "f@x", "t@x", "standup@x"}
    assert window.sync_token

    [meeting] = by_uid["m@x"]
    assert (meeting.start, meeting.end, meeting.summary) == (at(10, 9), at(10, 10), "Meeting")
    assert meeting.blocks and not meeting.all_day and meeting.recurrence_id == ""

    [holiday] = by_uid["h@x"]  # all-day: the calendar's zone (Paris) midnights
    assert holiday.all_day
    assert holiday.start == datetime(2025, 3, 12, tzinfo=PARIS)
    assert holiday.end == datetime(2025, 3, 13, tzinfo=PARIS)
    assert holiday.start == datetime(2025, 3, 11, 23, tzinfo=UTC)
    # it keeps the calendar's zone: not placed again in the owner's
    assert (holiday.local_start, holiday.local_end) == (None, None)
    assert meeting.local_start is None

    [cancelled] = by_uid["c@x"]
    assert cancelled.status == "cancelled" and not cancelled.blocks
    [free] = by_uid["f@x"]
    assert free.transparent and not free.blocks
    [tentative] = by_uid["t@x"]
    assert tentative.status == "tentative" and tentative.blocks

    standup = sorted(by_uid["standup@x"], key=lambda e: e.start)
    assert [e.start for e in standup] == [at(10, 15), at(11, 15), at(12, 15)]  # 9th: outside
    assert [e.recurrence_id for e in standup] == [
        "2025-03-10T15:00:00+00:00",
        "2025-03-11T15:00:00+00:00",
        "2025-03-12T15:00:00+00:00",
    ]


@pytest.mark.parametrize("minimal_cancelled", [False, True])
async def test_google_changes_since(
    google: tuple[FakeGoogle, str], client: httpx.AsyncClient, minimal_cancelled: bool
) -> None:
    fake, base = google
    fake.minimal_cancelled = minimal_cancelled
    ids = seed_google(fake)
    calendar = google_client(client, fake, base)
    window = await calendar.fetch_window(ADA, W_START, W_END)
    assert window.sync_token

    nothing = await calendar.changes_since(ADA, window.sync_token, W_START, W_END)
    assert (nothing.changed, nothing.changed_uids, nothing.removed_uids) == ([], set(), set())

    fake.update_event(ADA, ids["meeting"], summary="Moved meeting")
    fake.cancel_event(ADA, ids["free"])
    fake.cancel_event(ADA, ids["occurrence"])  # one occurrence of the series
    new_id = fake.add_event(ADA, at(14, 9), at(14, 10), summary="New", ical_uid="n@x")
    fake.update_event(ADA, ids["tentative"], start={"dateTime": "2025-03-25T09:00:00Z"})
    fake.update_event(ADA, ids["tentative"], end={"dateTime": "2025-03-25T10:00:00Z"})

    changes = await calendar.changes_since(ADA, window.sync_token, W_START, W_END)
    assert changes.removed_uids == {"f@x"}
    assert changes.changed_uids == {"m@x", "standup@x", "n@x", "t@x"}  # t@x left the window
    by_uid: dict[str, list[RemoteEvent]] = {}
    for event in changes.changed:
        by_uid.setdefault(event.uid, []).append(event)
    assert set(by_uid) == {"m@x", "standup@x", "n@x"}
    assert by_uid["m@x"][0].summary == "Moved meeting"
    assert by_uid["n@x"][0].start == at(14, 9)
    # Every occurrence of the changed series in the window, the cancelled one included
    # (unless Google reduced it to its id: then there is nothing to show, nor to block).
    standup = sorted(by_uid["standup@x"], key=lambda e: e.start)
    expected = [(at(10, 15), "confirmed"), (at(11, 15), "cancelled"), (at(12, 15), "confirmed")]
    if minimal_cancelled:
        del expected[1]
    assert [(e.start, e.status) for e in standup] == expected
    assert changes.sync_token and changes.sync_token != window.sync_token

    again = await calendar.changes_since(ADA, changes.sync_token, W_START, W_END)
    assert (again.changed_uids, again.removed_uids) == (set(), set())

    fake.cancel_event(ADA, new_id)
    fake.cancel_event(ADA, ids["series"])
    gone = await calendar.changes_since(ADA, again.sync_token or "", W_START, W_END)
    assert gone.removed_uids == {"n@x", "standup@x"}
    assert gone.changed_uids == set()

    fake.invalidate_sync_tokens()
    with pytest.raises(SyncTokenExpired):
        await calendar.changes_since(ADA, gone.sync_token or "", W_START, W_END)


async def test_google_create_and_delete_are_idempotent(
    google: tuple[FakeGoogle, str], client: httpx.AsyncClient
) -> None:
    fake, base = google
    calendar = google_client(client, fake, base)
    uid = "booking-7f3a@cortex"
    for _ in range(2):
        await calendar.create_event(
            ADA, uid, at(14, 9), at(14, 10), "Intro call", "Booked via Cortex", "eve@example.com"
        )
    [stored] = fake.events(ADA)
    assert stored["id"] == event_id_for_uid(uid)
    assert uid_from_event_id(stored["id"]) == uid
    assert stored["extendedProperties"] == {"private": {"cortexUid": uid}}
    assert stored["attendees"] == [{"email": "eve@example.com"}]
    assert stored["start"] == {"dateTime": "2025-03-14T09:00:00Z", "timeZone": "UTC"}

    window = await calendar.fetch_window(ADA, W_START, W_END)
    [event] = window.events
    assert (event.uid, event.summary, event.start, event.end) == (
        uid,
        "Intro call",
        at(14, 9),
        at(14, 10),
    )

    await calendar.delete_event(ADA, uid)
    await calendar.delete_event(ADA, uid)  # 410: already deleted
    await calendar.delete_event(ADA, "never-created")  # 404
    assert fake.events(ADA) == []
    assert fake.events(ADA, include_cancelled=True)[0]["status"] == "cancelled"

    # The deletion reaches an incremental sync as this UID, even reduced to its id.
    fake.minimal_cancelled = True
    changes = await calendar.changes_since(ADA, window.sync_token or "", W_START, W_END)
    assert changes.removed_uids == {uid}


async def test_google_move_is_a_patch_of_the_same_event(
    google: tuple[FakeGoogle, str], client: httpx.AsyncClient
) -> None:
    fake, base = google
    calendar = google_client(client, fake, base)
    uid = "bk_move_google"
    created = await calendar.create_event(
        ADA, uid, at(14, 9), at(14, 10), "Intro call", "Booked via Cortex", "eve@example.com"
    )
    assert created == uid  # its synced copy carries the UID

    moved = await calendar.move_event(ADA, uid, at(14, 15), at(14, 16))
    assert moved is not None
    assert [(e.uid, e.start, e.end, e.summary) for e in moved] == [
        (uid, at(14, 15), at(14, 16), "Intro call")
    ]
    [stored] = fake.events(ADA)  # one event, the same id: moved, not duplicated
    assert stored["id"] == event_id_for_uid(uid)
    assert stored["start"] == {"dateTime": "2025-03-14T15:00:00Z", "timeZone": "UTC"}
    assert stored["end"] == {"dateTime": "2025-03-14T16:00:00Z", "timeZone": "UTC"}
    assert stored["sequence"] == 1
    assert stored["attendees"] == [{"email": "eve@example.com"}]
    assert (stored["summary"], stored["description"]) == ("Intro call", "Booked via Cortex")
    assert stored["extendedProperties"] == {"private": {"cortexUid": uid}}

    # a sync lists it as the move answered it
    window = await calendar.fetch_window(ADA, W_START, W_END)
    assert window.events == moved

    # where it is: the same answer, nothing changes; new texts replace the event's
    assert await calendar.move_event(ADA, uid, at(14, 15), at(14, 16)) == moved
    assert fake.events(ADA)[0]["sequence"] == 1
    again = await calendar.move_event(ADA, uid, at(14, 9), at(14, 10), "Call", "Moved")
    assert again is not None and [(e.start, e.summary) for e in again] == [(at(14, 9), "Call")]
    [stored] = fake.events(ADA)
    assert (stored["summary"], stored["description"], stored["sequence"]) == ("Call", "Moved", 2)

    # no such event, or a deleted one: None
    assert await calendar.move_event(ADA, "bk_never", at(14, 9), at(14, 10)) is None
    await calendar.delete_event(ADA, uid)
    assert await calendar.move_event(ADA, uid, at(14, 11), at(14, 12)) is None
    assert fake.events(ADA) == []


def test_google_event_ids() -> None:
    for uid in ("abc", "x" * 10, "ünïcødé@example.com", "040000008200E00074C5B7101A82E008"):
        event_id = event_id_for_uid(uid)
        assert 5 <= len(event_id) <= 1024
        assert set(event_id) <= set("abcdefghijklmnopqrstuv0123456789")
        assert uid_from_event_id(event_id) == uid
    long_id = event_id_for_uid("u" * 1000)
    assert len(long_id) == 64 and uid_from_event_id(long_id) is None
    assert uid_from_event_id("4f8a0c2e1b7d9k") is None  # a Google-made id


# -- Microsoft Graph -----------------------------------------------------------------------


async def test_graph_list_calendars(
    graph: tuple[FakeGraph, str], client: httpx.AsyncClient
) -> None:
    fake, base = graph
    fake.add_calendar(ADA, "AAMkCal2", "Birthdays", can_edit=False)
    fake.add_calendar(ADA, "AAMkCal3", "Team")
    fake.add_calendar("bob@example.com", "AAMkBob", "Calendar", default=True)
    calendars = await graph_client(client, fake, base).list_calendars()  # paged by 2
    assert {(c.id, c.name, c.primary, c.writable) for c in calendars} == {
        ("AAMkCal1", "Calendar", True, True),
        ("AAMkCal2", "Birthdays", False, False),
        ("AAMkCal3", "Team", False, True),
    }


def seed_graph(fake: FakeGraph) -> dict[str, str]:
    cal = "AAMkCal1"
    return {
        "meeting": fake.add_event(cal, at(10, 9), at(10, 10), subject="Meeting"),
        "holiday": fake.add_event(
            cal, date(2025, 3, 12), date(2025, 3, 13), subject="Holiday", is_all_day=True
        ),
        "cancelled": fake.add_event(cal, at(11, 9), at(11, 10), subject="Off", is_cancelled=True),
        "free": fake.add_event(cal, at(11, 12), at(11, 13), subject="Lunch", show_as="free"),
        "tentative": fake.add_event(cal, at(13, 9), at(13, 11), show_as="tentative"),
        "oof": fake.add_event(cal, at(14, 9), at(14, 17), show_as="oof"),
        "occurrence": fake.add_event(
            cal,
            at(12, 15),
            at(12, 16),
            subject="Standup",
            event_type="occurrence",
            series_master_id="AAMkSeries",
            originalStart="2025-03-12T15:00:00Z",
        ),
        "after": fake.add_event(cal, at(20, 9), at(20, 10)),
    }


async def test_graph_fetch_window(graph: tuple[FakeGraph, str], client: httpx.AsyncClient) -> None:
    fake, base = graph
    ids = seed_graph(fake)
    window = await graph_client(client, fake, base).fetch_window("AAMkCal1", W_START, W_END)
    by_uid = {event.uid: event for event in window.events}
    assert set(by_uid) == set(ids.values()) - {ids["after"]}
    assert window.sync_token and window.sync_token.startswith(f"{base}{GRAPH_API_PREFIX}/")
    assert fake.prefer_headers and set(fake.prefer_headers) == {'outlook.timezone="UTC"'}

    meeting = by_uid[ids["meeting"]]
    assert (meeting.start, meeting.end, meeting.summary) == (at(10, 9), at(10, 10), "Meeting")
    assert meeting.blocks and not meeting.all_day

    holiday = by_uid[ids["holiday"]]
    assert holiday.all_day
    assert (holiday.start, holiday.end) == (
        datetime(2025, 3, 12, tzinfo=UTC),
        datetime(2025, 3, 13, tzinfo=UTC),
    )
    cancelled = by_uid[ids["cancelled"]]
    assert cancelled.status == "cancelled" and not cancelled.blocks
    free = by_uid[ids["free"]]
    assert free.transparent and not free.blocks
    assert by_uid[ids["tentative"]].status == "tentative" and by_uid[ids["tentative"]].blocks
    assert by_uid[ids["oof"]].blocks
    assert by_uid[ids["occurrence"]].recurrence_id == "2025-03-12T15:00:00+00:00"


async def test_graph_all_day_in_mailbox_zone(
    graph: tuple[FakeGraph, str], client: httpx.AsyncClient
) -> None:
    fake, base = graph
    fake.add_event(
        "AAMkCal1", date(2025, 3, 12), date(2025, 3, 13), subject="Holiday", is_all_day=True
    )
    calendar = GraphCalendar(
        client,
        f"{base}{GRAPH_API_PREFIX}",
        access_token_provider=static(fake.issue_token(ADA)),
        time_zone="Europe/Paris",
    )
    [holiday] = (await calendar.fetch_window("AAMkCal1", W_START, W_END)).events
    assert holiday.start == datetime(2025, 3, 12, tzinfo=PARIS)
    # its dates, to be placed again when the owner's zone changes
    assert (holiday.local_start, holiday.local_end) == (
        datetime(2025, 3, 12),
        datetime(2025, 3, 13),
    )


async def test_graph_changes_since(graph: tuple[FakeGraph, str], client: httpx.AsyncClient) -> None:
    fake, base = graph
    ids = seed_graph(fake)
    calendar = graph_client(client, fake, base)
    window = await calendar.fetch_window("AAMkCal1", W_START, W_END)
    assert window.sync_token

    nothing = await calendar.changes_since("AAMkCal1", window.sync_token, W_START, W_END)
    assert (nothing.changed, nothing.changed_uids, nothing.removed_uids) == ([], set(), set())

    fake.update_event(
        "AAMkCal1",
        ids["meeting"],
        subject="Moved",
        start={"dateTime": "2025-03-10T11:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2025-03-10T12:00:00.0000000", "timeZone": "UTC"},
    )
    fake.remove_event("AAMkCal1", ids["free"])
    fake.update_event(
        "AAMkCal1",
        ids["tentative"],
        start={"dateTime": "2025-03-25T09:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2025-03-25T10:00:00.0000000", "timeZone": "UTC"},
    )
    new_id = fake.add_event("AAMkCal1", at(15, 9), at(15, 10), subject="New")
    fake.add_event("AAMkCal1", at(25, 9), at(25, 10), subject="Far away")

    changes = await calendar.changes_since("AAMkCal1", window.sync_token, W_START, W_END)
    assert changes.removed_uids == {ids["free"], ids["tentative"]}  # deleted; left the window
    assert changes.changed_uids == {ids["meeting"], new_id}
    by_uid = {e.uid: e for e in changes.changed}
    assert (by_uid[ids["meeting"]].summary, by_uid[ids["meeting"]].start) == ("Moved", at(10, 11))
    assert by_uid[new_id].start == at(15, 9)
    assert changes.sync_token and changes.sync_token != window.sync_token

    again = await calendar.changes_since("AAMkCal1", changes.sync_token, W_START, W_END)
    assert (again.changed_uids, again.removed_uids) == (set(), set())

    with pytest.raises(SyncTokenExpired):  # a link elsewhere is never followed
        await calendar.changes_since("AAMkCal1", "https://evil.test/delta", W_START, W_END)
    fake.invalidate_delta_links()
    with pytest.raises(SyncTokenExpired):
        await calendar.changes_since("AAMkCal1", again.sync_token or "", W_START, W_END)


async def test_graph_create_and_delete_are_idempotent(
    graph: tuple[FakeGraph, str], client: httpx.AsyncClient
) -> None:
    fake, base = graph
    calendar = graph_client(client, fake, base)
    uid = "booking-7f3a@cortex"
    for _ in range(2):
        await calendar.create_event(
            "AAMkCal1", uid, at(14, 9), at(14, 10), "Intro call", "Booked", "eve@example.com"
        )
    [stored] = fake.events("AAMkCal1")
    assert stored["transactionId"] == uid
    assert stored["singleValueExtendedProperties"] == [{"id": UID_PROPERTY_ID, "value": uid}]
    assert stored["attendees"] == [
        {"emailAddress": {"address": "eve@example.com"}, "type": "required"}
    ]
    assert stored["subject"] == "Intro call"
    assert stored["body"] == {"contentType": "text", "content": "Booked"}

    # Graph's own deduplication: a retried POST with the same transactionId.
    token = fake.issue_token(ADA)
    url = f"{base}{GRAPH_API_PREFIX}/me/calendars/AAMkCal1/events"
    body = {
        "subject": "x",
        "start": {"dateTime": "2025-03-14T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2025-03-14T10:00:00", "timeZone": "UTC"},
        "transactionId": uid,
    }
    response = await client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201 and response.json()["id"] == stored["id"]

    await calendar.delete_event("AAMkCal1", uid)
    await calendar.delete_event("AAMkCal1", uid)
    assert fake.events("AAMkCal1") == []


async def test_graph_move_is_a_patch_of_the_same_event(
    graph: tuple[FakeGraph, str], client: httpx.AsyncClient
) -> None:
    fake, base = graph
    calendar = graph_client(client, fake, base)
    uid = "bk_move_graph"
    created = await calendar.create_event(
        "AAMkCal1", uid, at(14, 9), at(14, 10), "Intro call", "Booked", "eve@example.com"
    )
    [stored] = fake.events("AAMkCal1")
    assert created == stored["id"]  # its synced copy carries the Graph id
    # created again: the same answer
    assert await calendar.create_event("AAMkCal1", uid, at(14, 9), at(14, 10), "x") == created
    fake.prefer_headers.clear()

    moved = await calendar.move_event("AAMkCal1", uid, at(14, 15), at(14, 16))
    assert moved is not None
    assert [(e.uid, e.start, e.end, e.summary) for e in moved] == [
        (created, at(14, 15), at(14, 16), "Intro call")
    ]
    assert fake.prefer_headers == ['outlook.timezone="UTC"', 'outlook.timezone="UTC"']
    [stored] = fake.events("AAMkCal1")  # one event, the same id: moved, not duplicated
    assert stored["id"] == created
    assert stored["start"]["dateTime"].startswith("2025-03-14T15:00:00")
    assert stored["end"]["dateTime"].startswith("2025-03-14T16:00:00")
    assert stored["attendees"] == [
        {"emailAddress": {"address": "eve@example.com"}, "type": "required"}
    ]
    assert stored["subject"] == "Intro call"
    assert stored["body"] == {"contentType": "text", "content": "Booked"}
    assert stored["singleValueExtendedProperties"] == [{"id": UID_PROPERTY_ID, "value": uid}]

    # a sync lists it as the move answered it
    window = await calendar.fetch_window("AAMkCal1", W_START, W_END)
    assert window.events == moved

    # where it is: the same answer; new texts replace the event's
    assert await calendar.move_event("AAMkCal1", uid, at(14, 15), at(14, 16)) == moved
    again = await calendar.move_event("AAMkCal1", uid, at(14, 9), at(14, 10), "Call", "Moved")
    assert again is not None and [(e.start, e.summary) for e in again] == [(at(14, 9), "Call")]
    [stored] = fake.events("AAMkCal1")
    assert (stored["subject"], stored["body"]["content"]) == ("Call", "Moved")

    # no such event: None
    assert await calendar.move_event("AAMkCal1", "bk_never", at(14, 9), at(14, 10)) is None
    await calendar.delete_event("AAMkCal1", uid)
    assert await calendar.move_event("AAMkCal1", uid, at(14, 9), at(14, 10)) is None

    # a calendar the account may not change: refused, not "no such event"
    fake.add_calendar(ADA, "AAMkRO", "Shared", can_edit=False)
    fake.add_event(
        "AAMkRO",
        at(14, 9),
        at(14, 10),
        singleValueExtendedProperties=[{"id": UID_PROPERTY_ID, "value": "bk_ro"}],
    )
    with pytest.raises(ProviderError) as refused:
        await calendar.move_event("AAMkRO", "bk_ro", at(14, 11), at(14, 12))
    assert not isinstance(refused.value, CredentialsRejected | ProviderUnavailable)


async def test_graph_uid_with_quote(
    graph: tuple[FakeGraph, str], client: httpx.AsyncClient
) -> None:
    fake, base = graph
    calendar = graph_client(client, fake, base)
    await calendar.create_event("AAMkCal1", "o'brien", at(14, 9), at(14, 10), "Call")
    await calendar.create_event("AAMkCal1", "o'brien", at(14, 9), at(14, 10), "Call")
    assert len(fake.events("AAMkCal1")) == 1
    await calendar.delete_event("AAMkCal1", "o'brien")
    assert fake.events("AAMkCal1") == []


async def test_graph_read_only_calendar(
    graph: tuple[FakeGraph, str], client: httpx.AsyncClient
) -> None:
    fake, base = graph
    fake.add_calendar(ADA, "AAMkRO", "Shared", can_edit=False)
    with pytest.raises(ProviderError) as refused:
        await graph_client(client, fake, base).create_event(
            "AAMkRO", "u1", at(14, 9), at(14, 10), "Call"
        )
    assert not isinstance(refused.value, CredentialsRejected | ProviderUnavailable)


# -- unavailability ------------------------------------------------------------------------


@pytest.fixture
def broken() -> Iterator[str]:
    async def outage(request: Request) -> Response:
        return PlainTextResponse("upstream down", status_code=503)

    async def html(request: Request) -> Response:
        return PlainTextResponse("<html>captive portal</html>", media_type="text/html")

    app = Starlette(
        routes=[
            Route("/outage/{path:path}", outage, methods=["GET", "POST", "DELETE"]),
            Route("/html/{path:path}", html, methods=["GET", "POST", "DELETE"]),
        ]
    )
    base, stop = run_in_thread(app)
    yield base
    stop()


async def test_unreachable_or_broken_provider_is_unavailable(
    broken: str, client: httpx.AsyncClient
) -> None:
    dead = closed_port_url()
    token = static("t")
    for base in (dead, f"{broken}/outage", f"{broken}/html"):
        for calendar in (
            GoogleCalendar(client, base, access_token_provider=token),
            GraphCalendar(client, base, access_token_provider=token),
        ):
            with pytest.raises(ProviderUnavailable) as failure:
                await calendar.list_calendars()
            assert str(failure.value).endswith(".")
            with pytest.raises(ProviderUnavailable):
                await calendar.fetch_window("c", W_START, W_END)
            with pytest.raises(ProviderUnavailable):
                await calendar.create_event("c", "uid", at(14, 9), at(14, 10), "Call")
            with pytest.raises(ProviderUnavailable):
                await calendar.delete_event("c", "uid")
        endpoints = google_endpoints(
            "id", "secret", REDIRECT, authorize_url=f"{base}/authorize", token_url=f"{base}/token"
        )
        with pytest.raises(ProviderUnavailable):
            await exchange_code(client, endpoints, "code", "v" * 43)
        with pytest.raises(ProviderUnavailable):
            await refresh(client, endpoints, "refresh-token")


async def test_timeout_is_unavailable(client: httpx.AsyncClient) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        async with httpx.AsyncClient(timeout=0.3) as impatient:
            calendar = GoogleCalendar(impatient, base, access_token_provider=static("t"))
            with pytest.raises(ProviderUnavailable, match="timed out"):
                await calendar.list_calendars()
