"""Shared fixtures: the bundled workspace, a copy of it to edit, and the real `verdict` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# CI draws the same examples on every run (a red CI run then reproduces exactly, on any machine); a developer's
# run draws new ones each time, and `pytest -m slow` draws thousands. The differential test's random rules
# once found a join that crashed durable_rules (a NULL read in its join hashing; engine/rete.py durable_safe
# rewrites such joins, tests/test_durable_joins.py): a developer's run keeps exploring, CI stays repeatable.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
FACTS = ROOT / "facts"


def pytest_configure(config: pytest.Config) -> None:
    # Tests (and the commands they run) keep the parse cache to themselves, never in the user's home.
    import tempfile

    os.environ["VERDICT_CACHE_DIR"] = tempfile.mkdtemp(prefix="verdict-test-cache-")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from current output")


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def check_golden(path: Path, text: str, update: bool) -> None:
    """Compare `text` with a golden file. Only the explicit --update-golden flag writes one: a missing
    golden file fails (a file written when missing would compare the output with itself)."""
    if update:
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path.relative_to(ROOT)} is missing: run pytest with --update-golden, "
                    "review it and commit it")
    assert text == path.read_text(encoding="utf-8"), f"output differs from {path.relative_to(ROOT)}"


SHARED = ROOT.parent / "shared"


def as_unprivileged(cmd: list[str]) -> list[str]:
    """`cmd` run as a user file modes bind: unchanged, or as `nobody` when the tests run as root (root reads
    a chmod 000 file). Skips when `nobody` cannot start this interpreter at all (a pyenv build under a
    private home, whose libpython it cannot read): the permission checks then run on the interpreters every
    user can start, such as the system python3 CI tests first."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("tests run as root need setpriv (util-linux) to check file permissions as another user")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "pass"], capture_output=True, text=True, cwd="/")
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot start {sys.executable}: {probe.stderr.strip()}")
    return [*prefix, *cmd]


def need_shared(path: Path) -> Path:
    """A file or folder of the shared data beside the repository (`ROOT.parent / "shared"`). Missing, a
    test skips on a developer's machine but fails in CI (`CI` set), where the data is always present:
    there, a test that skipped would pass without testing anything."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must run the tests that need the shared data")
        pytest.skip(f"{path} not present (shared data beside the repository)")
    return path


@pytest.fixture(scope="session")
def ws():  # type: ignore[no-untyped-def]
    from engine.pipeline import Workspace

    return Workspace.open(RULES, FACTS)


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A private copy of rules/ and facts/ that a test may edit."""
    shutil.copytree(RULES, tmp_path / "rules")
    shutil.copytree(FACTS, tmp_path / "facts")
    return tmp_path


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True, scope="session")
def private_audit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No test writes to the user's real audit log."""
    path = tmp_path_factory.mktemp("audit") / "audit.sqlite3"
    os.environ["VERDICT_AUDIT_DB"] = str(path)
    return path


@pytest.fixture(scope="session")
def verdict() -> Run:
    """Run the installed console script (the real command a user types) in a given directory."""
    exe = shutil.which("verdict", path=str(Path(sys.executable).parent)) or shutil.which("verdict")
    assert exe, "the verdict console script is not installed; run pip install -e ."

    def run(*args: str, cwd: Path = ROOT, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", **(env_extra or {})}
        return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)

    return run
