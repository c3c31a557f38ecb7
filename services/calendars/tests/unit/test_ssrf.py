"""SSRF defence for tenant-supplied server addresses (calendars.adapters.ssrf)."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calendars.adapters.ssrf import (
    ResponseRefused,
    ResponseTooLarge,
    SafeTransport,
    TotalTimeout,
    UrlRefused,
    UrlUnresolvable,
    check_url,
    is_public_address,
    parse_allow_list,
    resolve_allowed,
    safe_client,
    total_deadline,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

NAMES: dict[str, list[str]] = {
    "example.com": [PUBLIC_V4],
    "public.example": [PUBLIC_V4],
    "other.example": ["93.184.216.35"],
    "v6.example": [PUBLIC_V6],
    "dual.example": [PUBLIC_V4, PUBLIC_V6, PUBLIC_V4],
    "localhost": ["127.0.0.1"],
    "localhost.localdomain": ["127.0.0.1", "::1"],
    "internal.example": ["10.0.0.5"],
    "mixed.example": [PUBLIC_V4, "10.0.0.1"],
    "mixed6.example": [PUBLIC_V6, "fd12:3456::1"],
    "metadata.google.internal": ["169.254.169.254"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "rebind.example": ["127.0.0.1"],
    "cgnat.example": ["100.100.100.200"],
    "empty.example": [],
    "garbage.example": ["not-an-address"],
}


class FakeResolver:
    """Maps names to addresses; records lookups; unknown names fail like getaddrinfo."""

    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = dict(NAMES if names is None else names)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.names[host])


Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Recorder:
    """An inner transport (httpx.MockTransport) that records every request it receives."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler
        self.transport = httpx.MockTransport(self._handle)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._handler is not None:
            return await self._handler(request)
        return httpx.Response(200, text="ok")


def make_client(
    handler: Handler | None = None,
    *,
    allow: Sequence[str] = (),
    names: dict[str, list[str]] | None = None,
    **kwargs: object,
) -> tuple[httpx.AsyncClient, Recorder, FakeResolver]:
    recorder = Recorder(handler)
    resolver = FakeResolver(names)
    client = safe_client(
        allow=allow,
        inner=recorder.transport,
        resolver=resolver,
        **kwargs,  # type: ignore[arg-type]
    )
    return client, recorder, resolver


# --------------------------------------------------------------------------------------------
# Hostile URLs: every one is refused, and nothing reaches the network
# --------------------------------------------------------------------------------------------

HOSTILE = [
    # loopback, unspecified
    "http://127.0.0.1/",
    "http://127.0.0.1:5232/",
    "http://127.255.255.254/",
    "http://localhost/",
    "http://localhost.localdomain/",
    "http://LOCALHOST./",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    # RFC 1918, unique-local, link-local, cloud metadata
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "https://192.168.1.1:8443/dav/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[fc00::1]/",
    "http://[fec0::1]/",
    "http://[fe80::1%25eth0]/",
    # IPv6 forms embedding a private IPv4 address
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a00:1::1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b:1::1]/",
    "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
    "http://mapped.example/",
    # ambiguous IPv4 spellings
    "http://2130706433/",
    "http://017700000001/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0x7f.1/",
    "http://0/",
    "http://127.000.000.001/",
    "http://127.0.0.1./",
    "http://1.2.3.4.5/",
    "http://0x/",
    "http://foo.123/",
    "http://3232235777/",
    # multicast, shared, benchmarking, documentation, reserved, broadcast, discard
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://cgnat.example/",
    "http://192.0.0.8/",
    "http://198.18.0.1/",
    "http://198.19.255.255/",
    "http://192.0.2.1/",
    "http://198.51.100.7/",
    "http://203.0.113.9/",
    "http://[2001:db8::1]/",
    "http://[3fff::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[100::1]/",
    # scheme, userinfo, port, host
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://example.com:70/_GET%20/",
    "javascript:alert(1)",
    "dict://example.com:11211/",
    "//example.com/",
    "http://user:pw@example.com/",
    "http://user@example.com/",
    "http://example.com:0/",
    "http://example.com:65536/",
    "https://[::1]:99999/",
    "http:///etc/passwd",
    "http:example.com",
    "http://exa%6Dple.com/",
    "http://example.com/" + "a" * 2048,
    # resolution
    "http://internal.example/",
    "http://mixed.example/",
    "http://mixed6.example/",
    "http://rebind.example/",
    "http://does-not-exist.example/",
    "http://empty.example/",
    "http://garbage.example/",
]


