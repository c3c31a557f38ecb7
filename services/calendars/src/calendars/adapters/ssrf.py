"""SSRF defence for the server addresses tenants give us (CalDAV ``server_url``).

The calendars service connects to whatever server a tenant names, so every outgoing request goes
through :class:`SafeTransport`:

* :func:`check_url` refuses anything but a plain ``http``/``https`` URL with a host name or a
  canonical IP address: no user info, no odd port, no IPv4 spelled in decimal, octal, hex or short
  form (``http://2130706433/``, ``0x7f.0.0.1``, ``127.1``), at most 2048 characters.
* :func:`resolve_allowed` resolves the host and refuses it if *any* address is not a public
  unicast address (loopback, RFC 1918, link-local and cloud metadata, unique-local, multicast,
  shared, benchmarking, documentation, reserved, and IPv6 forms that embed such an IPv4 address).
  Networks in an explicit allow-list (a setting; development points it at ``127.0.0.1/32`` for a
  local Radicale) pass even when private.
* Endpoints in a deny-list (:class:`Endpoint`: a network and a port) are refused whatever the
  allow-list says: ``cortex up`` opens loopback for a local Radicale but denies the ports of the
  servers it started itself (NATS, PostgreSQL, the gateways).
* The request is then sent to the first vetted address, so a DNS answer that changes between the
  check and the connect (DNS rebinding) cannot redirect it. The ``Host`` header keeps the original
  name and, for https, TLS verifies the certificate against the original name (``sni_hostname``).
* This happens for every request the client sends, hence for every redirect hop it follows.
* Response bodies are capped (:class:`ResponseTooLarge`), after decompression: the transport
  decodes gzip/deflate itself so a small compressed body cannot expand past the cap.
* ``total_timeout`` bounds each hop: resolution, connection, headers and the body read together.
  A deadline over a whole operation (all hops) is :func:`total_deadline`.

Use :func:`safe_client` to get a configured :class:`httpx.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_URL_LENGTH",
    "Endpoint",
    "IPAddress",
    "IPNetwork",
    "Resolver",
    "ResponseRefused",
    "ResponseTooLarge",
    "SafeTransport",
    "TotalTimeout",
    "UrlRefused",
    "UrlUnresolvable",
    "check_url",
    "is_public_address",
    "parse_allow_list",
    "parse_denied_endpoints",
    "resolve_allowed",
    "safe_client",
    "system_resolver",
    "total_deadline",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``resolver(host, port)`` returns the IP addresses (as strings) the host name resolves to."""

MAX_URL_LENGTH = 2048
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlRefused(ValueError):
    """The server address (or what it answered) is refused; ``str(exc)`` is safe to show."""


class UrlUnresolvable(UrlRefused):
    """The host name does not resolve (may be transient: a DNS failure)."""


class ResponseRefused(UrlRefused):
    """The server's response is refused (too large, undecodable)."""


class ResponseTooLarge(ResponseRefused):
    """The response body is larger than the configured cap."""


class TotalTimeout(httpx.TimeoutException):
    """The request (resolution, connection, headers and body) exceeded its total time budget."""


# --------------------------------------------------------------------------------------------
# Syntactic checks
# --------------------------------------------------------------------------------------------

