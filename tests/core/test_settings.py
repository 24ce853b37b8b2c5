"""hitl.settings.Environment is the one reader of the environment: every variable hitl reads is a field there,
with its type, default and meaning, and no other module reads ``os.environ``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pydantic import SecretStr

from hitl.settings import Environment, environment

ROOT = Path(__file__).resolve().parents[2]
# Where a child process's environment is built (the dev stack's servers, `hitl dev`'s exports): writes, not reads.
BUILDS_CHILD_ENVIRONMENTS = {"hitl/cli/local.py"}
ENVIRON_READS = re.compile(r"\bos\.(environ|getenv)\b")


def _reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
            and node.attr in ("environ", "getenv")]


def test_only_settings_reads_the_environment():
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in sorted((ROOT / "hitl").rglob("*.py"))
                 if str(path.relative_to(ROOT)) not in {"hitl/settings.py", *BUILDS_CHILD_ENVIRONMENTS}
                 for line in _reads(path)]
    for room in ("workflows", "activities"):
        offenders += [f"{path.relative_to(ROOT)}:{line}" for path in sorted((ROOT / room).rglob("*.py")) for line in _reads(path)]
    assert not offenders, f"read the environment through hitl.settings.environment(): {offenders}"


def test_every_variable_hitl_names_is_a_field_with_its_meaning():
    """Each HITL_* variable the code, the README or the manual names is declared, and each declared one says what it is."""
    declared = {field.alias: field for field in Environment.model_fields.values()}
    named = set()
    for path in [*(ROOT / "hitl").rglob("*.py"), ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        named |= set(re.findall(r"\bHITL_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    # Not hitl's: the test suite's own switches (HITL_SCREENSHOTS) and docker compose's (in .env: the files it
    # mounts as secrets, the database it creates; compose hands hitl HITL_SIGNING_KEY and DATABASE_URL).
    named -= {"HITL_SCREENSHOTS", "HITL_SIGNING_KEY_FILE", "HITL_DECISION_KEYS_FILE", "HITL_DB"}
    missing = sorted(n for n in named if n not in declared)
    assert not missing, f"read by hitl (or promised by the README or docs/) but not declared in hitl.settings.Environment: {missing}"
    assert all(field.description for field in declared.values())


def test_empty_values_count_as_unset_and_secrets_stay_secret(monkeypatch):
    monkeypatch.setenv("HITL_APPROVALS_TABLE", "")
    monkeypatch.setenv("HITL_INLINE_WORKER", "  ")  # spaces are a value, refused where it is parsed
    monkeypatch.setenv("HITL_LINK_SECRET", "s3cret")
    env = environment()
    assert env.approvals_table == "approvals" and env.inline_worker == "  "
    assert isinstance(env.link_secret, SecretStr) and "s3cret" not in repr(env)
    assert env.named()["HITL_LINK_SECRET"] == "s3cret"


def test_only_the_variables_names_fill_settings(monkeypatch):
    """A variable named like a field (``url``, ``token``) is nobody's setting: only HITL_URL is the CLI's URL."""
    for name in ("HITL_URL", "HITL_TOKEN", "DATABASE_URL", "HITL_APPROVALS_TABLE", "HITL_LINK_SECRET"):
        monkeypatch.delenv(name, raising=False)  # the suite's own DATABASE_URL, say
    for name in ("url", "token", "database_url", "approvals_table", "link_secret"):
        monkeypatch.setenv(name, "http://elsewhere.example")
    env = environment()
    assert env.url is None and env.token is None and env.database_url is None and env.link_secret is None
    assert env.approvals_table == "approvals" and env.named() == {k: v for k, v in env.named().items() if k.isupper()}
