"""deploy/ made runnable here: nginx and coturn configs rewritten for a test directory, and the
compose file's services read back as the commands and environments they run.

The rewrites are the ones an operator makes (host name, certificate paths, ports), plus the
paths a test cannot use (/var/log, /srv). Nothing else of the files changes.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.processes import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"


def binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("calls.example.org")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# --- nginx -----------------------------------------------------------------------------------


def nginx_site(
    work: Path,
    *,
    upstream: str,
    servers: dict[str, int] | None = None,
    http_port: int = 80,
    https_port: int = 443,
    static_root: Path | None = None,
) -> Path:
    """A main nginx.conf in ``work`` that includes deploy/nginx/callsite.conf and ``upstream``.

    ``servers`` maps the upstream's ``host:port`` entries to local ports (compose's server1:8000).
    """
    cert, key = self_signed_cert(work / "certs")
    site = (DEPLOY / "nginx" / "callsite.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/calls.example.org/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/calls.example.org/privkey.pem", str(key))
    site = site.replace("/var/log/nginx/", f"{work}/")
    site = site.replace("/srv/callsite/var/static/", f"{static_root or work / 'static'}/")
    site = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", site)  # no IPv6 in every sandbox
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    up = (DEPLOY / upstream).read_text()
    for address, port in (servers or {}).items():
        up = up.replace(f"server {address} ", f"server 127.0.0.1:{port} ")
    (work / "callsite.conf").write_text(site)
    (work / "upstream.conf").write_text(up)
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / "tmp" / temp).mkdir(parents=True, exist_ok=True)
    main = work / "nginx.conf"
    main.write_text(
        f"""
user root;
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {work}/access.log;
    client_body_temp_path {work}/tmp/client_body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    include {work}/upstream.conf;
    include {work}/callsite.conf;
}}
"""
    )
    return main


def nginx_test(main: Path) -> subprocess.CompletedProcess[str]:
    nginx = binary("nginx")
    assert nginx
    return subprocess.run(
        [nginx, "-t", "-c", str(main), "-p", str(main.parent)],
        capture_output=True,
        text=True,
        timeout=30,
    )


# --- coturn ----------------------------------------------------------------------------------


def coturn_argv(work: Path, port: int, *, extra: list[str] | None = None) -> list[str]:
    """turnserver on deploy/coturn/turnserver.conf, moved to loopback and test ports."""
    turnserver = binary("turnserver")
    assert turnserver
    cert, key = self_signed_cert(work / "turn-certs")
    return [
        turnserver,
        "-c",
        str(DEPLOY / "coturn" / "turnserver.conf"),
        *(extra or []),
        f"--listening-port={port}",
        f"--tls-listening-port={port + 1}",
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--min-port={port + 2}",
        f"--max-port={port + 40}",
        f"--cert={cert}",
        f"--pkey={key}",
        f"--pidfile={work}/turnserver.pid",
        "--no-dtls",
    ]


def free_turn_port() -> int:
    """A port free for TCP and UDP, with the next one (TLS) free too: TURN listens on all."""
    import socket

    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port > 65000:
            continue
        try:
            for p, kind in ((port, socket.SOCK_STREAM), (port, socket.SOCK_DGRAM),
                            (port + 1, socket.SOCK_STREAM), (port + 1, socket.SOCK_DGRAM)):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise AssertionError("no free TURN port pair")


CONFIG_ERRORS = ("Bad configuration format", "CONFIG ERROR", "CONFIGURATION ALERT", "ERROR:")


async def turn_allocate(port: int, username: str, password: str) -> tuple[str, int]:
    """A real TURN Allocate over UDP (aioice's client); raises if coturn refuses.

    aioice retransmits a lost request, so a busy machine is waited for up to 20 s.
    """
    import asyncio

    from aioice.turn import create_turn_endpoint

    transport, _ = await asyncio.wait_for(
        create_turn_endpoint(
            asyncio.DatagramProtocol,
            server_addr=("127.0.0.1", port),
            username=username,
            password=password,
            lifetime=60,
        ),
        20,
    )
    try:
        return transport.get_extra_info("sockname")  # the relayed address coturn allocated
    finally:
        transport.close()


# --- compose ---------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with the test's .env values."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            whole, name = match.group(0), match.group(1)
            if name in variables:
                return variables[name]
            if ":-" in whole:
                return whole.split(":-", 1)[1][:-1]
            raise AssertionError(f"compose needs {name}")

        return _VAR.sub(one, value)
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    return value


def compose_services(variables: dict[str, str]) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(COMPOSE.read_text())
    return {name: interpolate(svc, variables) for name, svc in data["services"].items()}
