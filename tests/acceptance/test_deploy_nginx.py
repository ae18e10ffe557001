"""deploy/nginx/icsflow.conf in front of a real `icsflow serve`, on loopback: the recipe's
server blocks run under Debian's nginx with only the certificate paths, listen addresses and
upstream port changed (each change must hit a line the recipe has). Through it: /healthz over
TLS with one HSTS header, HTTP moved to HTTPS, TLS 1.1 refused, a large body refused, and
icsflow sees HTTPS through X-Forwarded-Proto (its cookies are Secure)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import forked_cli
import pytest
from acceptance_support import CLI, ROOT, free_port

RECIPE = ROOT / "deploy" / "nginx" / "icsflow.conf"
NAME = "icsflow.council.example"

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("openssl") is None,
    reason="nginx or openssl is not installed (apt-get install nginx-light openssl)")


def _wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """(https port, http port, CA file) of nginx in front of `icsflow serve`."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={NAME}",
                    "-addext", f"subjectAltName=DNS:{NAME}"], check=True, capture_output=True)
    web, https, plain = free_port(), free_port(), free_port()
    site = RECIPE.read_text(encoding="utf-8")
    for old, new in [
        (f"/etc/letsencrypt/live/{NAME}/fullchain.pem", str(cert)),
        (f"/etc/letsencrypt/live/{NAME}/privkey.pem", str(key)),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("listen 80;", f"listen 127.0.0.1:{plain};"),
        ("listen [::]:80;", ""),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{web};"),
    ]:
        assert site.count(old) == 1, old
        site = site.replace(old, new)
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = "".join(f"{kind}_temp_path {tmp_path / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{\naccess_log {tmp_path / 'access.log'};\n{temp}"
        f"include {tmp_path / 'site.conf'};\n}}\n", encoding="utf-8")
    tested = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c",
                             str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stderr

    db = f"sqlite:///{tmp_path / 'icsflow.db'}"
    forked_cli.run(["--db", db, "db", "upgrade"], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    # As deploy/icsflow.toml sets it: nginx on the same server is the one trusted proxy.
    env["ICSFLOW_WEB_TRUSTED_PROXIES"] = "127.0.0.1,::1"
    server = subprocess.Popen([*CLI, "--db", db, "serve", "--port", str(web)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                              "-g", "daemon off; master_process off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(web)
        _wait_for(https)
        yield https, plain, cert
    finally:
        _stop(nginx)
        _stop(server)


def _tls(cafile: Path, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


def _get(port: int, cafile: Path, path: str, *, method: str = "GET", body: bytes | None = None,
         version: ssl.TLSVersion | None = None) -> http.client.HTTPResponse:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = http.client.HTTPSConnection(NAME, port, timeout=10)
    conn.sock = _tls(cafile, version).wrap_socket(sock, server_hostname=NAME)
    conn.request(method, path, body=body)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_healthz_answers_through_the_proxy_over_tls_with_one_hsts_header(
        proxied: tuple[int, int, Path]) -> None:
    https, _, ca = proxied
    response = _get(https, ca, "/healthz")
    assert response.status == 200
    assert response.headers.get_all("Strict-Transport-Security") == [
        "max-age=63072000; includeSubDomains"]
    assert response.headers["Server"] == "nginx"  # no version: server_tokens off


def test_plain_http_is_moved_to_https(proxied: tuple[int, int, Path]) -> None:
    _, plain, _ = proxied
    conn = http.client.HTTPConnection("127.0.0.1", plain, timeout=10)
    conn.request("GET", "/cases?x=1", headers={"Host": NAME})
    response = conn.getresponse()
    conn.close()
    assert response.status == 301
    assert response.headers["Location"] == f"https://{NAME}/cases?x=1"


def test_tls_1_2_is_accepted_and_tls_1_1_refused(proxied: tuple[int, int, Path]) -> None:
    https, _, ca = proxied
    assert _get(https, ca, "/healthz", version=ssl.TLSVersion.TLSv1_2).status == 200
    # openssl s_client still speaks TLS 1.1 at security level 0 (Python's ssl may not).
    hello = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{https}",
                            "-servername", NAME, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
                           input="", capture_output=True, text=True, timeout=30)
    assert hello.returncode != 0
    assert "Cipher is (NONE)" in hello.stdout  # no session was made


def test_a_body_over_the_limit_is_refused_before_icsflow(proxied: tuple[int, int, Path]) -> None:
    https, _, ca = proxied
    assert _get(https, ca, "/login", method="POST", body=b"x" * (2 << 20)).status == 413


def test_icsflow_sees_https_through_the_proxy_and_marks_cookies_secure(
        proxied: tuple[int, int, Path]) -> None:
    https, _, ca = proxied
    response = _get(https, ca, "/login")
    assert response.status == 200
    cookies = response.headers.get_all("Set-Cookie") or []
    assert cookies and all("Secure" in c for c in cookies)