def test_at_least_forty_hostile_urls() -> None:
    assert len(HOSTILE) >= 40
    assert len(set(HOSTILE)) == len(HOSTILE)


def _httpx_rejects(url: str) -> bool:
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return True
    return False


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_url_is_refused_before_any_connection(url: str) -> None:
    client, recorder, _ = make_client()
    async with client:
        # httpx itself rejects a few spellings (0177.0.0.1) while building the request
        expected = (UrlRefused, httpx.InvalidURL) if _httpx_rejects(url) else UrlRefused
        with pytest.raises(expected) as excinfo:
            await client.get(url)
    assert recorder.requests == []
    if isinstance(excinfo.value, UrlRefused):
        message = str(excinfo.value)
        assert message.startswith("The server")
        assert message.endswith(".")


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_url_refused_by_check_and_vet(url: str) -> None:
    resolver = FakeResolver()
    with pytest.raises(UrlRefused):
        parsed = check_url(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        await resolve_allowed(parsed.raw_host.decode(), port, (), resolver=resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://017700000001/",
        "http://0x7f000001/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0x7F.0.0.1/",
        "http://127.0.0.1./",
    ],
)
def test_ambiguous_ip_spellings_are_refused_syntactically(url: str) -> None:
    with pytest.raises(UrlRefused, match="ambiguous"):
        check_url(url)


def test_check_url_accepts_and_returns_httpx_url() -> None:
    url = check_url("https://Cal.Example.com:8443/dav/user/?x=1")
    assert isinstance(url, httpx.URL)
    assert url.host == "cal.example.com"
    assert url.port == 8443
    assert check_url("http://10.0.0.1/").host == "10.0.0.1"  # syntax only; vetting refuses it
    assert check_url("http://[2606:2800:220:1::1]/").host == "2606:2800:220:1::1"
    assert check_url("https://xn--r8jz45g.jp/").host == "例え.jp"
    assert check_url("http://1e100.net/").host == "1e100.net"


def test_check_url_messages() -> None:
    with pytest.raises(UrlRefused, match="http:// or https://"):
        check_url("ftp://example.com/")
    with pytest.raises(UrlRefused, match="user name or password"):
        check_url("http://user:pw@example.com/")
    with pytest.raises(UrlRefused, match="user name or password"):
        check_url("http://@example.com/")  # (httpx drops the empty user info by itself)
    with pytest.raises(UrlRefused, match="port"):
        check_url("http://example.com:0/")
    with pytest.raises(UrlRefused, match="too long"):
        check_url("http://example.com/" + "a" * 2048)
    with pytest.raises(UrlRefused, match="no host"):
        check_url("http:///path")
    with pytest.raises(UrlRefused, match="spaces"):
        check_url(" http://example.com/")
    assert issubclass(UrlRefused, ValueError)


# --------------------------------------------------------------------------------------------
# resolve_allowed
# --------------------------------------------------------------------------------------------


async def test_resolve_allowed_returns_vetted_addresses_deduplicated() -> None:
    resolver = FakeResolver()
    assert await resolve_allowed("dual.example", 443, (), resolver=resolver) == [
        PUBLIC_V4,
        PUBLIC_V6,
    ]
    assert resolver.calls == [("dual.example", 443)]


async def test_resolve_allowed_vets_ip_literals_without_resolving() -> None:
    resolver = FakeResolver()
    assert await resolve_allowed(PUBLIC_V4, 80, (), resolver=resolver) == [PUBLIC_V4]
    assert await resolve_allowed(f"[{PUBLIC_V6}]", 80, (), resolver=resolver) == [PUBLIC_V6]
    with pytest.raises(UrlRefused, match="private network"):
        await resolve_allowed("10.1.2.3", 80, (), resolver=resolver)
    assert resolver.calls == []


async def test_resolve_allowed_refuses_if_any_address_is_private() -> None:
    with pytest.raises(UrlRefused, match="private network"):
        await resolve_allowed("mixed.example", 80, (), resolver=FakeResolver())


