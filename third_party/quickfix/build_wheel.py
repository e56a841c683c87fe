"""Build the ``quickfix`` wheel the venue runs on: QuickFIX 1.16.0 with TLS compiled in and the fixgw patch.

    python third_party/quickfix/build_wheel.py [--wheel-dir .wheels]

PyPI has only the source of ``quickfix`` for Linux, built without TLS. This script downloads that source
(``pip download``), checks its SHA-256, applies ``fixgw-1.16.0.patch`` (see README.md here), and builds
``quickfix-1.16.0+fixgw.5-*.whl`` into the wheel directory with OpenSSL (``HAVE_SSL``), never through pip's wheel
cache (which keys on the source, not on the flags, and would hand back a plain build). It takes about 6 minutes on
2 cores and needs a C++ compiler and OpenSSL's headers; as root it installs Debian's ``g++``/``libssl-dev`` when
they are missing. A wheel already built from the same patch and recipe is kept (``BUILD-ID`` next to it).

Exit status 0 when the wheel is there, 1 when it could not be built (the Makefile then installs the plain PyPI
build: the venue runs, in plain text only, and says so).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATCH = HERE / "fixgw-1.16.0.patch"
SDIST = "quickfix-1.16.0.tar.gz"
SDIST_SHA256 = "825aceb72cfd69c30fbbf5b380b66f464abe1fe3188374f13d8c9987dd8eb4e9"
VERSION = "1.16.0+fixgw.5"
# setuptools compiles the .cpp files with CFLAGS or CXXFLAGS depending on its version: give both. Setting them
# drops the interpreter's own flags (its -O3): without an explicit -O3 the module was built unoptimised and the
# acceptor spent 2.5x the CPU per message (BENCHMARKS.md). The libraries go after the objects only with
# --no-as-needed (otherwise the module fails to import: undefined BN_get_rfc3526_*).
BUILD_ENV = {
    "CFLAGS": "-O3 -DHAVE_SSL=1",
    "CXXFLAGS": "-O3 -DHAVE_SSL=1",
    "LDFLAGS": "-Wl,--no-as-needed -lssl -lcrypto",
}


def build_id() -> str:
    """What the wheel depends on: the patch, the flags and the source's checksum."""
    h = hashlib.sha256(PATCH.read_bytes())
    h.update(repr(sorted(BUILD_ENV.items())).encode() + SDIST_SHA256.encode() + VERSION.encode())
    return h.hexdigest()


def say(text: str) -> None:
    print(f"build_wheel: {text}", flush=True)


def _have_openssl_headers() -> bool:
    return any(Path(d, "openssl", "ssl.h").exists() for d in ("/usr/include", "/usr/local/include"))


def _have_compiler() -> bool:
    return any(shutil.which(c) for c in ("c++", "g++", "clang++"))


def ensure_toolchain() -> None:
    """A C++ compiler and OpenSSL's headers; as root on Debian, installed with apt when missing."""
    if _have_openssl_headers() and _have_compiler():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing g++ and libssl-dev with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "g++", "libssl-dev"], check=True, env=env
        )
    if not (_have_openssl_headers() and _have_compiler()):
        raise RuntimeError("a C++ compiler and OpenSSL's headers are needed (Debian: apt-get install g++ libssl-dev)")


def apply_patch(source: Path) -> None:
    """``git apply`` (any clone of this repository has git), else ``patch``."""
    if shutil.which("git"):
        subprocess.run(["git", "apply", "--whitespace=nowarn", str(PATCH)], cwd=source, check=True)
    elif shutil.which("patch"):
        subprocess.run(["patch", "-p1", "-i", str(PATCH)], cwd=source, check=True)
    else:
        raise RuntimeError("neither git nor patch is installed")


def build(wheel_dir: Path, python: str) -> Path:
    ensure_toolchain()
    with tempfile.TemporaryDirectory(prefix="quickfix-build-") as tmp:
        work = Path(tmp)
        say("downloading the quickfix 1.16.0 source from PyPI")
        subprocess.run(
            [python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "--no-cache-dir",
             "-d", str(work), "quickfix==1.16.0"],
            check=True,
        )  # fmt: skip
        archive = work / SDIST
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            raise RuntimeError(f"{SDIST} has SHA-256 {digest}, expected {SDIST_SHA256}")
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = work / "quickfix-1.16.0"
        apply_patch(source)
        say("compiling with TLS (about 6 minutes on 2 cores)")
        wheel_dir.mkdir(parents=True, exist_ok=True)
        for old in wheel_dir.glob("quickfix-*.whl"):
            old.unlink()
        subprocess.run(
            [python, "-m", "pip", "wheel", "-q", "--no-cache-dir", "--no-deps", "-w", str(wheel_dir), str(source)],
            check=True, env={**os.environ, **BUILD_ENV},
        )  # fmt: skip
    wheels = sorted(wheel_dir.glob(f"quickfix-{VERSION}-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip built no quickfix-{VERSION} wheel in {wheel_dir}")
    (wheel_dir / "BUILD-ID").write_text(build_id() + "\n")
    return wheels[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel-dir", type=Path, default=Path(".wheels"))
    parser.add_argument("--python", default=sys.executable, help="the Python whose pip builds the wheel")
    args = parser.parse_args()
    stamp = args.wheel_dir / "BUILD-ID"
    existing = sorted(args.wheel_dir.glob(f"quickfix-{VERSION}-*.whl"))
    if existing and stamp.exists() and stamp.read_text().strip() == build_id():
        say(f"{existing[-1].name} is up to date")
        return 0
    try:
        wheel = build(args.wheel_dir, args.python)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        say(f"FAILED: {exc}")
        return 1
    say(f"built {wheel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
