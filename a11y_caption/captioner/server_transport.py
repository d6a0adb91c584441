"""The one way out to a model server: its address as said to the user, the HTTP transport every
request goes through, and the bounds each answer is held to.

The screenshot goes only to the server the user named: the environment's proxy variables are not
used (only [model] proxy), redirects are refused, not followed, and every response is bounded
(bytes read, time, text) so a hostile or broken server cannot hang or flood the program.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import os
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..errors import ServerError, ServerRedirected
from ..safe_text import one_line

__all__ = ["is_loopback", "server_label", "warn_if_unencrypted"]

log = logging.getLogger(__name__)

NO_KEY = "no-key"  # the openai client insists on a key; local servers ignore this one
# Bytes read per response: room for a model list, and for each allowed token an event far larger
# than any real server sends; an answer larger than this is not a model's answer.
_BASE_BYTES = 1 << 20
_BYTES_PER_TOKEN = 4096
_warned_unencrypted: set[tuple[str, str]] = set()


def server_label(url: str) -> str:
    """``host:port`` of ``url`` (never a user name or password written into it)."""
    parts = urlsplit(url)
    host = parts.hostname or url
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


def is_loopback(host: str) -> bool:
    """True for this computer's own addresses: localhost, 127.0.0.0/8, ::1."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_unencrypted(url: str, proxy: str = "") -> None:
    """Once per server: plain http to another computer (or through a proxy on one) carries
    screenshots in the clear."""
    parts = urlsplit(url)
    remote_proxy = bool(proxy) and not is_loopback(urlsplit(proxy).hostname or "")
    if (parts.scheme == "http" and (remote_proxy or not is_loopback(parts.hostname or ""))
            and (url, proxy) not in _warned_unencrypted):
        _warned_unencrypted.add((url, proxy))
        through = f" through the proxy {server_label(proxy)}" if remote_proxy else ""
        log.warning("The model server %s is reached over plain http%s, so screenshots would cross the network "
                    "unencrypted; use an https URL unless the network is yours alone.", server_label(url), through)


