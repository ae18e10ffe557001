"""A real OpenID provider on loopback for the sign-in tests: panva's ``oidc-provider`` (npm,
OpenID Certified) run by Node.js from ``tests/oidc/provider.mjs``.

The package is installed from the npm registry with ``npm ci`` (the versions pinned by
``tests/oidc/package-lock.json``) into a cache outside the checkout,
``~/.cache/icsflow/oidc-provider-<lock digest>`` (``ICSFLOW_CACHE`` moves it), once per lock;
``.ci/run`` installs it before the tests with ``python tests/integration/oidc_support.py``.
Tests skip, saying why, only when Node.js or the package cannot be had.

Also the browser's half of the flow without a browser: ``through_provider`` follows the
provider's redirects and fills its login form with httpx, as a person would, and returns the
address the provider sends the browser back to.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "oidc"
SECRET = "test-client-secret-0123456789"
PASSWORD = "provider-password-1"
CLIENT = "icsflow"

# The provider's accounts: (sub, password, claims). ``roles`` as a council's provider sends
# group-based roles; team and email feed icsflow's access relationships.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"preferred_username": "alice", "name": "Alice Example",
              "email": "Alice.IRO@council.example", "email_verified": True,
              "roles": ["all-staff", "icsflow-iro"]},
    "tm-sub": {"preferred_username": "tm", "email": "tm@council.example",
               "roles": ["icsflow-team-manager"], "team": "tm.1@council.example"},
    "nobody": {"preferred_username": "nobody", "roles": ["all-staff"]},
    "impostor": {"preferred_username": "alice", "roles": ["icsflow-iro"]},
    "bidi": {"preferred_username": "ali\u202ece", "roles": ["icsflow-iro"]},
}
ROLE_MAP = {"icsflow-iro": "iro", "icsflow-team-manager": "team_manager",
            "icsflow-admin": "admin"}


class Unavailable(Exception):
    """Node.js or the package cannot be had here (the tests skip with this reason)."""


def cache_dir() -> Path:
    lock = (SOURCE / "package-lock.json").read_bytes()
    base = Path(os.environ.get("ICSFLOW_CACHE") or Path.home() / ".cache" / "icsflow")
    return base / f"oidc-provider-{hashlib.sha256(lock).hexdigest()[:12]}"


def install() -> Path:
    """The folder holding ``node_modules/oidc-provider`` (installed on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise Unavailable("the OIDC sign-in tests need Node.js and npm on PATH (Debian "
                          "packages nodejs and npm)")
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (pytest-xdist workers)
        if not (target / "node_modules" / "oidc-provider" / "package.json").exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(SOURCE / name, target / name)
            try:
                done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                                      cwd=target, capture_output=True, text=True, timeout=300)
            except subprocess.TimeoutExpired:
                raise Unavailable("npm ci of oidc-provider took over 300 s") from None
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise Unavailable("npm could not install oidc-provider: " + " / ".join(tail))
        script = target / "provider.mjs"
        if not script.exists() or script.read_bytes() != (SOURCE / "provider.mjs").read_bytes():
            staged = target / f"provider.{os.getpid()}.tmp"
            shutil.copyfile(SOURCE / "provider.mjs", staged)
            staged.replace(script)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Provider:
    """A running provider; ``issuer`` is its address, ``base`` the icsflow address its
    client may send browsers back to."""

    issuer: str
    base: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(work: Path, base: str) -> Provider:
    """Start a provider with ``ACCOUNTS`` and one client, ``icsflow``, that may send browsers
    back to ``base`` + /login/oidc/callback (and after sign-out to ``base`` + /login)."""
    folder = install()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = {
        "issuer": issuer, "port": port,
        "clients": [{"client_id": CLIENT, "client_secret": SECRET,
                     "redirect_uris": [base + "/login/oidc/callback"],
                     "post_logout_redirect_uris": [base + "/login"]}],
        "accounts": {sub: {"password": PASSWORD, "claims": claims}
                     for sub, claims in ACCOUNTS.items()},
    }
    path = work / "provider.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    process = subprocess.Popen(["node", str(folder / "provider.mjs"), str(path)], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    provider = Provider(issuer, base, process)
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        provider.log.append(line.rstrip())
        if line.startswith("ready "):
            threading.Thread(target=_drain, args=(process.stdout, provider.log),
                             daemon=True).start()
            return provider
    provider.stop()
    raise RuntimeError("the OpenID provider did not start: " + " / ".join(provider.log[-5:]))


def _drain(stream: Any, log: list[str]) -> None:
    """Keep reading the provider's output (a full pipe would stop it)."""
    for line in stream:
        log.append(line.rstrip())


def through_provider(auth_url: str, account: str, password: str = PASSWORD) -> str:
    """Follow the provider's sign-in from ``auth_url`` as a browser would: its redirects, its
    login form (``account``, ``password``), until it sends the browser elsewhere; returns that
    address (icsflow's callback with the code and state)."""
    import httpx

    issuer = f"{urlsplit(auth_url).scheme}://{urlsplit(auth_url).netloc}"
    with httpx.Client(timeout=30, follow_redirects=False) as browser:
        response = browser.get(auth_url)
        for _ in range(10):
            if response.status_code in (302, 303):
                target = urljoin(str(response.url), response.headers["location"])
                if not target.startswith(issuer):
                    return target
                response = browser.get(target)
                continue
            form = re.search(r'<form method="post" action="([^"]+)"', response.text)
            assert response.status_code == 200 and form, response.text[:500]
            response = browser.post(urljoin(issuer, form.group(1)),
                                    data={"login": account, "password": password})
        raise AssertionError("the provider never sent the browser back")


if __name__ == "__main__":
    try:
        print(install())
    except Unavailable as why:
        print(f"oidc-provider unavailable: {why}", file=sys.stderr)
        sys.exit(1)