_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?P<authority>[^/?#]*)")
_LABEL = re.compile(r"^[a-z0-9_-]{1,63}$")
_HEX_NUMBER = re.compile(r"^0x[0-9a-f]*$")


def check_url(url: str | httpx.URL) -> httpx.URL:
    """Parse and check a server address; return it as an :class:`httpx.URL`.

    Only syntax is checked here: a canonical private IP literal such as ``http://10.0.0.1/``
    passes, and is refused by :func:`resolve_allowed`.
    """
    text = str(url)
    if len(text) > MAX_URL_LENGTH:
        raise UrlRefused("The server address is too long.")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in text):
        raise UrlRefused("The server address must not contain spaces or control characters.")
    match = _AUTHORITY.match(text)
    if match is not None:
        # httpx rejects some ambiguous IPv4 spellings (0177.0.0.1) itself: say why.
        host = match.group("authority").rpartition("@")[2]
        if not host.startswith("["):
            _check_numeric_host(host.partition(":")[0].lower())
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise UrlRefused("The server address is not a valid URL.") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise UrlRefused("The server address must start with http:// or https://.")
    if match is None or not parsed.raw_host:
        raise UrlRefused("The server address has no host name.")
    if parsed.userinfo or "@" in match.group("authority"):
        raise UrlRefused("The server address must not contain a user name or password.")
    port = parsed.port
    if port is not None and not 1 <= port <= 65535:
        raise UrlRefused("The server address has an invalid port.")
    _check_host(parsed.raw_host.decode("ascii"))
    return parsed


def _check_host(host: str) -> None:
    """Refuse a host that is not a valid DNS name, canonical IPv4 address or IPv6 address."""
    if ":" in host:  # an IPv6 literal (without its brackets)
        if "%" in host:
            raise UrlRefused("The server address must not contain an IPv6 zone.")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlRefused("The server address has an invalid host name.") from None
        return
    if _ends_in_number(host):
        _check_numeric_host(host)
        return
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UrlRefused("The server address has an invalid host name.")


def _check_numeric_host(host: str) -> None:
    """WHATWG URL: a host whose last label is numeric is an IPv4 address. Only the canonical
    dotted quad is accepted: other spellings (2130706433, 0177.0.0.1, 0x7f.1, 127.1) are read
    differently by different parsers and resolvers."""
    if not _ends_in_number(host):
        return
    try:
        canonical = str(ipaddress.IPv4Address(host))
    except ValueError:
        canonical = None
    if canonical != host:
        raise UrlRefused(
            "The server address spells an IP address in an ambiguous form; "
            "write it as four decimal numbers, like 192.0.2.10."
        )


def _ends_in_number(host: str) -> bool:
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    last = labels[-1]
    return (last != "" and last.isascii() and last.isdigit()) or bool(_HEX_NUMBER.match(last))


# --------------------------------------------------------------------------------------------
# Address vetting
# --------------------------------------------------------------------------------------------

_V4_REFUSED = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation TEST-NET-2
        "203.0.113.0/24",  # documentation TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)
_V6_REFUSED = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/96",  # unspecified, loopback, IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped (judged by the mapped address before this list)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique-local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _ipv4_is_public(address: ipaddress.IPv4Address) -> bool:
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_unspecified
        and not any(address in net for net in _V4_REFUSED)
    )


def _ipv6_is_public(address: ipaddress.IPv6Address) -> bool:
    mapped = address.ipv4_mapped
    if mapped is not None:  # ::ffff:a.b.c.d reaches a.b.c.d
        return _ipv4_is_public(mapped)
    embedded: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)
    if address in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if not all(_ipv4_is_public(v4) for v4 in embedded):
        return False
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_site_local
        and not address.is_unspecified
        and not any(address in net for net in _V6_REFUSED)
    )


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address that tenants' servers may use."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_is_public(address)
    return _ipv6_is_public(address)


