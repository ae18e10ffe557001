"""Sign-in through the identity provider, without a provider: the ``web.oidc`` settings as the
configuration reads them, how claims become an icsflow user, and how an ID token is judged
(real RS256 signatures made here with joserfc)."""

from __future__ import annotations

import hashlib
import re
from base64 import urlsafe_b64encode
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from icsflow.workflow.config import Config, load_config
from icsflow.workflow.errors import ConfigurationError
from icsflow.workflow.identity import (
    ClaimProblem,
    OidcConfig,
    identity_from,
    role_for,
    unknown_roles,
)
from icsflow.workflow.web.oidc import SignOnError, verify_id_token
from icsflow.workflow.web.server import apply_config

SECTION = """
[web]
base_url = "https://icsflow.council.example/"

[web.oidc]
issuer = "https://login.council.example/realms/staff"
client_id = "icsflow"
role_claim = "realm_access.roles"
team_claim = "team"

[web.oidc.role_map]
"icsflow-admin" = "admin"
"icsflow-iro" = "iro"
"""


def write(tmp: Path, text: str, name: str = "icsflow.toml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_config(write(tmp, text), env=env or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- configuration ----------------------------------------------------------------------------

def test_a_complete_oidc_section_loads_with_its_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SECTION), env={})
    assert config.web.base_url == "https://icsflow.council.example"
    oidc = config.web.oidc
    assert oidc is not None
    assert oidc.issuer == "https://login.council.example/realms/staff"
    assert oidc.client_secret_env == "ICSFLOW_OIDC_CLIENT_SECRET"
    assert oidc.scopes == ("openid", "profile", "email")
    assert oidc.username_claim == "preferred_username" and oidc.email_claim == "email"
    assert oidc.local_passwords is False and oidc.service_claim is None
    assert list(oidc.role_map.items()) == [("icsflow-admin", "admin"), ("icsflow-iro", "iro")]
    assert oidc.redirect_uri(config.web.base_url or "") == \
        "https://icsflow.council.example/login/oidc/callback"


