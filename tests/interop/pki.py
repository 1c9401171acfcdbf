"""Test PKI for the interoperability suite: a test CA and the server certificates (Python
`cryptography`). Everything is written as PEM files into a directory; nothing is trusted
system-wide (clients get the CA with --ca-file / -F / -CAfile / SSL_CERT_FILE)."""

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


@dataclass
class Issued:
    """A key and certificate written to disk."""

    key_pem: Path
    cert_pem: Path
    # key + leaf (+ CA when issued by the CA): what Postfix's smtpd_tls_chain_files takes.
    chain_pem: Path
    # key + leaf (+ CA): nginx takes the certificates and the key as separate files.
    fullchain_pem: Path
    cert: x509.Certificate

    def spki_sha256(self) -> str:
        """TLSA 3 1 1 / 2 1 1 association data of this certificate."""
        spki = self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).hexdigest()

    def cert_sha256(self) -> str:
        """TLSA 3 0 1 / 2 0 1 association data of this certificate."""
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestCA:
    """A self-signed test CA that issues server certificates."""

    def __init__(self, directory: Path, cn: str = "mxray interop test CA"):
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - 2 * DAY)
            .not_valid_after(NOW + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pem = directory / "ca.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def cert_sha256(self) -> str:
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    def issue(self, stem: str, names, *, not_before=None, not_after=None,
              self_signed: bool = False, rsa_bits: int = 0) -> Issued:
        """A server certificate for `names` (SANs; the first is also the CN); an EC P-256 key,
        or an RSA key of `rsa_bits` bits."""
        key = (rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits) if rsa_bits
               else ec.generate_private_key(ec.SECP256R1()))
        issuer_key, issuer_name = (key, _name(names[0])) if self_signed else (
            self.key, self.cert.subject)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - DAY)
            .not_valid_after(not_after or NOW + 90 * DAY)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        cert = builder.sign(issuer_key, hashes.SHA256())
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        ca_pem = b"" if self_signed else self.cert.public_bytes(serialization.Encoding.PEM)
        paths = {s: self.dir / f"{stem}.{s}.pem" for s in ("key", "cert", "chain", "fullchain")}
        paths["key"].write_bytes(_key_pem(key))
        paths["cert"].write_bytes(cert_pem)
        paths["chain"].write_bytes(_key_pem(key) + cert_pem + ca_pem)
        paths["fullchain"].write_bytes(cert_pem + ca_pem)
        for p in paths.values():
            p.chmod(0o644)
        return Issued(paths["key"], paths["cert"], paths["chain"], paths["fullchain"], cert)