def _httpx():
    """httpx2, which openai 3 uses; or httpx, which older ones use (the same API for what is used here)."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx


@dataclass(frozen=True)
class _Limits:
    max_bytes: int
    deadline: float | None = None  # time.monotonic(); None: the caller watches the time itself


# Set by each request's own thread, read by the transport below it (a sync client calls the
# transport and reads the body on the calling thread), so each answer gets the bounds of its call.
_limits: contextvars.ContextVar[_Limits | None] = contextvars.ContextVar("a11y_server_limits", default=None)


def _guarded_transport(label: str, proxy: str, verify, answer_timeout: float):
    httpx = _httpx()

    class CappedStream(httpx.SyncByteStream):
        """Counts the raw bytes below every decoder and parser, so nothing unbounded is ever held."""

        def __init__(self, inner, limits: _Limits):
            self._inner, self._limits, self._read = inner, limits, 0

        def __iter__(self):
            for chunk in self._inner:
                self._read += len(chunk)
                _check_within(self._read, self._limits, label, answer_timeout)
                yield chunk

        def close(self):
            self._inner.close()

    class GuardedTransport(httpx.BaseTransport):
        """The one way out: the named server (or [model] proxy), no redirect, no compression."""

        def __init__(self):
            # trust_env=False: neither proxy variables nor netrc decide where the screenshot goes.
            self._inner = httpx.HTTPTransport(verify=verify, trust_env=False, proxy=proxy or None)

        def handle_request(self, request):
            # A compressed answer can expand a thousandfold past the byte cap; ask for none.
            request.headers["Accept-Encoding"] = "identity"
            limits = _limits.get() or _Limits(_BASE_BYTES, time.monotonic() + answer_timeout)
            response = self._inner.handle_request(request)
            try:
                _check_headers(label, request.url, response, limits)
            except BaseException:
                response.close()
                raise
            return httpx.Response(response.status_code, headers=response.headers.raw,
                                  stream=CappedStream(response.stream, limits), extensions=response.extensions)

        def close(self):
            self._inner.close()

    return GuardedTransport()


def _check_within(read: int, limits: _Limits, label: str, answer_timeout: float) -> None:
    """Raise once an answer has sent more than its bytes, or gone on past its deadline."""
    if read > limits.max_bytes:
        raise _too_large(label, limits.max_bytes)
    if limits.deadline is not None and time.monotonic() > limits.deadline:
        raise _too_slow(label, answer_timeout)


def _check_headers(label: str, request_url, response, limits: _Limits) -> None:
    """Refuse an answer by its status and headers: a redirect, a compressed body, a body
    announced larger than the byte cap."""
    if 300 <= response.status_code < 400 and "location" in response.headers:
        raise ServerRedirected(f"The model server at {label} redirected the request to "
                               f"{_where(request_url, response.headers['location'])}; a11y-caption sends "
                               "the screen only to the server you named: set [model] server to that address "
                               "if it is yours.")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ServerError(f"The model server at {label} sent a compressed answer "
                          f"({_one_line(encoding, 40)}), which a11y-caption does not unpack; "
                          "turn compression off on the server.")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_bytes:
        raise _too_large(label, limits.max_bytes)


def _where(request_url, location: str) -> str:
    """``host:port`` a redirect points at, as safe text (``location`` is the server's, any text)."""
    try:
        where = server_label(urljoin(str(request_url), location.strip()))
    except ValueError:  # a port that is no number, a malformed address
        where = "an address that is not valid"
    return _one_line(where, 80) or "an address that is not valid"


def _too_large(label: str, max_bytes: int) -> ServerError:
    return ServerError(f"The model server at {label} sent more than {max_bytes / 2**20:.1f} MB for one answer; "
                       "check that the server address is a model server.")


def _too_slow(label: str, answer_timeout: float) -> ServerError:
    return ServerError(f"The model server at {label} was still answering after {answer_timeout:g} s; "
                       "raise [model] answer_timeout if it is only slow.")


def _verify(url: str):
    """The certificates the server's https is checked against. trust_env=False also drops
    SSL_CERT_FILE and SSL_CERT_DIR, and a user's own server may have its own CA named there."""
    if urlsplit(url).scheme != "https":
        return True
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if not (cafile or capath):
        return True
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as e:
        names = " and ".join(n for n, v in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)) if v)
        raise ServerError(f"The certificates named by {names} cannot be read; correct the setting or unset it.") from e


def _client(url: str, api_key_env: str, connect_timeout: float, read_timeout: float, proxy: str,
            answer_timeout: float):
    import openai

    # Request bodies (screenshots, prompts with screen text) appear in these libraries' debug logs.
    for name in ("openai", "httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    key = NO_KEY
    if api_key_env:
        key = os.environ.get(api_key_env, "")
        if not key:
            raise ServerError(f"The environment variable {api_key_env}, named by api_key_env, holds no key "
                              "for the model server.")
    httpx = _httpx()
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    transport = _guarded_transport(server_label(url), proxy, _verify(url), answer_timeout)
    # openai's own client follows redirects and reads the proxy variables: either can carry the
    # screenshot to another computer.
    http_client = httpx.Client(transport=transport, trust_env=False, follow_redirects=False, timeout=timeout)
    # No retries: a failure is said at once, and the next press tries again.
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, http_client=http_client,
                         timeout=openai.Timeout(read_timeout, connect=connect_timeout))


def _one_line(text: str, limit: int = 160) -> str:
    """A server's text for one of our sentences: escape sequences and other controls written out
    visibly (they would rewrite the terminal, or what the screen reader reads), and short."""
    text = one_line(" ".join(text.split()).rstrip("."))
    return text if len(text) <= limit else text[:limit - 1] + "…"