def test_the_documented_example_loads_with_its_oidc_section(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    block = re.search(r"## Complete example \(YAML\)\n\n```yaml\n(.*?)```", doc, re.DOTALL)
    assert block
    config = load_config(write(tmp_path, block.group(1), "icsflow.yaml"), env={})
    assert config.web.oidc is not None and config.web.oidc.team_claim == "team"
    assert config.web.base_url == "https://icsflow.council.example"


def test_without_an_oidc_section_sign_in_stays_with_passwords() -> None:
    config = load_config(None, env={})
    assert config.web.oidc is None and config.web.base_url is None
    assert config == Config(directory={})


def test_the_same_section_in_yaml_loads_alike(tmp_path: Path) -> None:
    path = write(tmp_path, "web:\n  base_url: https://icsflow.council.example\n  oidc:\n"
                 "    issuer: https://login.council.example\n    client_id: icsflow\n"
                 "    scopes: openid profile\n    local_passwords: yes\n"
                 "    role_map: {staff-iro: iro}\n", "icsflow.yaml")
    oidc = load_config(path, env={}).web.oidc
    assert oidc is not None and oidc.scopes == ("openid", "profile")
    assert oidc.local_passwords is True and dict(oidc.role_map) == {"staff-iro": "iro"}


@pytest.mark.parametrize("missing", ["issuer", "client_id", "role_map"])
def test_an_incomplete_oidc_section_is_refused_in_one_line_naming_the_key(
        tmp_path: Path, missing: str) -> None:
    lines = [line for line in SECTION.splitlines() if not line.startswith(missing)]
    if missing == "role_map":
        lines = lines[:lines.index("[web.oidc.role_map]")]
    message = refusal(tmp_path, "\n".join(lines))
    assert message.startswith(f"{tmp_path / 'icsflow.toml'}: web.oidc.{missing}: missing;")


def test_oidc_without_a_base_url_is_refused_naming_web_base_url(tmp_path: Path) -> None:
    message = refusal(tmp_path, SECTION.replace('base_url = "https://icsflow.council.example/"',
                                                ""))
    assert ": web.base_url: missing;" in message and "/login/oidc/callback" in message


def test_the_base_url_may_come_from_the_environment(tmp_path: Path) -> None:
    text = SECTION.replace('base_url = "https://icsflow.council.example/"', "")
    config = load_config(write(tmp_path, text),
                         env={"ICSFLOW_WEB_BASE_URL": "https://cases.council.example"})
    assert config.web.base_url == "https://cases.council.example"


@pytest.mark.parametrize(("old", "new", "words"), [
    ('issuer = "https://login.council.example/realms/staff"',
     'issuer = "http://login.council.example"', "web.oidc.issuer: 'http://login.council.example'"
     " is not https://"),
    ('base_url = "https://icsflow.council.example/"', 'base_url = "https://x.example/icsflow"',
     "web.base_url: 'https://x.example/icsflow' has a path"),
    ('client_id = "icsflow"', 'client_id = "icsflow"\nscopes = ["profile"]',
     "web.oidc.scopes: ['profile'] lacks openid"),
    ('"icsflow-iro" = "iro"', '"icsflow-iro" = "IRO Officer"', "web.oidc.role_map: icsflow-iro: "
     "'IRO Officer' is not a role name"),
    ('client_id = "icsflow"', 'client_id = "icsflow"\nusername_claim = "user name"',
     "web.oidc.username_claim: 'user name' is not a claim name"),
    ('client_id = "icsflow"', 'client_id = "icsflow"\nclient_secret_env = "MY-SECRET"',
     "web.oidc.client_secret_env: 'MY-SECRET' is not an environment variable"),
    ('client_id = "icsflow"', 'client_id = "icsflow"\nlocal_passwords = "sometimes"',
     "web.oidc.local_passwords: 'sometimes' is not true or false"),
    ('client_id = "icsflow"', 'client_id = "icsflow"\nclient_secret = "hunter2"',
     "web.oidc.client_secret: unknown key; did you mean web.oidc.client_secret_env? known keys "
     "in web.oidc: client_id, client_secret_env, email_claim, issuer"),
])
def test_a_bad_oidc_value_is_refused_naming_file_and_key(tmp_path: Path, old: str, new: str,
                                                         words: str) -> None:
    assert words in refusal(tmp_path, SECTION.replace(old, new))


def test_an_empty_claim_name_turns_that_claim_off(tmp_path: Path) -> None:
    text = SECTION.replace('team_claim = "team"', 'team_claim = "team"\nemail_claim = ""')
    oidc = load_config(write(tmp_path, text), env={}).web.oidc
    assert oidc is not None and oidc.email_claim is None


def test_serving_needs_the_client_secret_in_the_variable_the_configuration_names(
        tmp_path: Path) -> None:
    from icsflow.workflow.web import WebSettings

    config = load_config(write(tmp_path, SECTION), env={})
    with pytest.raises(ConfigurationError, match=r"^ICSFLOW_OIDC_CLIENT_SECRET "
                       r"\(web.oidc.client_secret_env\): not set"):
        apply_config(WebSettings(), config, environ={})
    settings = WebSettings()
    apply_config(settings, config, environ={"ICSFLOW_OIDC_CLIENT_SECRET": "s3cret\n"})
    assert settings.oidc_client_secret == "s3cret" and settings.oidc == config.web.oidc
    assert "s3cret" not in repr(settings)


def test_a_role_map_naming_a_role_no_definition_has_is_named() -> None:
    config = OidcConfig("https://idp.example", "icsflow", {"a": "iro", "b": "iroo"})
    assert unknown_roles(config, {"iro", "cpc"}) == (
        "web.oidc.role_map: 'b' -> 'iroo': not a role of the definitions (they have cpc, iro)")
    assert unknown_roles(config, {"iro", "iroo"}) is None


# -- claims -----------------------------------------------------------------------------------

CONFIG = OidcConfig("https://idp.example", "icsflow",
                    {"icsflow-admin": "admin", "icsflow-iro": "iro", "icsflow-tm": "team_manager"},
                    team_claim="ext.team", service_claim="service")


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "0f3a", "preferred_username": "alice", **extra}


def test_the_first_role_map_entry_the_user_holds_gives_the_role() -> None:
    both = claims(roles=["icsflow-tm", "all-staff", "icsflow-iro"])
    assert role_for(CONFIG, both) == ("iro", ("icsflow-tm", "all-staff", "icsflow-iro"))
    assert role_for(CONFIG, claims(roles="icsflow-admin"))[0] == "admin"


def test_a_user_holding_no_mapped_value_has_no_role() -> None:
    assert role_for(CONFIG, claims(roles=["all-staff"])) == (None, ("all-staff",))
    assert role_for(CONFIG, claims()) == (None, ())
    assert role_for(CONFIG, claims(roles=[{"name": "icsflow-iro"}, 7]))[0] is None


def test_a_role_claim_may_be_a_path_into_nested_claims() -> None:
    nested = OidcConfig("https://idp.example", "icsflow", {"iro": "iro"},
                        role_claim="realm_access.roles")
    assert role_for(nested, claims(realm_access={"roles": ["iro"]}))[0] == "iro"
    assert role_for(nested, claims(realm_access=["iro"]))[0] is None


def test_the_identity_takes_name_email_team_and_service_from_the_claims() -> None:
    found = identity_from(CONFIG, claims(preferred_username="ＡＬＩＣＥ", roles=["icsflow-iro"],
                                         email="Alice@Council.Example",
                                         ext={"team": "north-team"}, service="cic"))
    assert found.user_name == "ALICE"  # NFKC: full-width letters made plain
    assert (found.role, found.email, found.team, found.service) == (
        "iro", "alice@council.example", "north-team", "cic")
    assert (found.issuer, found.subject) == ("https://idp.example", "0f3a")


