"""The signed ticket and cookies that bind an OAuth flow to a browser (gateway.oauth_binding)."""

from __future__ import annotations

import pytest

from cortex_runtime.errors import ServiceError
from gateway.oauth_binding import OAuthBinding, consent_page
from gateway.settings import GatewaySettings

NOW = 1_800_000_000.0
URL = "https://accounts.example/authorize?state=s1&client_id=c"


def test_a_ticket_opens_for_its_provider_until_it_expires() -> None:
    binding = OAuthBinding("secret", lifetime_seconds=600)
    ticket = binding.issue_ticket("s1", "google", URL, "tn_1", now=NOW)
    opened = binding.open_ticket(ticket, "google", now=NOW + 599)
    assert (opened.state, opened.provider, opened.provider_url, opened.tenant_id) == (
        "s1", "google", URL, "tn_1",
    )  # fmt: skip
    for provider, at in (("outlook", NOW), ("google", NOW + 600)):
        with pytest.raises(ServiceError) as refused:
            binding.open_ticket(ticket, provider, now=at)
        assert refused.value.code == "invalid_ticket"


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another signature
        lambda t: "eyJzIjoieCJ9." + t.partition(".")[2],  # another body, the same signature
        lambda t: t.partition(".")[0],  # no signature
        lambda t: "",
        lambda t: "...",
        lambda t: OAuthBinding("another secret").issue_ticket("s1", "google", URL, "tn_1"),
    ],
)
def test_a_ticket_the_gateway_did_not_sign_is_refused(forge) -> None:  # type: ignore[no-untyped-def]
    binding = OAuthBinding("secret")
    ticket = binding.issue_ticket("s1", "google", URL, "tn_1")
    with pytest.raises(ServiceError) as refused:
        binding.open_ticket(forge(ticket), "google")
    assert refused.value.code == "invalid_ticket"


def test_a_cookie_matches_its_own_flow_and_purpose_only() -> None:
    binding = OAuthBinding("secret", lifetime_seconds=600)
    ticket = binding.open_ticket(
        binding.issue_ticket("s1", "google", URL, "tn_1", now=NOW), "google", now=NOW
    )
    bind = binding.cookie("bind", ticket)
    assert binding.cookie_matches("bind", "google", "s1", bind, now=NOW + 1)
    assert not binding.cookie_matches("bind", "google", "s2", bind, now=NOW + 1)  # another state
    assert not binding.cookie_matches("bind", "outlook", "s1", bind, now=NOW + 1)
    assert not binding.cookie_matches("confirm", "google", "s1", bind, now=NOW + 1)
    assert not binding.cookie_matches("bind", "google", "s1", bind, now=NOW + 600)  # expired
    assert not binding.cookie_matches("bind", "google", "s1", None, now=NOW)
    later = str(int(NOW) + 10_000) + "." + bind.partition(".")[2]  # a longer life, same MAC
    assert not binding.cookie_matches("bind", "google", "s1", later, now=NOW)
    assert not OAuthBinding("another").cookie_matches("bind", "google", "s1", bind, now=NOW)


def test_the_binding_secret_is_refused_at_its_development_default_in_production() -> None:
    with pytest.raises(ValueError, match="CORTEX_GATEWAY_OAUTH_BINDING_SECRET"):
        GatewaySettings(env="production")
    with pytest.raises(ValueError, match="CORTEX_GATEWAY_MANAGE_LINK_SECRET"):
        GatewaySettings(env="production", oauth_binding_secret="a real one")
    real = {"oauth_binding_secret": "a real one", "manage_link_secret": "another real one"}
    assert GatewaySettings(env="production", **real).env == "production"  # type: ignore[arg-type]
    assert GatewaySettings(env="development").oauth_binding_secret.get_secret_value()


def test_the_page_escapes_what_it_shows() -> None:
    page = consent_page("google", "<script>x</script>", "a&b@example.com", 'https://gw/?t="1"&c=1')
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    assert "a&amp;b@example.com" in page
    assert 'href="https://gw/?t=&quot;1&quot;&amp;c=1"' in page
