"""A throw-away CA and server certificate, made fresh at every start.

Clients trust the emulator by pointing ``verify`` at ``<cert-dir>/ca.pem``; nothing is
added to any system trust store.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")
_WILDCARDS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class ServerTls:
    ca_path: Path
    context: ssl.SSLContext


def make_tls(cert_dir: str | os.PathLike[str], bind_host: str = "127.0.0.1") -> ServerTls:
    """Issue a certificate for loopback (plus ``bind_host`` when it names a specific host),
    write the CA certificate to ``<cert_dir>/ca.pem`` and return the server's TLS context."""
    hosts = list(DEFAULT_HOSTS)
    if bind_host not in _WILDCARDS and bind_host not in hosts:
        hosts.append(bind_host)
    ca = trustme.CA(organization_name="Paybridge Salesforce emulator")
    leaf = ca.issue_cert(*hosts)
    directory = Path(cert_dir)
    directory.mkdir(parents=True, exist_ok=True)
    ca_path = directory / "ca.pem"
    # Written beside and renamed, so a client reading ca.pem never sees half a file.
    handle, tmp_name = tempfile.mkstemp(dir=directory, prefix=".ca-", suffix=".pem")
    with os.fdopen(handle, "wb") as tmp:
        tmp.write(ca.cert_pem.bytes())
    os.replace(tmp_name, ca_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    leaf.configure_cert(context)
    return ServerTls(ca_path=ca_path.resolve(), context=context)