def parse_allow_list(allow: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings (``"127.0.0.1/32"``); a network with host bits set is an error."""
    return tuple(
        net if not isinstance(net, str) else ipaddress.ip_network(net.strip(), strict=True)
        for net in allow
    )


@dataclass(frozen=True)
class Endpoint:
    """A port on a network (``127.0.0.0/8:4222``): refused even where the network is allowed."""

    network: IPNetwork
    port: int

    def holds(self, address: IPAddress, port: int) -> bool:
        if port != self.port:
            return False
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return address in self.network or (mapped is not None and mapped in self.network)

    def __str__(self) -> str:
        return f"{self.network}:{self.port}"


def parse_denied_endpoints(deny: Iterable[str | Endpoint]) -> tuple[Endpoint, ...]:
    """Parse ``network:port`` strings: ``127.0.0.0/8:4222``, ``::1/128:4222``, ``[::1]:4222``,
    ``127.0.0.1:8000`` (an address alone is its /32 or /128). Anything else is a ValueError."""
    endpoints = []
    for entry in deny:
        if isinstance(entry, Endpoint):
            endpoints.append(entry)
            continue
        text = entry.strip()
        network_text, _, port_text = text.rpartition(":")
        network_text = network_text.removeprefix("[").replace("]", "")
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535 or not network_text:
            raise ValueError(f"not a network:port endpoint: {text!r}")
        network = ipaddress.ip_network(network_text, strict=True)
        endpoints.append(Endpoint(network, int(port_text)))
    return tuple(endpoints)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the event loop's ``getaddrinfo`` (TCP addresses, IPv4 and IPv6)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def resolve_allowed(
    host: str,
    port: int,
    allow: Sequence[IPNetwork],
    *,
    deny: Iterable[str | Endpoint] = (),
    resolver: Resolver | None = None,
) -> list[str]:
    """Resolve ``host`` and return its addresses, refusing if any one is not public.

    An address inside a network of ``allow`` passes even when it is not public, unless it is,
    with ``port``, an endpoint of ``deny``. An IP literal is vetted without resolving. Raises
    :class:`UrlRefused` (:class:`UrlUnresolvable` when the name does not resolve).
    """
    denied = parse_denied_endpoints(deny)
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    _check_host(host)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates: Sequence[str] = [host]
    else:
        try:
            candidates = await (resolver or system_resolver)(host.removesuffix("."), port)
        except (OSError, UnicodeError):
            raise UrlUnresolvable("The server address could not be resolved.") from None
    vetted: list[str] = []
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate.split("%", 1)[0])
        except ValueError:
            raise UrlRefused("The server address resolves to an invalid address.") from None
        if any(endpoint.holds(address, port) for endpoint in denied):
            raise UrlRefused("The server address is a port reserved for this system's own servers.")
        if not any(address in net for net in allow) and not is_public_address(address):
            raise UrlRefused("The server address resolves to a private network address.")
        text = str(address)
        if text not in vetted:
            vetted.append(text)
    if not vetted:
        raise UrlUnresolvable("The server address could not be resolved.")
    return vetted


# --------------------------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------------------------


class _Inflater:
    """Incremental gzip/deflate decoder whose output per call is bounded."""

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._first = True
        wbits = zlib.MAX_WBITS if self._deflate else 16 + zlib.MAX_WBITS
        self._obj = zlib.decompressobj(wbits)

    def decode(self, data: bytes, budget: int) -> bytes:
        """Decode ``data``; the result exceeds ``budget`` only if the body is too large."""
        try:
            out = self._obj.decompress(data, budget + 1)
        except zlib.error:
            if not (self._deflate and self._first):
                raise ResponseRefused("The server's response could not be decoded.") from None
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            try:
                out = self._obj.decompress(data, budget + 1)
            except zlib.error:
                raise ResponseRefused("The server's response could not be decoded.") from None
        self._first = False
        return out

    def flush(self) -> bytes:
        try:
            return self._obj.flush()
        except zlib.error:
            raise ResponseRefused("The server's response could not be decoded.") from None


def _inflater_for(content_encoding: str | None) -> _Inflater | None:
    if content_encoding is None:
        return None
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in {"gzip", "x-gzip", "deflate"}:
        return _Inflater(codings[0])
    raise ResponseRefused("The server's response uses an unsupported content encoding.")


class _CappedStream(httpx.AsyncByteStream):
    """The response body: at most ``limit`` bytes (raw and decoded), before ``deadline``."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        *,
        limit: int,
        deadline: float | None,
        inflater: _Inflater | None,
        on_close: Callable[[], None],
        request: httpx.Request,
    ) -> None:
        self._inner = inner
        self._limit = limit
        self._deadline = deadline
        self._inflater = inflater
        self._on_close = on_close
        self._request = request
        self._closed = False

    def _too_large(self) -> ResponseTooLarge:
        return ResponseTooLarge("The server's response is too large.")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._inner)
        raw = decoded = 0
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise TotalTimeout(
                    "The server did not answer in time.", request=self._request
                ) from None
            raw += len(chunk)
            if raw > self._limit:
                raise self._too_large()
            if self._inflater is not None:
                chunk = self._inflater.decode(chunk, self._limit - decoded)
            decoded += len(chunk)
            if decoded > self._limit:
                raise self._too_large()
            if chunk:
                yield chunk
        if self._inflater is not None:
            tail = self._inflater.flush()
            if decoded + len(tail) > self._limit:
                raise self._too_large()
            if tail:
                yield tail

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._inner.aclose()
        finally:
            self._on_close()