async def test_resolve_allowed_unresolvable_is_a_refusal_subclass() -> None:
    with pytest.raises(UrlUnresolvable, match="could not be resolved"):
        await resolve_allowed("nope.example", 80, (), resolver=FakeResolver())


async def test_resolve_allowed_honours_allow_list() -> None:
    allow = parse_allow_list(["127.0.0.1/32", "fd00::/8"])
    resolver = FakeResolver()
    assert await resolve_allowed("localhost", 5232, allow, resolver=resolver) == ["127.0.0.1"]
    assert await resolve_allowed("fd00::1", 5232, allow, resolver=resolver) == ["fd00::1"]
    with pytest.raises(UrlRefused):
        await resolve_allowed("127.0.0.2", 5232, allow, resolver=resolver)
    with pytest.raises(UrlRefused):  # ::1 is not in the allow-list, only 127.0.0.1 is
        await resolve_allowed("localhost.localdomain", 5232, allow, resolver=resolver)


def test_parse_allow_list_rejects_host_bits() -> None:
    with pytest.raises(ValueError):
        parse_allow_list(["127.0.0.1/8"])


async def test_system_resolver_is_the_default() -> None:
    # "localhost" resolves through the real getaddrinfo to a loopback address: refused.
    with pytest.raises(UrlRefused):
        await resolve_allowed("localhost", 80, ())


# --------------------------------------------------------------------------------------------
# Pinning, Host header, SNI
# --------------------------------------------------------------------------------------------


async def test_public_request_is_pinned_to_the_vetted_ip() -> None:
    client, recorder, resolver = make_client()
    async with client:
        response = await client.get("http://example.com/dav/?a=b")
    assert response.status_code == 200
    assert response.text == "ok"
    assert str(response.url) == "http://example.com/dav/?a=b"
    (sent,) = recorder.requests
    assert str(sent.url) == f"http://{PUBLIC_V4}/dav/?a=b"
    assert sent.headers["host"] == "example.com"
    assert "sni_hostname" not in sent.extensions
    assert resolver.calls == [("example.com", 80)]


async def test_https_request_keeps_host_header_and_sets_sni() -> None:
    client, recorder, _ = make_client()
    async with client:
        await client.request("PROPFIND", "https://example.com:8443/dav/", headers={"Depth": "0"})
    (sent,) = recorder.requests
    assert sent.method == "PROPFIND"
    assert str(sent.url) == f"https://{PUBLIC_V4}:8443/dav/"
    assert sent.headers["host"] == "example.com:8443"
    assert sent.headers["depth"] == "0"
    assert sent.extensions["sni_hostname"] == "example.com"
    assert "timeout" in sent.extensions


async def test_ipv6_address_is_bracketed() -> None:
    client, recorder, _ = make_client()
    async with client:
        await client.get("https://v6.example/")
    (sent,) = recorder.requests
    assert str(sent.url) == f"https://[{PUBLIC_V6}]/"
    assert sent.url.host == PUBLIC_V6
    assert sent.headers["host"] == "v6.example"
    assert sent.extensions["sni_hostname"] == "v6.example"


async def test_request_body_and_auth_are_forwarded() -> None:
    bodies: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(await request.aread())
        return httpx.Response(207, text="<multistatus/>")

    client, recorder, _ = make_client(handler)
    async with client:
        response = await client.request(
            "REPORT", "https://example.com/cal/", content=b"<report/>", auth=("u", "p")
        )
    assert response.status_code == 207
    assert bodies == [b"<report/>"]
    assert recorder.requests[0].headers["authorization"].startswith("Basic ")


async def test_allow_list_lets_local_radicale_through() -> None:
    client, recorder, _ = make_client(allow=["127.0.0.1/32"])
    async with client:
        assert (await client.get("http://127.0.0.1:5232/")).status_code == 200
        assert (await client.get("http://localhost:5232/user/")).status_code == 200
        with pytest.raises(UrlRefused):
            await client.get("http://127.0.0.2:5232/")
        with pytest.raises(UrlRefused):
            await client.get("http://10.0.0.1/")
    assert [str(r.url) for r in recorder.requests] == [
        "http://127.0.0.1:5232/",
        "http://127.0.0.1:5232/user/",
    ]
    assert recorder.requests[1].headers["host"] == "localhost:5232"


