"""The server image's Python closure, built as the Dockerfile builds it, from the pinned requirements.

Two questions, each answered from pinned inputs only (docker/requirements-server.txt, pyproject.toml, the
project's source), so the verdict changes when the project's files change and not with the interpreter
that runs the check:
- Is the pinned list exactly the dependency closure of the server's roots for the image's interpreter
  (CPython 3.12 on Debian bookworm, glibc 2.36, amd64 and arm64), with a binary wheel for each? Each pinned
  wheel's own metadata is read and its markers are evaluated for the image, not for this machine.
- Does the server start from that closure alone? Wheels of the pins plus the project wheel go into a
  fresh virtualenv with ``pip install --no-index`` (the final stage's command); every ``tidegauge.server``
  module must import there and ``tidegauge serve --help`` must run.
"""

from __future__ import annotations

import email.parser
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.integration.test_dockerfile import IMAGE_EXTRAS, excluded, ignore_patterns, pinned_requirements

__all__ = ["ignore_patterns"]  # a fixture, used by name

ROOT = Path(__file__).resolve().parents[2]
SERVER_REQUIREMENTS = ROOT / "docker" / "requirements-server.txt"
# The base image is python:3.12.x-slim-bookworm: glibc 2.36, so any manylinux wheel up to glibc 2.36 fits
# (pip does not widen an explicit --platform to the older tags itself).
IMAGE_MACHINES = ("aarch64", "x86_64")
IMPORT_NAMES = {"pyyaml": "yaml", "grpcio": "grpc", "protobuf": "google"}
"""Distribution -> top-level module, where they differ."""
GLIBC_MINORS = range(17, 37)


def platform_arguments(machine: str) -> list[str]:
    tags = [f"manylinux_2_{minor}_{machine}" for minor in GLIBC_MINORS] + [f"manylinux2014_{machine}"]
    return [argument for tag in tags for argument in ("--platform", tag)]


def image_marker_environment() -> dict[str, str]:
    """docker/pin_requirements.py's marker environment for the image (it is a script, not a module)."""
    spec = importlib.util.spec_from_file_location("pin_requirements", ROOT / "docker" / "pin_requirements.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.TARGET)


IMPORT_EVERY_SERVER_MODULE = """
import importlib, json, pkgutil, sys
import tidegauge.keda, tidegauge.server
names = sorted(
    m.name
    for package in (tidegauge.server, tidegauge.keda)
    for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
)
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def pip(*arguments: str, python: str = sys.executable, cwd: Path | None = None) -> None:
    result = subprocess.run(
        [python, "-m", "pip", *arguments, "--quiet", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, f"pip {' '.join(arguments)} failed:\n{result.stderr}"


def server_roots() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [line for extra in IMAGE_EXTRAS for line in project["optional-dependencies"][extra]]
    return [Requirement(line) for line in project["dependencies"] + extras]


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


@pytest.mark.parametrize("machine", IMAGE_MACHINES)
def test_pins_are_the_exact_closure_of_the_server_roots_for_the_image(machine: str, tmp_path: Path) -> None:
    # GIVEN the binary wheel of every pin, exactly that version, for the image's interpreter and platform
    pins = {canonicalize_name(r.name): r for r in pinned_requirements(SERVER_REQUIREMENTS)}
    pip(
        "download", "--no-deps", "--only-binary=:all:", "--dest", str(tmp_path),
        *platform_arguments(machine), "--python-version", "3.12", "--implementation", "cp",
        "--abi", "cp312", "--abi", "abi3", "--abi", "none",
        "-r", str(SERVER_REQUIREMENTS),
    )  # fmt: skip
    wheels = {canonicalize_name(parse_wheel_filename(w.name)[0]): w for w in tmp_path.glob("*.whl")}
    assert set(wheels) == set(pins), f"no binary wheel for {set(pins) - set(wheels)}"
    # WHEN the closure is walked from the server's roots, each wheel's markers evaluated for the image
    environment = image_marker_environment() | {"platform_machine": machine}
    seen: set[tuple[str, str]] = set()
    pending = [(root, "") for root in server_roots()]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate(environment | {"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} (needed by the server on the image) is not pinned"
        (pin,) = pins[name].specifier
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{pins[name]} breaks {requirement}"
        )
        for wanted in ("", *requirement.extras):
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                pending += [(dependency, wanted) for dependency in wheel_requirements(wheels[name])]
    # THEN nothing is missing and nothing is pinned that the server does not need
    needed = {name for name, _extra in seen}
    assert needed == set(pins), f"pinned but not needed by the server: {set(pins) - needed}"


@pytest.fixture(scope="module")
def image_environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding what the image holds: the pinned wheels and the project wheel, nothing else."""
    wheels = tmp_path_factory.mktemp("wheels")
    # The builder stage: wheels only, never a source build.
    pip("wheel", "--only-binary=:all:", "--wheel-dir", str(wheels), "-r", str(SERVER_REQUIREMENTS))
    pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(ROOT))
    # The final stage: install from those wheels with no index.
    environment = tmp_path_factory.mktemp("image") / "venv"
    venv.create(environment, with_pip=True)
    python = str(environment / "bin" / "python")
    (project_wheel,) = wheels.glob("tidegauge-*.whl")
    pip(
        "install", "--no-index", "--find-links", str(wheels), "-r", str(SERVER_REQUIREMENTS),
        str(project_wheel), python=python,
    )  # fmt: skip
    return environment


