"""build_email and the header / address checks every channel relies on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from icsflow.notifiers import HeaderInjectionError, InvalidAddress, Message, build_email

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def msg(**kw: object) -> Message:
    base = Message(
        message_id="<outbox-42.7f3a@icsflow>",
        sender="Icsflow <noreply@example.org>",
        recipients=("tm-1@example.org", "iro-1@example.org"),
        subject="Alert dispute C-1: response due",
        body="Please respond by 2026-03-05.\nThanks.",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_build_email_sets_from_to_subject_and_the_callers_message_id() -> None:
    email = build_email(msg(), date=WHEN)
    assert email["From"] == "Icsflow <noreply@example.org>"
    assert email["To"] == "tm-1@example.org, iro-1@example.org"
    assert email["Subject"] == "Alert dispute C-1: response due"
    assert email["Message-ID"] == "<outbox-42.7f3a@icsflow>"
    assert email["Date"] == "Mon, 02 Mar 2026 09:30:00 +0000"


def test_build_email_body_is_utf8_plain_text() -> None:
    email = build_email(msg(body="Café — réponse attendue"))
    assert email.get_content_type() == "text/plain"
    assert email.get_content_charset() == "utf-8"
    assert email.get_content().rstrip("\n") == "Café — réponse attendue"


def test_the_same_message_builds_the_same_message_id_each_time() -> None:
    assert build_email(msg())["Message-ID"] == build_email(msg())["Message-ID"]


def test_date_defaults_to_now_and_must_be_timezone_aware() -> None:
    assert build_email(msg())["Date"]
    with pytest.raises(ValueError, match="timezone-aware"):
        build_email(msg(), date=datetime(2026, 3, 2, 9, 30))


def test_urgent_messages_carry_priority_headers_and_others_do_not() -> None:
    urgent = build_email(msg(urgent=True))
    assert urgent["X-Priority"].startswith("1")
    assert urgent["Importance"] == "High"
    normal = build_email(msg())
    assert normal["X-Priority"] is None and normal["Importance"] is None


def test_extra_headers_are_added() -> None:
    email = build_email(msg(headers=(("X-Icsflow-Instance", "abc-123"),)))
    assert email["X-Icsflow-Instance"] == "abc-123"


def test_a_list_of_recipients_is_stored_as_a_tuple() -> None:
    m = msg(recipients=["a@example.org"])
    assert m.recipients == ("a@example.org",)
    assert hash(m)


@pytest.mark.parametrize("bad", ["Hi\r\nBcc: evil@example.com", "Hi\nX: y", "Hi\rX", "a\x00b",
                                 "a\x1bb", "a\u2028b", "a\x85b"])
def test_a_line_break_or_control_character_in_the_subject_is_refused(bad: str) -> None:
    with pytest.raises(HeaderInjectionError, match="Subject"):
        build_email(msg(subject=bad))


def test_a_tab_in_the_subject_is_allowed() -> None:
    assert build_email(msg(subject="a\tb"))["Subject"]


def test_a_line_break_in_a_recipient_is_refused() -> None:
    with pytest.raises(HeaderInjectionError, match="'To'"):
        build_email(msg(recipients=("a@example.org\r\nBcc: evil@example.com",)))


def test_a_line_break_in_the_sender_is_refused() -> None:
    with pytest.raises(HeaderInjectionError, match="'From'"):
        build_email(msg(sender="noreply@example.org\nBcc: evil@example.com"))


def test_a_line_break_in_the_message_id_is_refused() -> None:
    with pytest.raises(HeaderInjectionError, match="Message-ID"):
        build_email(msg(message_id="<a@b>\r\nBcc: evil@example.com"))


def test_a_line_break_in_an_extra_header_value_is_refused() -> None:
    with pytest.raises(HeaderInjectionError, match="X-Case"):
        build_email(msg(headers=(("X-Case", "C-1\r\nBcc: evil@example.com"),)))


@pytest.mark.parametrize("name", ["X-Case\r\nBcc", "X Case", "X-Case:", ""])
def test_a_malformed_extra_header_name_is_refused(name: str) -> None:
    with pytest.raises(HeaderInjectionError):
        build_email(msg(headers=((name, "v"),)))


def test_an_extra_header_may_not_replace_one_icsflow_sets() -> None:
    with pytest.raises(ValueError, match="Bcc"):
        build_email(msg(headers=(("Bcc", "evil@example.com"),)))


@pytest.mark.parametrize(
    "address",
    ["no-at-sign.example.org", "two@@example.org", "a@b@example.org", "a b@example.org",
     "@example.org", "a@", "a@example.org, b@example.org", ""],
)
def test_an_invalid_recipient_is_refused_naming_the_address(address: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        build_email(msg(recipients=(address,)))
    assert info.value.address == address
    assert repr(address) in str(info.value)


def test_an_invalid_sender_is_refused() -> None:
    with pytest.raises(InvalidAddress, match="nobody"):
        build_email(msg(sender="nobody"))


def test_a_message_without_recipients_is_refused() -> None:
    with pytest.raises(InvalidAddress, match="no recipients"):
        build_email(msg(recipients=()))


@pytest.mark.parametrize("mid", ["outbox-42@icsflow", "<outbox 42@icsflow>", "<no-domain>"])
def test_a_malformed_message_id_is_refused(mid: str) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        build_email(msg(message_id=mid))


def test_display_name_addresses_are_accepted() -> None:
    email = build_email(msg(recipients=("Team Manager <tm-1@example.org>",)))
    assert email["To"].addresses[0].addr_spec == "tm-1@example.org"
