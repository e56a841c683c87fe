"""Logon credentials: salted PBKDF2-SHA256 password hashes, never the passwords themselves.

A stored hash looks like ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``. ``python -m gateway.auth PASSWORD``
prints a new one for the config. Verification results are cached per (CompID, password digest) so that a thousand
sessions reconnecting at once do not cost a thousand key derivations each time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys

ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 20_000


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """A new salted hash of ``password`` in the stored format."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches the stored hash (constant-time comparison)."""
    try:
        algorithm, iterations, salt, expected = stored.split("$")
    except ValueError:
        return False
    if algorithm != ALGORITHM:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


class Authenticator:
    """Checks Username (553) / Password (554) of a Logon against the configured hash of each CompID."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self._hashes = hashes
        self._verified: set[tuple[str, str]] = set()

    def check(self, comp_id: str, username: str | None, password: str | None) -> str | None:
        """None if the logon may proceed, else the reason to put in the Logout's Text."""
        stored = self._hashes.get(comp_id)
        if stored is None:
            return f"no credentials configured for {comp_id}"
        if not username or not password:
            return "Username (553) and Password (554) are required"
        if username != comp_id:
            return "Username (553) must equal SenderCompID (49)"
        key = (comp_id, hashlib.sha256(f"{stored}\0{password}".encode()).hexdigest())
        if key in self._verified:
            return None
        if not verify_password(password, stored):
            return "invalid username or password"
        self._verified.add(key)
        return None


if __name__ == "__main__":  # pragma: no cover - tiny helper for operators
    if len(sys.argv) != 2:
        sys.exit("usage: python -m gateway.auth PASSWORD")
    print(hash_password(sys.argv[1]))
