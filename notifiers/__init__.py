"""Delivery channels behind one ``Notifier`` protocol: SMTP, Maildir, log, webhook, recorder.

Imports nothing else of icsflow; the composition root picks a channel.
"""

from notifiers.base import DeliveryError, Notifier
from notifiers.log import LogNotifier
from notifiers.maildir import MaildirNotifier
from notifiers.message import HeaderInjectionError, InvalidAddress, Message, build_email
from notifiers.recording import RecordingNotifier
from notifiers.smtp import SmtpNotifier
from notifiers.webhook import WebhookNotifier, verify_signature

__all__ = [
    "DeliveryError",
    "HeaderInjectionError",
    "InvalidAddress",
    "LogNotifier",
    "MaildirNotifier",
    "Message",
    "Notifier",
    "RecordingNotifier",
    "SmtpNotifier",
    "WebhookNotifier",
    "build_email",
    "verify_signature",
]
