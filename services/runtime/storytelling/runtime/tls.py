"""TLS for the gRPC and metrics servers, from certificate files that are reloaded when they change.

gRPC asks `ServerCertificates` for its certificate at every TLS handshake (dynamic server credentials);
the answer is the files as they are now, checked at most every `check_interval_s`, so a certificate that
cert-manager rotates is served to new connections without a restart. A rotation caught half-written (a
key that does not match the certificate) is refused and the previous pair stays in use until the files
agree again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from storytelling.runtime.watch import FileWatch

log = logging.getLogger("storytelling.tls")


class TlsError(ValueError):
    """Certificate files that cannot be used; the message names the file."""


@dataclass(frozen=True)
class CertificatePair:
    """PEM bytes of a certificate chain and its private key, and the CA bundle for client certificates."""

    cert: bytes
    key: bytes
    client_ca: bytes | None


@contextlib.contextmanager
def _as_file(data: bytes) -> Iterator[str]:
    """`data` under a path that only this process can read (ssl loads certificates from paths only)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("storytelling-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile(prefix="storytelling-tls-") as file:  # created with mode 0600
        file.write(data)
        file.flush()
        yield file.name


def server_context(pair: CertificatePair) -> ssl.SSLContext:
    """A TLS server context for `pair`; raises TlsError if the key does not match the certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        with _as_file(pair.cert) as cert, _as_file(pair.key) as key:
            context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise TlsError(
            f"the private key does not match the certificate, or either is not PEM ({exc})"
        ) from None
    if pair.client_ca is not None:
        try:
            context.load_verify_locations(cadata=pair.client_ca.decode("ascii", "replace"))
        except ssl.SSLError as exc:
            raise TlsError(f"the client CA bundle is not PEM certificates ({exc})") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class CertificateFiles:
    """The certificate, key and optional client CA files of one server, read and validated together."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.paths = [p for p in (cert, key, client_ca) if p is not None]

    def read(self) -> tuple[CertificatePair, ssl.SSLContext]:
        """The files' contents and a server context built from exactly those bytes; raises TlsError."""
        contents = []
        for path in self.paths:
            try:
                contents.append(path.read_bytes())
            except OSError as exc:
                raise TlsError(f"{path}: cannot read: {exc.strerror or exc}") from None
        pair = CertificatePair(contents[0], contents[1], contents[2] if self.client_ca else None)
        try:
            return pair, server_context(pair)
        except TlsError as exc:
            raise TlsError(f"{self.cert}, {self.key}: {exc}") from None


class ServerCertificates:
    """The current certificate of a server, for gRPC (`credentials`) and the metrics endpoint (`context`).

    `require_client_certificate` makes it mutual TLS: clients must present a certificate signed by the
    client CA bundle (which identities may call is checked per RPC, by `auth.PeerPolicy`).
    """

    def __init__(
        self,
        files: CertificateFiles,
        check_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files = files
        self.require_client_certificate = files.client_ca is not None
        self._interval, self._clock = check_interval_s, clock
        self._lock = threading.Lock()  # gRPC calls the fetcher from its own threads
        self._watch = FileWatch(files.paths)
        self._watch.changed()
        self.pair, self.context = files.read()  # at start-up a bad file stops the service
        self._checked_at = clock()
        self._handed_to_grpc: CertificatePair | None = None

    def refresh(self) -> bool:
        """Reads the files again if they changed (checked at most every interval); True if now different."""
        with self._lock:
            now = self._clock()
            if now - self._checked_at < self._interval:
                return False
            self._checked_at = now
            if not self._watch.changed():
                return False
            try:
                pair, context = self.files.read()
            except TlsError as exc:
                log.error("certificate change refused; the previous certificate stays in use: %s", exc)
                return False
            if pair == self.pair:
                return False
            self.pair, self.context = pair, context
            log.info("certificate reloaded", extra={"cert_file": str(self.files.cert)})
            return True

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_configuration(),
            self._fetch,
            require_client_authentication=self.require_client_certificate,
        )

    def _grpc_configuration(self) -> grpc.ServerCertificateConfiguration:
        pair = self._handed_to_grpc = self.pair
        return grpc.ssl_server_certificate_configuration(
            [(pair.key, pair.cert)], root_certificates=pair.client_ca
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's per-handshake question: a new configuration, or None to keep the current one."""
        try:
            self.refresh()
            if self.pair is self._handed_to_grpc:
                return None
            return self._grpc_configuration()
        except Exception:  # noqa: BLE001 - an exception here would fail the handshake, not reach anyone
            log.exception("certificate fetch failed; keeping the current certificate")
            return None


def peer_names(auth_context: dict[str, list[bytes]]) -> list[str]:
    """The identities a verified client certificate claims: its SAN entries, then its subject CN."""
    names = [
        *auth_context.get("x509_subject_alternative_name", ()),
        *auth_context.get("x509_common_name", ()),
    ]
    return [name.decode("utf-8", "replace") for name in names]