async def test_each_pool_is_per_original_host() -> None:
    transport = SafeTransport(
        resolver=FakeResolver({"a.example": [PUBLIC_V4], "b.example": [PUBLIC_V4]})
    )
    try:
        first = await transport._acquire(("https", "a.example", 443))
        second = await transport._acquire(("https", "b.example", 443))
        again = await transport._acquire(("https", "a.example", 443))
        assert first is again
        assert first.transport is not second.transport
    finally:
        await transport.aclose()


async def test_real_transport_reaches_allowed_local_server() -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with safe_client(allow=["127.0.0.1/32"], resolver=FakeResolver()) as client:
            response = await client.get(f"http://localhost:{port}/dav/")
        assert response.text == "hi"
        assert f"Host: localhost:{port}".encode() in seen[0]
        assert seen[0].startswith(b"GET /dav/ HTTP/1.1")
        async with safe_client() as client:
            with pytest.raises(UrlRefused):
                await client.get(f"http://127.0.0.1:{port}/")
        assert len(seen) == 1
    finally:
        server.close()
        await server.wait_closed()


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_to_pinned_ip_verifies_the_original_name(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path, "cal.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_path, key_path)
    sni: list[str | None] = []

    def record_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        sni.append(name)

    server_ctx.sni_callback = record_sni

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    names = {"cal.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
    try:
        async with safe_client(
            allow=["127.0.0.1/32"], resolver=FakeResolver(names), verify=client_ctx
        ) as client:
            response = await client.get(f"https://cal.test:{port}/")
            assert response.text == "ok"
            assert sni == ["cal.test"]
            # same IP, other name: the certificate does not match, and no connection is reused
            with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
                await client.get(f"https://other.test:{port}/")
    finally:
        server.close()
        await server.wait_closed()


# --------------------------------------------------------------------------------------------
# Redirects: every hop is checked again
# --------------------------------------------------------------------------------------------


async def test_redirect_to_internal_host_is_refused_at_second_hop() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://internal.example/"})

    client, recorder, resolver = make_client(handler)
    async with client:
        with pytest.raises(UrlRefused, match="private network"):
            await client.get("http://public.example/")
    assert len(recorder.requests) == 1
    assert recorder.requests[0].headers["host"] == "public.example"
    assert resolver.calls == [("public.example", 80), ("internal.example", 80)]


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://0x7f000001/",
        "file:///etc/passwd",
        "http://mixed.example/",
    ],
)
async def test_redirect_to_hostile_location_is_refused(location: str) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": location})

    client, recorder, _ = make_client(handler)
    async with client:
        with pytest.raises((UrlRefused, httpx.UnsupportedProtocol)):
            await client.get("https://public.example/")
    assert len(recorder.requests) == 1


async def test_allowed_redirects_are_followed_and_pinned() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/":
            return httpx.Response(302, headers={"Location": "/moved"})
        if request.url.path == "/moved":
            return httpx.Response(307, headers={"Location": "https://other.example/final"})
        return httpx.Response(200, text="done")

    client, recorder, _ = make_client(handler)
    async with client:
        response = await client.get("https://public.example/", auth=("u", "p"))
    assert response.text == "done"
    assert str(response.url) == "https://other.example/final"
    assert [str(r.url) for r in recorder.requests] == [
        f"https://{PUBLIC_V4}/",
        f"https://{PUBLIC_V4}/moved",
        "https://93.184.216.35/final",
    ]
    assert [r.headers["host"] for r in recorder.requests] == [
        "public.example",
        "public.example",
        "other.example",
    ]
    # httpx drops credentials when a redirect leaves the origin
    assert "authorization" in recorder.requests[1].headers
    assert "authorization" not in recorder.requests[2].headers


async def test_too_many_redirects() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "/again"})

    client, recorder, _ = make_client(handler, max_redirects=2)
    async with client:
        with pytest.raises(httpx.TooManyRedirects):
            await client.get("http://public.example/")
    assert len(recorder.requests) == 3


# --------------------------------------------------------------------------------------------
# Response size cap
# --------------------------------------------------------------------------------------------


class ChunkStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], delay: float = 0.0) -> None:
        self.chunks = chunks
        self.delay = delay
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.read += 1
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


async def test_response_bigger_than_cap_fails() -> None:
    stream = ChunkStream([b"x" * 400] * 5)

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    client, _, _ = make_client(handler, max_response_bytes=1000)
    async with client:
        with pytest.raises(ResponseTooLarge, match="too large"):
            await client.get("http://example.com/")
    assert stream.read == 3
    assert stream.closed


async def test_response_at_cap_is_fine() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=ChunkStream([b"x" * 500, b"y" * 500]))

    client, _, _ = make_client(handler, max_response_bytes=1000)
    async with client:
        response = await client.get("http://example.com/")
    assert response.content == b"x" * 500 + b"y" * 500


async def test_content_length_over_cap_fails_before_reading() -> None:
    stream = ChunkStream([b"x" * 10])

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "1001"}, stream=stream)

    client, recorder, _ = make_client(handler, max_response_bytes=1000)
    async with client:
        with pytest.raises(ResponseTooLarge):
            await client.get("http://example.com/")
    assert len(recorder.requests) == 1
    assert stream.read == 0
    assert stream.closed


async def test_streamed_response_is_capped_too() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=ChunkStream([b"x" * 600] * 3))

    client, _, _ = make_client(handler, max_response_bytes=1000)
    async with client, client.stream("GET", "http://example.com/") as response:
        received = b""
        with pytest.raises(ResponseTooLarge):
            async for chunk in response.aiter_bytes():
                received += chunk
    assert received == b"x" * 600


async def test_gzip_bomb_is_capped_after_decoding() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=bomb)

    client, recorder, _ = make_client(handler, max_response_bytes=100_000)
    async with client:
        with pytest.raises(ResponseTooLarge):
            await client.get("http://example.com/")
    assert recorder.requests[0].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw"])
async def test_compressed_response_within_cap_is_decoded(encoding: str) -> None:
    import zlib

    body = b"BEGIN:VCALENDAR\r\n" * 100
    if encoding == "gzip":
        data = gzip.compress(body)
    elif encoding == "deflate":
        data = zlib.compress(body)
    else:
        raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = raw.compress(body) + raw.flush()
    header = encoding.removesuffix("-raw")

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": header}, content=data)

    client, _, _ = make_client(handler, max_response_bytes=10_000)
    async with client:
        response = await client.get("http://example.com/")
    assert response.content == body
    assert "content-encoding" not in response.headers


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
async def test_unsupported_encodings_are_refused(encoding: str) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": encoding}, stream=ChunkStream([b"??"])
        )

    client, _, _ = make_client(handler)
    async with client:
        with pytest.raises(ResponseRefused):
            await client.get("http://example.com/")


async def test_corrupt_gzip_is_refused() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=ChunkStream([b"not gzip"])
        )

    client, _, _ = make_client(handler)
    async with client:
        with pytest.raises(ResponseRefused, match="decoded"):
            await client.get("http://example.com/")


async def test_head_with_large_content_length_is_fine() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "99999999"})

    client, _, _ = make_client(handler, max_response_bytes=1000)
    async with client:
        assert (await client.head("http://example.com/")).status_code == 200


# --------------------------------------------------------------------------------------------
# Total timeout
# --------------------------------------------------------------------------------------------


async def test_total_timeout_covers_slow_headers() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    client, _, _ = make_client(handler, total_timeout=0.05)
    async with client:
        with pytest.raises(TotalTimeout):
            await client.get("http://example.com/")


async def test_total_timeout_covers_slow_body() -> None:
    stream = ChunkStream([b"x"] * 100, delay=0.02)

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    client, _, _ = make_client(handler, total_timeout=0.15)
    async with client:
        with pytest.raises(TotalTimeout):
            await client.get("http://example.com/")
    assert 0 < stream.read < 100
    assert stream.closed