@dataclass
class _Pool:
    transport: httpx.AsyncBaseTransport
    active: int = 0


class SafeTransport(httpx.AsyncBaseTransport):
    """An httpx transport that vets and pins every request it sends (see the module docstring).

    ``inner`` replaces the real transport (tests). Without it, one
    :class:`httpx.AsyncHTTPTransport` is kept per original origin (scheme, host name, port), so a
    TLS connection verified for one host name is never reused for another name that resolves to
    the same address; at most ``max_pools`` idle ones are kept.

    ``total_timeout`` (seconds, ``None`` for none) bounds each request this transport handles:
    resolution, connection, response headers and reading the body. Each redirect hop is a new
    request with its own budget; wrap a whole operation in :func:`total_deadline` to bound it.
    """

    def __init__(
        self,
        *,
        allow: Iterable[str | IPNetwork] = (),
        deny: Iterable[str | Endpoint] = (),
        inner: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        total_timeout: float | None = 30.0,
        verify: ssl.SSLContext | str | bool = True,
        max_pools: int = 64,
    ) -> None:
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self._allow = parse_allow_list(allow)
        self._deny = parse_denied_endpoints(deny)
        self._inner_pool = None if inner is None else _Pool(inner)
        self._resolver = resolver
        self._max_response_bytes = max_response_bytes
        self._total_timeout = total_timeout
        self._verify = verify
        self._max_pools = max_pools
        self._pools: OrderedDict[tuple[str, str, int], _Pool] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = None
        if self._total_timeout is not None:
            deadline = asyncio.get_running_loop().time() + self._total_timeout
        try:
            async with asyncio.timeout_at(deadline):
                pinned, key = await self._pin(request)
                pool = await self._acquire(key)
                try:
                    response = await pool.transport.handle_async_request(pinned)
                except BaseException:
                    pool.active -= 1
                    raise
        except TimeoutError:
            raise TotalTimeout("The server did not answer in time.", request=request) from None
        return await self._capped(request, response, pool, deadline)

    async def _pin(self, request: httpx.Request) -> tuple[httpx.Request, tuple[str, str, int]]:
        url = check_url(request.url)
        host = url.raw_host.decode("ascii")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        addresses = await resolve_allowed(
            host, port, self._allow, deny=self._deny, resolver=self._resolver
        )
        pinned_url = url.copy_with(host=addresses[0])
        headers = request.headers.copy()
        if "host" not in headers:
            headers["Host"] = url.netloc.decode("ascii")
        if headers.get("accept-encoding", "").strip().lower() != "identity":
            headers["Accept-Encoding"] = "gzip, deflate"  # the encodings _CappedStream decodes
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        pinned = httpx.Request(
            request.method,
            pinned_url,
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        return pinned, (url.scheme, host, port)

    async def _acquire(self, key: tuple[str, str, int]) -> _Pool:
        if self._inner_pool is not None:
            self._inner_pool.active += 1
            return self._inner_pool
        pool = self._pools.get(key)
        if pool is None:
            context = shared_ssl_context(self._verify)
            transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
            pool = self._pools[key] = _Pool(transport)
        self._pools.move_to_end(key)
        pool.active += 1
        idle = [k for k, p in self._pools.items() if p.active == 0]
        for stale in idle[: max(0, len(self._pools) - self._max_pools)]:
            await self._pools.pop(stale).transport.aclose()
        return pool

    async def _capped(
        self,
        request: httpx.Request,
        response: httpx.Response,
        pool: _Pool,
        deadline: float | None,
    ) -> httpx.Response:
        stream = response.stream
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                pool.active -= 1

        if not isinstance(stream, httpx.AsyncByteStream):
            release()
            raise TypeError("the inner transport returned a synchronous stream")
        try:
            length = response.headers.get("content-length")
            if (
                request.method != "HEAD"
                and length is not None
                and length.strip().isdigit()
                and int(length) > self._max_response_bytes
            ):
                raise ResponseTooLarge("The server's response is too large.")
            inflater = _inflater_for(response.headers.get("content-encoding"))
        except BaseException:
            try:
                await stream.aclose()
            finally:
                release()
            raise
        headers = response.headers.copy()
        if inflater is not None:  # the body is delivered decoded
            del headers["content-encoding"]
            headers.pop("content-length", None)
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=_CappedStream(
                stream,
                limit=self._max_response_bytes,
                deadline=deadline,
                inflater=inflater,
                on_close=release,
                request=request,
            ),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        if self._inner_pool is not None:
            pools.append(self._inner_pool)
        for pool in pools:
            await pool.transport.aclose()


_SSL_CONTEXTS: dict[tuple[str | bool, bool], ssl.SSLContext] = {}


def shared_ssl_context(
    verify: ssl.SSLContext | str | bool = True, *, trust_env: bool = False
) -> ssl.SSLContext:
    """One TLS context per verification setting for the whole process.

    httpx builds a new context (loading the CA bundle) for every client and transport that
    is not given one: 10-20 ms of CPU each, and calendars opens a client for every provider
    call. The S2 benchmark's profile showed a third of calendars' CPU there. A context is
    made to be shared by every connection that verifies the same way."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    key = (verify, trust_env)
    context = _SSL_CONTEXTS.get(key)
    if context is None:
        context = _SSL_CONTEXTS[key] = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
    return context


def safe_client(
    *,
    allow: Sequence[str | IPNetwork] = (),
    deny: Sequence[str | Endpoint] = (),
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
    total_timeout: float | None = 30.0,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    max_redirects: int = 5,
    verify: ssl.SSLContext | str | bool = True,
    inner: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An :class:`httpx.AsyncClient` whose every request (and redirect hop) goes through
    :class:`SafeTransport`. ``allow`` holds CIDR networks that may be reached although private,
    ``deny`` endpoints (``network:port``) refused even there; ``inner`` and ``resolver`` are for
    tests. Other keyword arguments go to the client, except
    those that would bypass the transport (``transport``, ``mounts``, ``proxy``, ...)."""
    for name in ("transport", "mounts", "proxy", "follow_redirects", "max_redirects", "app"):
        if name in kwargs:
            raise TypeError(f"safe_client() does not accept {name!r}")
    kwargs.setdefault("trust_env", False)  # no proxies, netrc or certificate paths from the env
    transport = SafeTransport(
        allow=allow,
        deny=deny,
        inner=inner,
        resolver=resolver,
        max_response_bytes=max_response_bytes,
        total_timeout=total_timeout,
        verify=verify,
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=True,
        max_redirects=max_redirects,
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        **kwargs,
    )


@asynccontextmanager
async def total_deadline(seconds: float) -> AsyncIterator[None]:
    """Bound a whole operation (all requests and redirect hops) to ``seconds``.

    Raises :class:`TotalTimeout` when the time is up.
    """
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise TotalTimeout("The server did not answer in time.") from None
