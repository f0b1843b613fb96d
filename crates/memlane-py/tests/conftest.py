"""Shared fixtures: a private segment directory per test, unique names, the
`memlane` command and a helper to run Python children."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def shm_dir(tmp_path_factory, monkeypatch):
    """A fresh segment directory (``$MEMLANE_DIR``, inherited by children),
    removed with everything in it after the test, pass or fail."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    d = Path(
        __import__("tempfile").mkdtemp(prefix="memlane-pytest-", dir=base)
    )
    monkeypatch.setenv("MEMLANE_DIR", str(d))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def name(shm_dir, request):
    """A name unique to this test (and run)."""
    return f"py-{request.node.name[:24].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def memlane_cli() -> str:
    """The `memlane` command: $MEMLANE_CLI, else built with cargo."""
    cli = os.environ.get("MEMLANE_CLI")
    if cli:
        return cli
    subprocess.run(
        ["cargo", "build", "-q", "-p", "memlane-cli"], cwd=REPO, check=True
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "debug" / "memlane")


def run_python(code: str, *args: str, **kw) -> subprocess.Popen:
    """Starts `python -c code args...` (same interpreter and environment)."""
    return subprocess.Popen([sys.executable, "-c", code, *args], **kw)