async def test_total_timeout_covers_slow_resolution() -> None:
    async def slow_resolver(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return [PUBLIC_V4]

    recorder = Recorder()
    client = safe_client(inner=recorder.transport, resolver=slow_resolver, total_timeout=0.05)
    async with client:
        with pytest.raises(TotalTimeout):
            await client.get("http://example.com/")
    assert recorder.requests == []


async def test_total_deadline_bounds_a_whole_operation() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.04)
        return httpx.Response(302, headers={"Location": "/next"})

    client, recorder, _ = make_client(handler, max_redirects=50)
    async with client:
        with pytest.raises(TotalTimeout):
            async with total_deadline(0.1):
                await client.get("http://example.com/")
    assert 1 <= len(recorder.requests) < 10


def test_safe_client_configuration() -> None:
    client = safe_client(allow=["127.0.0.1/32"])
    assert client.follow_redirects is True
    assert client.max_redirects == 5
    assert client.timeout.connect == 5.0
    assert client.timeout.read == 15.0
    with pytest.raises(TypeError):
        safe_client(proxy="http://proxy.example:3128")
    with pytest.raises(TypeError):
        safe_client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

PRIVATE_NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "2001:db8::/32",
    )
]


def _address_in(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> st.SearchStrategy[str]:
    low, high = int(network.network_address), int(network.broadcast_address)
    return st.integers(low, high).map(lambda n: str(ipaddress.ip_address(n)))


def _embedding(v4: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    n = int(v4)
    return st.sampled_from(
        [
            str(v4),
            f"::ffff:{v4}",
            str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1)),
            str(ipaddress.IPv6Address((0x64FF9B << 96) | n)),
        ]
    )


def _url(address: str) -> str:
    return f"http://[{address}]/" if ":" in address else f"http://{address}/"


async def _refused_without_connection(url: str, resolver: FakeResolver | None = None) -> None:
    recorder = Recorder()
    client = safe_client(inner=recorder.transport, resolver=resolver or FakeResolver())
    async with client:
        with pytest.raises(UrlRefused):
            await client.get(url)
    assert recorder.requests == []


private_address = st.sampled_from(PRIVATE_NETWORKS).flatmap(_address_in)
private_v4 = st.sampled_from([n for n in PRIVATE_NETWORKS if n.version == 4]).flatmap(_address_in)


@settings(max_examples=200)
@given(address=private_address)
async def test_property_private_literal_is_refused(address: str) -> None:
    await _refused_without_connection(_url(address))


@settings(max_examples=200)
@given(address=private_v4.map(ipaddress.IPv4Address).flatmap(_embedding))
async def test_property_private_v4_in_any_v6_embedding_is_refused(address: str) -> None:
    await _refused_without_connection(_url(address))


@settings(max_examples=100)
@given(address=private_address, public=st.just(PUBLIC_V4), private_first=st.booleans())
async def test_property_name_with_any_private_address_is_refused(
    address: str, public: str, private_first: bool
) -> None:
    answers = [address, public] if private_first else [public, address]
    await _refused_without_connection(
        "https://host.example/", FakeResolver({"host.example": answers})
    )


EXTRA_REFUSED_V4 = [ipaddress.IPv4Network(n) for n in ("192.0.0.0/24", "192.88.99.0/24")]