def run_isolated(environment: Path, *command: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=120, cwd=environment, env=clean, check=False
    )


def test_every_server_module_imports_in_the_image_closure(image_environment: Path) -> None:
    # WHEN every module of tidegauge.server is imported with only the image's packages
    result = run_isolated(image_environment, str(image_environment / "bin" / "python"), "-I", "-c",
                          IMPORT_EVERY_SERVER_MODULE)  # fmt: skip
    # THEN all import (a module importing an unlisted package fails here with ModuleNotFoundError)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "tidegauge.server.app" in report["modules"]
    assert "tidegauge.server.certs" in report["modules"]
    assert "tidegauge.keda.service" in report["modules"]
    # AND every root the server extra declares is really imported by the server (no dead weight)
    loaded = set(report["loaded"])
    for root in server_roots():
        module = IMPORT_NAMES.get(canonicalize_name(root.name), canonicalize_name(root.name))
        assert module.replace("-", "_") in loaded, (
            f"{root.name} is declared for the server but never imported"
        )


def test_serve_help_runs_in_the_image_closure(image_environment: Path) -> None:
    result = run_isolated(image_environment, str(image_environment / "bin" / "tidegauge"), "serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "--tls-cert-file" in result.stdout


def test_the_image_closure_holds_no_kubernetes_client(image_environment: Path) -> None:
    # The server talks to the kube-apiserver with its own small aiohttp client; the `cli` extra would add
    # 12.9 MB of wheels but 90 MB installed (kubernetes alone 74 MB), so doctor runs from a laptop.
    python = str(image_environment / "bin" / "python")
    result = run_isolated(image_environment, python, "-I", "-c", "import kubernetes")
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr
    assert shutil.which("tidegauge", path=str(image_environment / "bin"))


def test_doctor_in_the_image_closure_says_to_run_it_from_a_laptop(image_environment: Path) -> None:
    # GIVEN the image's packages, in a pod (no kubernetes client: README "Operator commands" says why)
    command = [str(image_environment / "bin" / "tidegauge"), "doctor"]
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    clean.pop("KUBECONFIG", None)
    # WHEN `kubectl exec ... -- tidegauge doctor` runs there
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=image_environment, check=False,
        env=clean | {"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
    )  # fmt: skip
    # THEN a usage error naming the fix, not a traceback
    assert result.returncode == 2, result.stderr
    assert "Fix: run it from a laptop with a kubeconfig: `kubectl tidegauge doctor`" in result.stderr
    assert "Traceback" not in result.stderr


def test_image_package_builds_from_the_build_context(tmp_path: Path, ignore_patterns: list[str]) -> None:
    # GIVEN only the files .dockerignore lets into the build context
    context = tmp_path / "context"
    for file in ROOT.rglob("*"):
        relative = file.relative_to(ROOT).as_posix()
        if (
            file.is_file()
            and not relative.startswith((".venv/", ".git/"))
            and not excluded(relative, ignore_patterns)
        ):
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, context / relative)
    # WHEN the builder stage's command builds the tidegauge wheel there
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            ".",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=context,
        check=False,
    )
    # THEN the wheel has the server, the example config and the `tidegauge` command
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("tidegauge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "tidegauge = tidegauge.cli:main" in archive.read(entry_points).decode()
    assert {
        "tidegauge/cli.py",
        "tidegauge/server/command.py",
        "tidegauge/examples/config.yaml",
        "tidegauge/config/default.yaml",
    } <= names