def test_claims_that_are_not_one_clean_line_are_left_out() -> None:
    found = identity_from(CONFIG, claims(email="not an address", service="a\nb",
                                         ext={"team": 5}))
    assert found.email is None and found.service is None and found.team is None


@pytest.mark.parametrize(("given", "words"), [
    ({"sub": None}, "names no subject"),
    ({"preferred_username": ""}, "no preferred_username claim"),
    ({"preferred_username": "al ice"}, "holds a space"),
    ({"preferred_username": "ali\u202ece"}, "invisible or control character"),
    ({"preferred_username": "\u0430lice"}, "mixes letters of several scripts"),
    ({"preferred_username": "a" * 101}, "at most 100"),
])
def test_a_claim_that_cannot_name_a_user_is_refused(given: dict[str, Any], words: str) -> None:
    with pytest.raises(ClaimProblem, match=words):
        identity_from(CONFIG, {**claims(), **given})


# -- the ID token -----------------------------------------------------------------------------

ISSUER = "https://idp.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
PUBLISHED = KeySet.import_key_set({"keys": [KEY.as_dict(private=False)]})
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def token(key: Any = KEY, alg: str = "RS256", kid: str = "k1", **changes: Any) -> str:
    claims = {"iss": ISSUER, "sub": "0f3a", "aud": "icsflow", "nonce": "n-1",
              "iat": int(NOW.timestamp()), "exp": int((NOW + timedelta(hours=1)).timestamp())}
    claims.update(changes)
    return jwt.encode({"alg": alg, "kid": kid}, {k: v for k, v in claims.items()
                                                 if v is not None}, key)


def verify(value: str, *, nonce: str = "n-1", access_token: Any = None,
           now: datetime = NOW) -> dict[str, Any]:
    return verify_id_token(value, PUBLISHED, issuer=ISSUER, client_id="icsflow", nonce=nonce,
                           access_token=access_token, now=now, algorithms=["RS256"])


def refused(value: str, **kw: Any) -> str:
    with pytest.raises(SignOnError) as caught:
        verify(value, **kw)
    assert caught.value.status == 502
    return caught.value.detail


def test_a_good_id_token_gives_its_claims() -> None:
    assert verify(token())["sub"] == "0f3a"
    assert verify(token(aud=["icsflow"]))["aud"] == ["icsflow"]


def test_an_access_token_hash_that_matches_is_accepted_and_one_that_does_not_refused() -> None:
    digest = hashlib.sha256(b"the-access-token").digest()[:16]
    at_hash = urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert verify(token(at_hash=at_hash), access_token="the-access-token")
    assert "at_hash" in refused(token(at_hash=at_hash), access_token="another-token")


@pytest.mark.parametrize(("changes", "words"), [
    ({"nonce": "n-2"}, "its nonce is not this sign-in's"),
    ({"nonce": None}, "its nonce is not this sign-in's"),
    ({"aud": "another-app"}, "its aud claim is wrong or missing"),
    ({"aud": ["another-app", "icsflow"], "azp": "another-app"}, "its azp claim"),
    ({"iss": "https://evil.example"}, "its iss claim is wrong or missing"),
    ({"sub": None}, "its sub claim"),
    ({"exp": int((NOW - timedelta(minutes=5)).timestamp())}, "it has expired"),
    ({"iat": int((NOW + timedelta(hours=1)).timestamp())}, "its iat claim"),
])
def test_an_id_token_whose_claims_do_not_hold_is_refused(changes: dict[str, Any],
                                                        words: str) -> None:
    assert words in refused(token(**changes))


def test_a_minute_of_clock_difference_is_allowed() -> None:
    assert verify(token(exp=int((NOW - timedelta(seconds=30)).timestamp())))


def test_an_id_token_signed_by_another_key_is_refused() -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    assert "signature does not verify" in refused(token(key=other))
    assert "key the provider's key set does not hold" in refused(token(key=other, kid="k9"))


def test_a_tampered_id_token_is_refused() -> None:
    head, body, signature = token().split(".")
    forged = token(sub="someone-else").split(".")[1]
    assert "signature does not verify" in refused(f"{head}.{forged}.{signature}")


def test_an_id_token_signed_with_the_shared_secret_or_unsigned_is_refused() -> None:
    secret = OctKey.import_key(b"x" * 32)
    assert "id token" in refused(token(key=secret, alg="HS256"))
    head = urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    body = token().split(".")[1]
    assert "id token" in refused(f"{head}.{body}.")


def test_garbage_is_refused_without_a_traceback() -> None:
    for value in ("", "a.b", "not-a-token", "...."):
        assert refused(value)