def _is_ordinary_global_v4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global per ``ipaddress``, minus the ranges the module refuses on top of it."""
    return (
        address.is_global
        and not address.is_multicast
        and not any(address in net for net in EXTRA_REFUSED_V4)
    )


@settings(max_examples=300)
@given(address=st.ip_addresses(v=4).filter(_is_ordinary_global_v4))
async def test_property_global_v4_passes_and_is_pinned(address: ipaddress.IPv4Address) -> None:
    assert is_public_address(address)
    recorder = Recorder()
    resolver = FakeResolver({"cal.example": [str(address)]})
    client = safe_client(inner=recorder.transport, resolver=resolver)
    async with client:
        assert (await client.get(f"http://{address}/")).status_code == 200
        assert (await client.get("https://cal.example/")).status_code == 200
    assert [str(r.url) for r in recorder.requests] == [f"http://{address}/", f"https://{address}/"]


@given(address=st.ip_addresses())
def test_property_public_implies_global(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    if is_public_address(address):
        assert address.is_global or (address.version == 6 and address.ipv4_mapped is not None)
        assert not address.is_private
        assert not address.is_multicast


@given(number=st.integers(0, 2**32 - 1), style=st.sampled_from(["dec", "hex", "oct", "short"]))
def test_property_numeric_ipv4_spellings_are_refused(number: int, style: str) -> None:
    octets = ipaddress.IPv4Address(number).packed
    if style == "dec":
        host = str(number)
    elif style == "hex":
        host = hex(number)
    elif style == "oct":
        host = ".".join(f"0{o:o}" for o in octets)
    else:
        host = f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}"
    with pytest.raises(UrlRefused, match="ambiguous"):
        check_url(f"http://{host}/")


# --------------------------------------------------------------------------------------------
# Denied endpoints: ports refused even on a network the allow-list opens (cortex up's own)
# --------------------------------------------------------------------------------------------


def test_parse_denied_endpoints() -> None:
    from calendars.adapters.ssrf import Endpoint, parse_denied_endpoints

    parsed = parse_denied_endpoints(
        ["127.0.0.0/8:14222", "::1/128:14222", "[::1]:15432", "127.0.0.1:8000", " 10.0.0.0/8:5432 "]
    )
    assert parsed == (
        Endpoint(ipaddress.ip_network("127.0.0.0/8"), 14222),
        Endpoint(ipaddress.ip_network("::1/128"), 14222),
        Endpoint(ipaddress.ip_network("::1/128"), 15432),
        Endpoint(ipaddress.ip_network("127.0.0.1/32"), 8000),
        Endpoint(ipaddress.ip_network("10.0.0.0/8"), 5432),
    )
    for wrong in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "localhost:4222", ":4222"):
        with pytest.raises(ValueError):
            parse_denied_endpoints([wrong])


async def test_denied_endpoint_is_refused_although_its_network_is_allowed() -> None:
    allow = parse_allow_list(["127.0.0.0/8", "::1/128"])
    deny = ["127.0.0.0/8:14222", "::1/128:14222"]
    resolver = FakeResolver()
    for host in ("127.0.0.1", "127.0.0.53", "[::1]", "localhost", "localhost.localdomain"):
        with pytest.raises(UrlRefused, match="reserved"):
            await resolve_allowed(host, 14222, allow, deny=deny, resolver=resolver)
    # another port of the same networks stays allowed: a local Radicale
    assert await resolve_allowed("localhost", 5232, allow, deny=deny, resolver=resolver) == [
        "127.0.0.1"
    ]
    assert await resolve_allowed("[::1]", 5232, allow, deny=deny, resolver=resolver) == ["::1"]


async def test_denied_endpoint_is_refused_on_a_public_address_and_when_mapped() -> None:
    deny = [f"{PUBLIC_V4}/32:443"]
    with pytest.raises(UrlRefused, match="reserved"):
        await resolve_allowed("example.com", 443, (), deny=deny, resolver=FakeResolver())
    assert await resolve_allowed("example.com", 80, (), deny=deny, resolver=FakeResolver()) == [
        PUBLIC_V4
    ]
    allow = parse_allow_list(["::ffff:0:0/96", "127.0.0.0/8"])
    with pytest.raises(UrlRefused, match="reserved"):  # ::ffff:127.0.0.1 reaches 127.0.0.1
        await resolve_allowed(
            "[::ffff:127.0.0.1]", 14222, allow, deny=["127.0.0.0/8:14222"], resolver=FakeResolver()
        )


async def test_denied_endpoint_is_refused_by_the_client_before_any_connection() -> None:
    client, recorder, _ = make_client(
        allow=["127.0.0.0/8"], deny=["127.0.0.0/8:14222", "127.0.0.0/8:15432"]
    )
    async with client:
        assert (await client.get("http://127.0.0.1:5232/")).status_code == 200
        for url in ("http://127.0.0.1:14222/", "http://localhost:15432/"):
            with pytest.raises(UrlRefused):
                await client.get(url)

    async def to_nats(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:14222/"})

    redirecting, hops, _ = make_client(to_nats, allow=["127.0.0.0/8"], deny=["127.0.0.0/8:14222"])
    async with redirecting:
        with pytest.raises(UrlRefused):  # a redirect hop is vetted the same way
            await redirecting.get("http://127.0.0.1:5232/")
    assert [str(r.url) for r in recorder.requests] == ["http://127.0.0.1:5232/"]
    assert [str(r.url) for r in hops.requests] == ["http://127.0.0.1:5232/"]
