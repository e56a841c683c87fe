"""Password hashes: salted PBKDF2-SHA256, never the passwords themselves.

A stored hash looks like ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``. New hashes use
:data:`DEFAULT_ITERATIONS` (600,000: OWASP's recommendation for PBKDF2-HMAC-SHA256), about 0.25 s of one core each;
an older hash with fewer iterations still verifies and is re-hashed at the next successful logon
(:mod:`gateway.credentials`). ``python -m gateway.auth PASSWORD`` prints a new hash for the config.

Nothing here runs on the gateway loop: :mod:`gateway.logon` verifies on a worker thread (``hashlib`` releases the
GIL while it derives a key) and answers Logons from what the worker found.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys

ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 1_000  # a stored hash below this is refused when the config is loaded (a typo, not a hash)


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """A new salted hash of ``password`` in the stored format."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${salt.hex()}${digest.hex()}"


def parse_hash(stored: str) -> tuple[int, bytes, bytes]:
    """(iterations, salt, digest) of a stored hash; ValueError naming what is wrong (never the hash itself)."""
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM:
        raise ValueError(f"a password hash must look like {ALGORITHM}$<iterations>$<salt hex>$<hash hex>")
    try:
        iterations, salt, digest = int(parts[1]), bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        raise ValueError("a password hash has a non-numeric iteration count or non-hex salt or hash") from None
    if iterations < MIN_ITERATIONS or not salt or len(digest) != 32:
        raise ValueError(f"a password hash needs at least {MIN_ITERATIONS} iterations, a salt and a 32-byte hash")
    return iterations, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches the stored hash (constant-time comparison). Costs one key derivation."""
    try:
        iterations, salt, expected = parse_hash(stored)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def needs_rehash(stored: str, iterations: int = DEFAULT_ITERATIONS) -> bool:
    """True if ``stored`` is weaker than a new hash with ``iterations`` would be."""
    try:
        return parse_hash(stored)[0] < iterations
    except ValueError:
        return False


if __name__ == "__main__":  # pragma: no cover - tiny helper for operators
    if len(sys.argv) != 2:
        sys.exit("usage: python -m gateway.auth PASSWORD")
    print(hash_password(sys.argv[1]))
