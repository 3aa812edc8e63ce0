"""Certificates made for a test with the ``openssl`` command line: CAs, server certificates
for 127.0.0.1 and client certificates (EC P-256; CAs valid two days, the others 30: more
than the 14 days acsd warns of expiry within); and https clients."""

from __future__ import annotations

import http.client
import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path
    name: str


def _openssl(*args: str | Path, cwd: Path) -> None:
    assert OPENSSL is not None
    proc = subprocess.run(
        [OPENSSL, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))}: {proc.stderr}")


def make_ca(folder: Path, name: str) -> Pair:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", *_EC, "-keyout", key, "-out", cert, "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return Pair(cert, key, name)


def make_leaf(folder: Path, name: str, ca: Pair, *, client: bool = False, days: int = 30) -> Pair:
    """A certificate signed by ``ca``: for a server on 127.0.0.1, or for a client; valid
    for ``days`` from now (-1: it expired a day ago)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    csr, ext = folder / f"{name}.csr", folder / f"{name}.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n"
        f"subjectAltName={f'DNS:{name}' if client else 'IP:127.0.0.1,DNS:localhost'}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl("req", "-new", *_EC, "-keyout", key, "-out", csr, "-subj", f"/CN={name}", cwd=folder)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial",
        str(secrets.randbits(62) + 1), "-out", cert, "-days", str(days),
        "-extfile", ext,
        cwd=folder,
    )  # fmt: skip
    return Pair(cert, key, name)


@dataclass(frozen=True)
class Pki:
    """What the TLS tests use: one CA with a server and a client certificate, a second
    server certificate of the same CA, and a client certificate of an unrelated CA."""

    ca: Pair
    server: Pair
    server2: Pair
    client: Pair
    other_ca: Pair
    stranger: Pair


def make_pki(folder: Path) -> Pki:
    ca = make_ca(folder, "acsd-test-ca")
    other = make_ca(folder, "other-ca")
    return Pki(
        ca=ca,
        server=make_leaf(folder, "acs-one", ca),
        server2=make_leaf(folder, "acs-two", ca),
        client=make_leaf(folder, "cpe-one", ca, client=True),
        other_ca=other,
        stranger=make_leaf(folder, "cpe-stranger", other, client=True),
    )


# --- clients -------------------------------------------------------------------------------


def https(url: str) -> str:
    return url.replace("http://", "https://", 1)


def client_context(pki: Pki, cert: Pair | None = None, *, tls12: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    if tls12:  # the client then learns of a refusal in the handshake itself
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def get(url: str, path: str, context: ssl.SSLContext) -> tuple[int, bytes, str]:
    """GET over https: status, body and the CN of the server's certificate."""
    host, port = host_port(url)
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        assert conn.sock is not None
        peer = conn.sock.getpeercert()
        cn = dict(item[0] for item in peer["subject"])["commonName"]
        response = conn.getresponse()
        return response.status, response.read(), cn
    finally:
        conn.close()


def refused(url: str, context: ssl.SSLContext) -> bool:
    """True if the server ends the TLS connection before any HTTP answer."""
    try:
        status, _, _ = get(url, "/", context)
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
        return True
    raise AssertionError(f"the server answered HTTP {status}")
