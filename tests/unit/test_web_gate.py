"""The gate's pure parts: who the client is behind a trusted proxy, which route takes what,
and the throttle's growing delays."""

from __future__ import annotations

from icsflow.workflow.web.gate import FORM, JSON, Networks, body_rule, client_of, public
from icsflow.workflow.web.throttle import ACCOUNT, PAIR, keys_for

XFF = [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.2"), (b"x-forwarded-proto", b"https")]


def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    assert client_of("127.0.0.1", XFF, Networks([]), "http") == ("127.0.0.1", "http")
    assert client_of("198.51.100.1", XFF, Networks(["10.0.0.0/8"]), "http") == (
        "198.51.100.1", "http")


def test_a_trusted_proxy_names_the_nearest_untrusted_hop_and_the_scheme() -> None:
    trusted = Networks(["10.0.0.0/8"])
    assert client_of("10.0.0.1", XFF, trusted, "http") == ("203.0.113.9", "https")
    spoofed = [(b"x-forwarded-for", b"1.2.3.4, 203.0.113.9")]  # the client wrote 1.2.3.4
    assert client_of("10.0.0.1", spoofed, trusted, "http")[0] == "203.0.113.9"


def test_each_route_takes_one_content_type_and_a_bounded_body() -> None:
    assert body_rule("/login") == (FORM, 8 * 1024)
    assert body_rule("/api/cases/x/events/respond") == (JSON, 64 * 1024)
    assert body_rule("/cases/x/events/respond") == (FORM, 64 * 1024)
    assert body_rule("/loginx")[1] == 64 * 1024
    assert public("/login") and public("/static/style.css") and not public("/api/me")
    assert public("/oidc/callback", ("/oidc/callback",))


def test_the_throttles_delay_grows_after_the_free_failures_up_to_its_cap() -> None:
    assert [PAIR.delay(n) for n in range(1, 7)] == [0, 0, 0, 1, 2, 4]
    assert PAIR.delay(1000) == 900 and ACCOUNT.delay(1000) == 300


def test_throttle_keys_do_not_hold_the_typed_name_and_ignore_its_letter_case() -> None:
    a, b = keys_for("Alice", "192.0.2.1", False), keys_for("alice", "192.0.2.1", False)
    assert a == b and "alice" not in a.pair and a.device is None
    assert keys_for("alice", "192.0.2.1", True, "dev").device is not None
