"""Delivery channels behind one ``Notifier`` protocol: SMTP, Maildir, log, webhook, recorder.

Imports nothing else of icsflow; the composition root picks a channel.
"""

from icsflow.notifiers.base import DeliveryError, Notifier
from icsflow.notifiers.log import LogNotifier
from icsflow.notifiers.maildir import MaildirNotifier
from icsflow.notifiers.message import HeaderInjectionError, InvalidAddress, Message, build_email
from icsflow.notifiers.recording import RecordingNotifier
from icsflow.notifiers.smtp import SmtpNotifier
from icsflow.notifiers.webhook import WebhookNotifier, verify_signature

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
