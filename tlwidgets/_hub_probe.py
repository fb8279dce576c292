"""Whether a download host answers at all, asked within a few seconds in all.

timm downloads through huggingface_hub (or torch.hub for URL weights), whose retries with
back-off keep an offline user waiting ~45 s before an error, and minutes when a host (a proxy, a
firewall, a dead mirror) accepts the connection and never answers. :func:`no_answer` asks one
``HEAD /`` first, with one deadline for the name lookup, the connect, TLS and the first byte of
the answer.

>>> from tlwidgets._hub_probe import no_answer
>>> no_answer("https://huggingface.co", timeout=3.0)  # doctest: +SKIP
'huggingface.co could not be reached ([Errno -3] Temporary failure in name resolution)'
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.request
from urllib.parse import urlparse

__all__ = ["no_answer"]


def no_answer(url: str, timeout: float) -> str | None:
    """Why the host of ``url`` gives no HTTP answer within ``timeout`` seconds, or None if it
    answers (any status counts) or cannot be judged (no host; a proxy configured for it, where
    the direct route says nothing).

    The probe runs in a daemon thread, so even a name lookup that hangs (which no socket timeout
    bounds) holds the caller ``timeout`` + 0.5 s at most.

    >>> no_answer("http://127.0.0.1:9", timeout=1.0)  # doctest: +SKIP
    '127.0.0.1 could not be reached ([Errno 111] Connection refused)'
    """
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return None
    if parsed.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return None
    https = parsed.scheme != "http"
    port = parsed.port or (443 if https else 80)
    result: list[str | None] = []
    thread = threading.Thread(
        target=lambda: result.append(_probe(host, port, https, timeout)),
        daemon=True,
        name="tlwidgets-hub-probe",
    )
    thread.start()
    thread.join(timeout + 0.5)
    if not result:
        return f"{host} gave no answer within {timeout:g} s"
    return result[0]


def _probe(host: str, port: int, https: bool, timeout: float) -> str | None:
    """Why ``host:port`` gives no HTTP answer within ``timeout`` seconds in all, or None."""
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(deadline - time.monotonic(), 0.01)

    try:
        sock = socket.create_connection((host, port), timeout=left())
    except OSError as err:
        return f"{host} could not be reached ({err})"
    try:
        if https:
            sock.settimeout(left())
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.settimeout(left())
        sock.sendall(
            f"HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tlwidgets-probe\r\n"
            f"Connection: close\r\n\r\n".encode()
        )
        sock.settimeout(left())
        if not sock.recv(1):
            return f"{host}:{port} closed the connection without an answer"
    except TimeoutError:
        return f"{host}:{port} accepted a connection but did not answer within {timeout:g} s"
    except ssl.SSLError:
        return None  # it answered; certificate trouble is the hub's to report
    except OSError as err:
        return f"{host}:{port} dropped the connection ({err})"
    finally:
        sock.close()
    return None
