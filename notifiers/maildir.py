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
from collections.abc import Sequence
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

    # A batch: files written, then each fsynced and published, and the folders fsynced once
    # (a crash before the mark-sent resends the batch, and a stored Message-ID stores nothing).
    idempotent = True

    def send_many(self, messages: Sequence[Message]) -> list[DeliveryError | None]:
        """Store a batch; one answer per message (None: stored, or already stored)."""
        results: list[DeliveryError | None] = [None] * len(messages)
        try:
            stored = {p.name.split(":", 1)[0] for p in (self.path / "cur").iterdir()}
        except OSError as exc:
            return [self._write_error(m, exc) for m in messages]
        stored.update(p.name for p in (self.path / "new").iterdir())
        written: list[tuple[int, Path, str]] = []
        for k, message in enumerate(messages):
            try:
                with unsendable_fails_permanently(self.name, message):
                    data = build_email(message).as_bytes()
            except DeliveryError as exc:
                results[k] = exc
                continue
            key = self.key_for(message.message_id)
            if key in stored:
                _log.info("email_already_stored", message_id=message.message_id)
                continue
            stored.add(key)  # the same Message-ID twice in one batch is stored once
            tmp = self.path / "tmp" / f"{key}.{os.getpid()}.{uuid.uuid4().hex}"
            try:
                with open(tmp, "xb") as fh:
                    fh.write(data)
                written.append((k, tmp, key))
            except OSError as exc:
                results[k] = self._write_error(message, exc)
        for k, tmp, key in written:
            try:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                try:
                    os.link(tmp, self.path / "new" / key)
                except FileExistsError:
                    _log.info("email_already_stored", message_id=messages[k].message_id)
            except OSError as exc:
                results[k] = self._write_error(messages[k], exc)
            finally:
                tmp.unlink(missing_ok=True)
        try:
            for sub in ("new", "tmp"):
                fd = os.open(self.path / sub, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            return [r or self._write_error(m, exc) for r, m in zip(results, messages,
                                                                   strict=True)]
        for k, _, _ in written:
            if results[k] is None:
                _log.info("email_stored", message_id=messages[k].message_id,
                          recipients=len(messages[k].recipients))
        return results

    def _write_error(self, message: Message, exc: OSError) -> DeliveryError:
        return DeliveryError(f"cannot write to Maildir {self.path}: {exc}", permanent=False,
                             channel=self.name, message_id=message.message_id)

    def close(self) -> None:
        """Nothing is held open between sends."""
