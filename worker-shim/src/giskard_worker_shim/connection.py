"""How an unmanaged worker reaches its server: the URLs (WebSocket endpoint, model blobs), TLS,
the handshake headers, and which failures are worth retrying. See PROTOCOL.md, *Transports*.

A Dialer is called by the worker loop's thread only; it keeps the API key in memory (never in
the environment, where model code and its subprocesses would find it).
"""

import ssl
from typing import Dict, Optional
from urllib.parse import urlsplit, urlunsplit

from giskard_worker_shim import __version__, websocket
from giskard_worker_shim.protocol import ConnectionClosed
from giskard_worker_shim.runfiles import UsageError
from giskard_worker_shim.worker import Rejected

CONNECT_PATH = "/api/v1/workers/connect"
BLOBS_PATH = "/api/v1/model-blobs/"
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 40051
DEFAULT_URL = "http://%s:%d" % (DEFAULT_HOST, DEFAULT_PORT)
NAME_HEADER = "X-Giskard-Worker-Name"
_SCHEMES = {"http": "ws", "ws": "ws", "https": "wss", "wss": "wss"}


def endpoint_url(url: str) -> str:
    """Maps the user's server URL (http, https, ws or wss) to the WebSocket endpoint."""
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise UsageError("invalid server URL %r: expected http://HOST:PORT (or https, ws, wss)"
                         % url)
    path = parts.path.rstrip("/")
    if not path.endswith(CONNECT_PATH):
        path += CONNECT_PATH
    return urlunsplit((_SCHEMES[parts.scheme], parts.netloc, path, parts.query, ""))


def first_generation_url(host: Optional[str], port: Optional[int]) -> str:
    """The server URL of `giskard worker start -h HOST -p PORT` (Giskard's first command line):
    http://HOST:PORT, HOST defaulting to localhost and PORT to 40051."""
    host = (host or DEFAULT_HOST).strip()
    if not host or "/" in host or host.startswith("["):
        raise UsageError("invalid host %r for -h: give a host name or an IP address, or a whole "
                         "URL with -u" % host)
    if host.count(":") == 1:
        raise UsageError("invalid host %r for -h: give the port with -p (-h HOST -p PORT)"
                         % host)
    if ":" in host:
        host = "[%s]" % host  # an IPv6 address
    port = DEFAULT_PORT if port is None else port
    if not 0 < port < 65536:
        raise UsageError("invalid port %d for -p: expected 1 to 65535" % port)
    return "http://%s:%d" % (host, port)


def http_base(endpoint: str) -> str:
    """The server's HTTP(S) URL behind a WebSocket endpoint: same host, port and path prefix;
    `ws` becomes `http`, `wss` becomes `https`, and the query is dropped."""
    parts = urlsplit(endpoint)
    scheme = "https" if parts.scheme == "wss" else "http"
    path = parts.path[:-len(CONNECT_PATH)] if parts.path.endswith(CONNECT_PATH) else parts.path
    return urlunsplit((scheme, parts.netloc, path.rstrip("/"), "", ""))


def tls_context(ca_file: Optional[str]) -> ssl.SSLContext:
    """Verifies servers with the system's CAs, or only with those of `ca_file` (PEM)."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise UsageError("cannot use --ca-file %s: %s (give a PEM file holding the CA "
                         "certificate, or the server's own certificate if it is self-signed)"
                         % (ca_file, getattr(e, "strerror", None) or e)) from None


def auth_headers(key: str, hf_token: Optional[str]) -> Dict[str, str]:
    """The headers of every request to the server: the key, and for a server behind a private
    Hugging Face Space, the cookie its proxy lets through."""
    headers = {"Authorization": "Bearer " + key,
               "User-Agent": "giskard-worker-shim/%s" % __version__}
    if hf_token:
        headers["Cookie"] = "spaces-jwt=" + hf_token
    return headers


class Dialer:
    """Opens the worker's WebSocket. Refusals that retrying cannot fix raise Rejected (the
    worker exits 77): HTTP 401/403 (the key), 409 (the name belongs to a managed kernel), and a
    certificate that does not verify on the first connection (after the worker was once
    welcomed, a certificate failure is retried: the server may be renewing it). Everything
    else raises ConnectionClosed or OSError, which the worker retries."""

    def __init__(self, endpoint: str, name: str, headers: Dict[str, str],
                 tls: Optional[ssl.SSLContext]) -> None:
        self.endpoint = endpoint
        self._name = name
        self._headers = dict(headers)
        self._headers[NAME_HEADER] = name
        self._tls = tls
        self.welcomed = False  # set by the caller once the server says welcome

    def __call__(self) -> websocket.WebSocketConnection:
        try:
            return websocket.connect(self.endpoint, self._headers, timeout=10.0, tls=self._tls)
        except ssl.SSLCertVerificationError as e:
            message = certificate_message(self.endpoint, e)
            if self.welcomed:
                raise ConnectionClosed(message) from None
            raise Rejected(message) from None
        except websocket.HandshakeError as e:
            message = refusal_message(e, self._name)
            if message is not None:
                raise Rejected(message) from None
            raise ConnectionClosed("WebSocket handshake with %s failed: %s"
                                   % (self.endpoint, e)) from None


def refusal_message(error: websocket.HandshakeError, name: str) -> Optional[str]:
    """What to tell the user about a handshake answer that retrying cannot fix, or None."""
    said = error.server_message or "no reason given"
    if error.status == 401:
        return ("the server refused the API key (HTTP 401: %s); check the key given with -k "
                "or GSK_API_KEY" % said)
    if error.status == 403:
        return ("the server does not let this API key in (HTTP 403: %s); check the key given "
                "with -k or GSK_API_KEY" % said)
    if error.status == 409:
        return "the server refused the worker name %r (HTTP 409: %s)" % (name, said)
    return None


_NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def certificate_message(endpoint: str, error: ssl.SSLCertVerificationError) -> str:
    parts = urlsplit(endpoint)
    reason = (getattr(error, "verify_message", None) or str(error)).rstrip(".")
    if getattr(error, "verify_code", None) in _NAME_MISMATCH:
        hint = "use a server URL with a host name or address that the certificate names"
    else:
        hint = ("if the server uses a self-signed certificate or a private CA, pass that "
                "certificate with --ca-file PATH")
    return "cannot verify the TLS certificate of %s: %s; %s" % (parts.netloc, reason, hint)
