"""The embedded default sink: each message becomes a file in a Maildir a mail client can open.

Idempotent by Message-ID: the file name is derived from a hash of the Message-ID, and the file
is published with ``os.link`` (atomic, fails if the name exists), so a resend after a crash, or
two processes racing, store the message once. The stdlib ``mailbox.Maildir`` is not used to
write because it names files at random, which would defeat that; the layout (tmp/ new/ cur/)
is the same, so ``mailbox.Maildir(path)`` and any mail client read it.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from icsflow.notifiers._logging import get_logger
from icsflow.notifiers.base import DeliveryError, unsendable_fails_permanently
from icsflow.notifiers.message import Message, build_email

__all__ = ["MaildirNotifier"]

_log = get_logger("icsflow.notifiers.maildir")


class MaildirNotifier:
    """Store messages in the Maildir at ``path`` (created if missing, parents included).

    Deleting a stored message from the Maildir forgets it: the same Message-ID would then be
    stored again.
    """

    name = "maildir"

    def __init__(self, path: str | os.PathLike[str] = "var/mail") -> None:
        self.path = Path(path)
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key_for(message_id: str) -> str:
        """The Maildir key (file name in ``new/``) used for ``message_id``."""
        digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]
        return f"icsflow-{digest}"

    def _stored(self, key: str) -> bool:
        if (self.path / "new" / key).exists():
            return True
        # A mail client moves read mail to cur/ and appends ":2,FLAGS" to the name.
        return any(p.name.split(":", 1)[0] == key for p in (self.path / "cur").iterdir())

    def send(self, message: Message) -> None:
        """Store ``message`` unless a message with its Message-ID is already stored."""
        with unsendable_fails_permanently(self.name, message):
            data = build_email(message).as_bytes()
        key = self.key_for(message.message_id)
        try:
            if self._stored(key):
                _log.info("email_already_stored", message_id=message.message_id)
                return
            tmp = self.path / "tmp" / f"{key}.{os.getpid()}.{uuid.uuid4().hex}"
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, self.path / "new" / key)
            except FileExistsError:
                _log.info("email_already_stored", message_id=message.message_id)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise DeliveryError(f"cannot write to Maildir {self.path}: {exc}", permanent=False,
                                channel=self.name, message_id=message.message_id) from exc
        _log.info("email_stored", message_id=message.message_id,
                  recipients=len(message.recipients))

    def close(self) -> None:
        """Nothing is held open between sends."""
