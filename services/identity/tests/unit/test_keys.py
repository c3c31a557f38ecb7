"""API keys: ``sk_live_<12-char prefix>_<43 base64url chars>``, only a digest stored."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.identity import API_KEY_PATTERN
from identity.domain import keys
from identity.domain.rules import RuleViolation

PATTERN = re.compile(API_KEY_PATTERN)
BASE64URL = re.compile(r"^[A-Za-z0-9_-]{43}$")


def test_generate_makes_a_key_of_the_documented_shape() -> None:
    new = keys.generate()
    assert PATTERN.fullmatch(new.full)
    assert new.full.startswith(f"sk_live_{new.prefix}_")
    assert re.fullmatch(r"[a-z0-9]{12}", new.prefix)
    secret = new.full.split("_", 3)[3]
    assert BASE64URL.fullmatch(secret)
    raw = base64.urlsafe_b64decode(secret + "=")
    assert len(raw) == 32  # 256 bits
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == secret


def test_only_a_sha256_digest_of_the_secret_is_kept() -> None:
    new = keys.generate()
    secret = new.full.split("_", 3)[3]
    assert new.secret_hash == hashlib.sha256(secret.encode()).digest() == keys.digest(secret)
    assert len(new.secret_hash) == 32
    assert secret.encode() not in new.secret_hash


def test_parse_round_trips_and_matches() -> None:
    new = keys.generate()
    parsed = keys.parse(new.full)
    assert parsed is not None
    prefix, secret = parsed
    assert prefix == new.prefix
    assert f"sk_live_{prefix}_{secret}" == new.full
    assert keys.matches(secret, new.secret_hash)


def test_matches_refuses_another_secret() -> None:
    one, other = keys.generate(), keys.generate()
    one_secret = one.full.split("_", 3)[3]
    other_secret = other.full.split("_", 3)[3]
    assert not keys.matches(other_secret, one.secret_hash)
    assert not keys.matches(
        one_secret[:-1] + ("A" if one_secret[-1] != "A" else "B"), one.secret_hash
    )
    assert not keys.matches("", one.secret_hash)
    assert not keys.matches(one_secret, b"")


def test_two_keys_differ() -> None:
    made = [keys.generate() for _ in range(50)]
    assert len({k.full for k in made}) == 50
    assert len({k.prefix for k in made}) == 50
    assert len({k.full.split("_", 3)[3] for k in made}) == 50
    assert len({k.secret_hash for k in made}) == 50


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sk_live_",
        "sk_live_abc",
        "sk_live_abc123_",
        "sk_test_abcdefghijkl_" + "A" * 43,  # wrong mode
        "pk_live_abcdefghijkl_" + "A" * 43,
        "sk_live_ABCDEFGHIJKL_" + "A" * 43,  # uppercase prefix
        "sk_live_abcdefghijk_" + "A" * 43,  # 11-character prefix
        "sk_live_abcdefghijklm_" + "A" * 43,  # 13-character prefix
        "sk_live_abcdefghijkl_" + "A" * 42,  # short secret
        "sk_live_abcdefghijkl_" + "A" * 44,  # long secret
        "sk_live_abcdefghijkl_" + "A" * 42 + "=",  # padding is not base64url
        "sk_live_abcdefghijkl_" + "A" * 42 + "+",  # standard base64 alphabet
        " sk_live_abcdefghijkl_" + "A" * 43,
        "sk_live_abcdefghijkl_" + "A" * 43 + " ",
    ],
)
def test_parse_refuses_malformed_keys(bad: str) -> None:
    assert keys.parse(bad) is None


def test_parse_refuses_a_trailing_newline() -> None:
    """``$`` in the pattern also matches before a final newline; a key is the exact string."""
    new = keys.generate()
    assert keys.parse(new.full + "\n") is None


_prefixes = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=12)


@given(_prefixes, st.binary(min_size=32, max_size=32))
def test_any_well_formed_key_parses_back_to_its_parts_and_matches(prefix: str, raw: bytes) -> None:
    secret = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    full = f"sk_live_{prefix}_{secret}"
    assert PATTERN.fullmatch(full)
    assert keys.parse(full) == (prefix, secret)
    assert keys.matches(secret, keys.digest(secret))
    assert keys.matches(secret, hashlib.sha256(secret.encode()).digest())


@given(st.from_regex(API_KEY_PATTERN, fullmatch=True))
def test_parse_accepts_exactly_the_contract_pattern(full: str) -> None:
    parsed = keys.parse(full)
    assert parsed is not None
    assert f"sk_live_{parsed[0]}_{parsed[1]}" == full


@given(st.text(max_size=80))
def test_parse_of_arbitrary_text_is_none_or_the_exact_key(text: str) -> None:
    parsed = keys.parse(text)
    if parsed is not None:
        assert f"sk_live_{parsed[0]}_{parsed[1]}" == text


def test_a_key_name_is_cleaned_and_must_keep_a_visible_character() -> None:
    assert keys.check_name("  ci \u200b deploy\n") == "ci deploy"
    assert keys.check_name("k" * 150) == "k" * keys.NAME_MAX
    for bad in ("", "  ", "\u200b\x07"):
        with pytest.raises(RuleViolation) as refused:
            keys.check_name(bad)
        assert (refused.value.code, str(refused.value)) == ("invalid_name", "A key needs a name.")
