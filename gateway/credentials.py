"""The password hash of each CompID: the config's, or a stronger re-hash of the same password.

The config file names the password (as a hash) and stays the one place an operator changes it. When a Logon
verifies against a hash weaker than the current setting (fewer PBKDF2 iterations), the venue re-hashes the password
it has just verified and keeps the new hash in ``<data_dir>/credentials.json`` (mode 0600), together with the config
hash it replaces. At start-up an upgraded hash is used only while the config still holds the hash it replaced: an
operator who puts a new hash in the config (a new password) overrides the upgrade, which is then forgotten.

The file is rewritten whole (a temporary file, fsync, rename), rarely: once per CompID whose config hash is weak.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "credentials.json"


class CredentialStore:
    """CompID -> the hash its Logons are verified against."""

    def __init__(self, path: Path, configured: dict[str, str]) -> None:
        self.path = path
        self._configured = dict(configured)
        self._upgraded: dict[str, dict[str, str]] = {}  # comp_id -> {"hash": new, "replaces": config hash}
        for comp_id, entry in _read(path).items():
            if isinstance(entry, dict) and configured.get(comp_id) == entry.get("replaces") and entry.get("hash"):
                self._upgraded[comp_id] = {"hash": str(entry["hash"]), "replaces": str(entry["replaces"])}

    def hashes(self) -> dict[str, str]:
        """The hash of every configured CompID, upgrades applied."""
        return {c: self._upgraded[c]["hash"] if c in self._upgraded else h for c, h in self._configured.items()}

    def upgraded(self, comp_id: str) -> bool:
        return comp_id in self._upgraded

    def upgrade(self, comp_id: str, new_hash: str) -> None:
        """Keep ``new_hash`` for ``comp_id`` (a re-hash of the password its configured hash verified)."""
        self._upgraded[comp_id] = {"hash": new_hash, "replaces": self._configured[comp_id]}
        data = json.dumps({"version": 1, "hashes": self._upgraded}, indent=1, sort_keys=True).encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise ValueError(f"{path} is not valid JSON: fix or remove it (the config's hashes then apply)") from None
    hashes = raw.get("hashes") if isinstance(raw, dict) else None
    return hashes if isinstance(hashes, dict) else {}
