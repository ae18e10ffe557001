"""Deliver messages as signed JSON POSTs, e.g. to a chat bridge or a case system.

The body is signed with HMAC-SHA256 so the receiver can check it came from icsflow and was not
altered; ``X-Icsflow-Message-Id`` lets it drop a resend it has already seen.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import urllib.error
import urllib.request
from typing import IO
from urllib.parse import urlsplit

from icsflow.notifiers._logging import get_logger
from icsflow.notifiers.base import DeliveryError, unsendable_fails_permanently
from icsflow.notifiers.message import Message, validate_message

__all__ = ["SIGNATURE_HEADER", "WebhookNotifier", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-Icsflow-Signature"
MESSAGE_ID_HEADER = "X-Icsflow-Message-Id"

_log = get_logger("icsflow.notifiers.webhook")


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Icsflow-Signature`` value for ``body``: ``sha256=<hex digest>``."""
    return "sha256=" + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """For receivers: True when ``header`` is the signature of the exact ``body`` bytes."""
    if not header or not isinstance(body, bytes | bytearray):
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"),
                               header.strip().encode("utf-8", "replace"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET without body and report success.
    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: http.client.HTTPMessage, newurl: str) -> None:
        return None


class WebhookNotifier:
    """POST each message as JSON to ``url`` (http or https), signed with ``secret``."""

    name = "webhook"

    def __init__(self, url: str, secret: str | bytes, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http(s)://host/..., not {url!r}")
        if not secret:
            raise ValueError("webhook secret must not be empty")
        self.url = url
        self._secret = _key(secret)
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        return f"WebhookNotifier({parts.scheme}://{parts.hostname}{parts.path})"

    @staticmethod
    def payload(message: Message) -> bytes:
        """The exact JSON body sent (and signed) for ``message``."""
        return json.dumps(
            {
                "message_id": message.message_id,
                "from": message.sender,
                "to": list(message.recipients),
                "subject": message.subject,
                "body": message.body,
                "urgent": message.urgent,
            },
            separators=(",", ":"),
        ).encode("utf-8")

    def send(self, message: Message) -> None:
        """POST ``message``: 2xx is delivered; 4xx permanent except 408/429; else temporary."""

        def fail(reason: str, permanent: bool) -> DeliveryError:
            # Anything not permanent (no answer, a timeout, 5xx, 408/429) is the endpoint's.
            return DeliveryError(reason, permanent=permanent, channel=self.name,
                                 message_id=message.message_id, endpoint_down=not permanent)

        with unsendable_fails_permanently(self.name, message):
            validate_message(message)
        body = self.payload(message)
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "icsflow-webhook",
                SIGNATURE_HEADER: sign(self._secret, body),
                MESSAGE_ID_HEADER: message.message_id,
            },
        )
        host = urlsplit(self.url).hostname
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                response.read(65536)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            permanent = 300 <= status < 500 and status not in (408, 429)
            raise fail(f"{host} answered HTTP {status}", permanent) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise fail(f"cannot reach {host}: {reason}", False) from exc
        if not 200 <= status < 300:
            raise fail(f"{host} answered HTTP {status}", False)
        _log.info("webhook_sent", message_id=message.message_id, host=host, status=status)

    def close(self) -> None:
        """Nothing is held between sends."""
