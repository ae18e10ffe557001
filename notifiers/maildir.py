"""The embedded default sink: each message becomes a file in a Maildir a mail client can open.

Idempotent by Message-ID: the file name is derived from a hash of the Message-ID, and the file
is published with ``os.link`` (atomic, fails if the name exists), so a resend after a crash, or
two processes racing, store the message once. The stdlib ``mailbox.Maildir`` is not used to
write because it names files at random, which would defeat that; the layout (tmp/ new/ cur/)
is the same, so ``mailbox.Maildir(path)`` and any mail client read it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from icsflow.notifiers._logging import get_logger
from icsflow.notifiers.base import DeliveryError, unsendable_fails_permanently
from icsflow.notifiers.message import Message, render_email

__all__ = ["MaildirNotifier"]

_log = get_logger("icsflow.notifiers.maildir")


class MaildirNotifier:
    """Store messages in the Maildir at ``path`` (created if missing, parents included).

    Deleting a stored message from the Maildir forgets it: the same Message-ID would then be
    stored again.
    """

    name = "maildir"

    def __init__(self, path: str | os.PathLike[str] = "var/mail", *,
                 write_threads: int = 8) -> None:
        self.path = Path(path)
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        self._cur_cache: tuple[int, set[str]] | None = None
        # A batch's files are written, fsynced and linked from a few threads at once: the
        # filesystem commits concurrent fsyncs together (ext4's journal, XFS's log), 3-4x
        # faster here than one after another, and each file is still on disk before it is
        # linked into new/.
        self.write_threads = write_threads
        self._pool: ThreadPoolExecutor | None = None

    @staticmethod
    def key_for(message_id: str) -> str:
        """The Maildir key (file name in ``new/``) used for ``message_id``."""
        digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]
        return f"icsflow-{digest}"

    def _stored(self, key: str) -> bool:
        # A mail client moves read mail to cur/ and appends ":2,FLAGS" to the name.
        return (self.path / "new" / key).exists() or key in self._cur_keys()

    def _cur_keys(self) -> set[str]:
        """The keys in cur/, listed again only when cur/ has changed: listing a folder of
        years of read mail for every batch grew a catch-up quadratically. A listing taken
        within a second of cur/'s last change is not trusted (a timestamp's granularity
        could hide a later change in the same tick), as git does with its index."""
        cur = self.path / "cur"
        mtime = os.stat(cur).st_mtime_ns
        if self._cur_cache is not None and self._cur_cache[0] == mtime:
            return self._cur_cache[1]
        listed_at = time.time_ns()
        keys = {name.split(":", 1)[0] for name in os.listdir(cur)}
        self._cur_cache = (mtime, keys) if listed_at - mtime > 1_000_000_000 else None
        return keys

    def send(self, message: Message) -> None:
        """Store ``message`` unless a message with its Message-ID is already stored."""
        with unsendable_fails_permanently(self.name, message):
            data = render_email(message)
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
                return
            finally:
                tmp.unlink(missing_ok=True)
            # The link is durable before the caller marks the row sent (a power loss could
            # otherwise lose a message already marked sent).
            _fsync_dir(self.path / "new")
        except OSError as exc:
            raise DeliveryError(f"cannot write to Maildir {self.path}: {exc}", permanent=False,
                                channel=self.name, message_id=message.message_id) from exc
        _log.info("email_stored", message_id=message.message_id,
                  recipients=len(message.recipients))

    # A batch: every file written to tmp/, fsynced and linked into new/ (from a few threads
    # at once), then new/ fsynced once (a crash before the mark-sent resends the
    # batch, and a stored Message-ID stores nothing).
    idempotent = True

    def send_many(self, messages: Sequence[Message]) -> list[DeliveryError | None]:
        """Store a batch; one answer per message (None: stored, or already stored)."""
        results: list[DeliveryError | None] = [None] * len(messages)
        try:
            stored = set(self._cur_keys())
        except OSError as exc:
            return [self._write_error(m, exc) for m in messages]
        new, prefix = self.path / "new", f"{self.path / 'tmp'}/"
        files: list[tuple[int, str, str]] = []  # (index, tmp path, key)
        stored_now: list[int] = []
        writes: list[Callable[[], OSError | object | None]] = []  # each file's answer
        try:
            for k, message in enumerate(messages):
                try:
                    with unsendable_fails_permanently(self.name, message):
                        data = render_email(message)
                except DeliveryError as exc:
                    results[k] = exc
                    continue
                key = self.key_for(message.message_id)
                if key in stored or os.path.lexists(new / key):
                    _log.info("email_already_stored", message_id=message.message_id)
                    continue
                stored.add(key)  # the same Message-ID twice in one batch is stored once
                tmp = f"{prefix}{key}.{os.getpid()}.{uuid.uuid4().hex}"
                files.append((k, tmp, key))
                # Stored while the next message is rendered.
                writes.append(self._store_soon(tmp, data, f"{new}/{key}"))
            for (k, _, _), written in zip(files, writes, strict=True):
                answer = written()
                if answer is _ALREADY_STORED:
                    _log.info("email_already_stored", message_id=messages[k].message_id)
                elif isinstance(answer, OSError):
                    results[k] = self._write_error(messages[k], answer)
                else:
                    stored_now.append(k)
        finally:
            for written in writes:
                written()  # wait for every file, even after an unexpected error
            for _, tmp, _ in files:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        try:
            _fsync_dir(new)
        except OSError as exc:
            return [r or self._write_error(m, exc) for r, m in zip(results, messages,
                                                                   strict=True)]
        for k in stored_now:
            if results[k] is None:
                _log.info("email_stored", message_id=messages[k].message_id,
                          recipients=len(messages[k].recipients))
        return results

    def _write_error(self, message: Message, exc: OSError) -> DeliveryError:
        return DeliveryError(f"cannot write to Maildir {self.path}: {exc}", permanent=False,
                             channel=self.name, message_id=message.message_id)

    def _store_soon(self, tmp: str, data: bytes,
                    final: str) -> Callable[[], OSError | object | None]:
        """Store one file (``_store_durably``) on a writer thread, unless there are none; the
        answer waits for it."""
        if self.write_threads <= 1:
            answer = _store_durably(tmp, data, final)
            return lambda: answer
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.write_threads,
                                            thread_name_prefix="icsflow-maildir-write")
        return self._pool.submit(_store_durably, tmp, data, final).result

    def close(self) -> None:
        """Stop the writer threads, if any (nothing else is held open between sends)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


_ALREADY_STORED = object()


def _fsync_dir(path: Path) -> None:
    """Make the names created in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _store_durably(tmp: str, data: bytes, final: str) -> OSError | object | None:
    """Create ``tmp``, write ``data``, fsync it, then link it to ``final`` in new/ (atomic,
    and refused if the name exists). None: stored; ``_ALREADY_STORED``: another process had
    stored this Message-ID; an ``OSError``: not stored (returned, never raised, so a writer
    thread's failure reaches the batch as that file's answer). The caller unlinks ``tmp``
    and fsyncs new/."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)  # on disk before it can be seen in new/
        finally:
            os.close(fd)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return _ALREADY_STORED
    except OSError as exc:
        return exc
    return None
