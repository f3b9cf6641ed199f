"""The keys that sign bearer tokens: Ed25519 (or RSA of 2048 bits and more) private keys in PEM
files, which only the issuing service reads, and their public halves as a JSON Web Key Set,
which every service verifies with. A key's `kid` is its RFC 7638 thumbprint, so the same file
always names the same key and a rotation never reuses a name.

    python -m chassis.keys generate <file>         a new Ed25519 private key (mode 0600)
    python -m chassis.keys rotate <folder>         signing.pem -> previous.pem, a new signing.pem
    python -m chassis.keys jwks <file> [<file>]    the public JWK Set of private key files

Development keys are generated on first use into `.dev/keys/` of the checkout (git-ignored):
never committed, never used in production (`chassis.secrets` refuses them there).
"""

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT_FOLDER = ROOT / ".dev" / "keys"
SIGNING_FILE = "signing.pem"
PREVIOUS_FILE = "previous.pem"
JWKS_FILE = "jwks.json"
MINIMUM_RSA_BITS = 2048


class KeyProblem(ValueError):
    """A key file that cannot sign tokens safely; the message says why, in a few words."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str  # the JWS `alg`: EdDSA or RS256
    private_key: object

    def public_jwk(self) -> dict:
        return public_jwk(self.private_key.public_key())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(number: int) -> bytes:
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 of the key's required members, sorted, without whitespace."""
    required = {"OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(public_key) -> dict:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "alg": "EdDSA"}
    elif isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        jwk = {
            "kty": "RSA",
            "n": _b64url(_int_bytes(numbers.n)),
            "e": _b64url(_int_bytes(numbers.e)),
            "alg": "RS256",
        }
    else:
        raise KeyProblem("is not an Ed25519 or RSA key")
    return {**jwk, "use": "sig", "kid": thumbprint(jwk)}


def load_private_key(path: str | Path) -> SigningKey:
    """The signing key in a PEM file; `KeyProblem` when it is missing, unreadable, of another
    kind, or an RSA key shorter than 2048 bits."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyProblem(f"cannot be read ({exc.strerror or exc})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyProblem("is not an unencrypted PEM private key") from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MINIMUM_RSA_BITS:
        raise KeyProblem(f"is an RSA key of {key.key_size} bits, too weak: use Ed25519")
    jwk = public_jwk(key.public_key())
    return SigningKey(kid=jwk["kid"], algorithm=jwk["alg"], private_key=key)


def jwks(keys) -> dict:
    """The public JWK Set of signing keys, the current one first."""
    return {"keys": [key.public_jwk() for key in keys]}


def new_key() -> SigningKey:
    """A new Ed25519 key, in memory."""
    key = ed25519.Ed25519PrivateKey.generate()
    jwk = public_jwk(key.public_key())
    return SigningKey(kid=jwk["kid"], algorithm=jwk["alg"], private_key=key)


def generate(path: str | Path) -> SigningKey:
    """A new Ed25519 private key written to `path`, readable by its owner only."""
    key = new_key().private_key
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    os.replace(temporary, path)
    return load_private_key(path)


def rotate(folder: str | Path) -> tuple[SigningKey, SigningKey | None]:
    """The folder's signing key becomes the previous one (still verified, still published) and a
    new one signs: (new, previous). The key previous to that is dropped; rotate again only after
    the access tokens it signed have expired (`JWT_TTL_SECONDS`)."""
    folder = Path(folder)
    current = folder / SIGNING_FILE
    previous = None
    if current.exists():
        previous = load_private_key(current)
        os.replace(current, folder / PREVIOUS_FILE)
    return generate(current), previous


@contextlib.contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # processes starting together generate one key
        yield


def development_keys(folder: Path = DEVELOPMENT_FOLDER) -> tuple[Path, Path]:
    """(signing key, JWK Set) of this checkout's development keys, generated on first use."""
    signing, published = folder / SIGNING_FILE, folder / JWKS_FILE
    if not (signing.exists() and published.exists()):
        with _locked(folder):
            if not signing.exists():
                generate(signing)
            if not published.exists():
                text = json.dumps(jwks([load_private_key(signing)]), indent=2)
                temporary = published.with_name(f".{published.name}.{os.getpid()}")
                temporary.write_text(text + "\n")
                os.replace(temporary, published)
    return signing, published


def within_development_folder(path: str | Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(DEVELOPMENT_FOLDER.resolve())
    except OSError:
        return False


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "generate":
        key = generate(argv[1])
        print(f"{argv[1]}: a new Ed25519 key, kid {key.kid}")
        return 0
    if len(argv) == 2 and argv[0] == "rotate":
        new, previous = rotate(argv[1])
        print(f"signing now: {new.kid}")
        if previous:
            print(f"previous (still verified): {previous.kid}")
        return 0
    if len(argv) >= 2 and argv[0] == "jwks":
        try:
            keys = [load_private_key(path) for path in argv[1:]]
        except KeyProblem as exc:
            print(f"a key file {exc}", file=sys.stderr)
            return 1
        print(json.dumps(jwks(keys), indent=2))
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
