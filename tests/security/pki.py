"""Certificates made at test time with `cryptography`: a CA, and server and client certificates it signs."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path
    name: str

    @property
    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()


class Authority:
    """A certificate authority writing what it issues under `directory`."""

    def __init__(self, directory: Path, name: str = "storytelling test CA") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.name = directory, name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._cert = (
            _builder(subject, self._key.public_key())
            .issuer_name(subject)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert = directory / f"{_slug(name)}.crt"
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        name: str,
        *,
        dns: tuple[str, ...] = ("localhost",),
        ips: tuple[str, ...] = ("127.0.0.1",),
        uris: tuple[str, ...] = (),
        into: Path | None = None,
    ) -> Issued:
        """A leaf certificate with subject CN `name`, written to `into`.crt/.key (default: by name)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        sans += [x509.UniformResourceIdentifier(u) for u in uris]
        builder = _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key.public_key())
        builder = builder.issuer_name(self._cert.subject)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        base = into or self.directory / _slug(name)
        issued = Issued(base.with_suffix(".crt"), base.with_suffix(".key"), name)
        write(issued, cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))
        return issued


def write(issued: Issued, cert: bytes, key: bytes) -> None:
    issued.cert.parent.mkdir(parents=True, exist_ok=True)
    issued.cert.write_bytes(cert)
    issued.key.write_bytes(key)
    issued.key.chmod(0o600)


def common_name(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def _builder(subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=5))
        .not_valid_after(_NOW + datetime.timedelta(days=2))
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")
