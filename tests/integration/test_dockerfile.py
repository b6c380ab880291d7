"""The server image's Dockerfile, checked without a Docker engine: pinned bases, a non-root final stage
without build tools, a complete pinned dependency closure with binary wheels, a tight build context.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SERVER_REQUIREMENTS = ROOT / "docker" / "requirements-server.txt"
IMAGE_EXTRAS = ("server", "keda")
"""The extras the server image carries (docker/pin_requirements.py's EXTRAS): the API server and the KEDA
external scaler; the Lambda layer carries neither."""
LEFT_OUT_OF_IMAGE = ("shared/tidegauge/demo/",)
"""Copied by ``COPY shared/tidegauge`` but kept out by .dockerignore: the server never imports them."""
BUILD_TOOLS = ("gcc", "g++", "clang", "make", "build-essential", "cmake", "python3-dev", "libc6-dev", "rustc")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [argument for instruction, argument in self.instructions if instruction == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage, continuation lines joined, comments dropped, global ARGs substituted."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, argument = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not stages:
            name, _, default = argument.partition("=")
            global_args[name.strip()] = default.strip()
        elif instruction == "FROM":
            words = argument.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m.group(1) or m.group(2)], words[0])
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=image, name=stage_name))
        else:
            stages[-1].instructions.append((instruction, argument.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def pinned_requirements(path: Path) -> list[Requirement]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("#")]


def test_every_base_image_is_a_pinned_python_312_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "multi-stage: a builder and a final stage"
    for stage in stages:
        if stage.base in {s.name for s in stages}:
            continue
        image, _, digest = stage.base.partition("@")
        repository, _, tag = image.rpartition(":")
        assert repository in {"python", "docker.io/library/python"}, stage.base
        assert re.fullmatch(r"3\.12\.\d+-slim(-[a-z]+)?", tag), f"{stage.base}: pin a full version tag"
        assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), stage.base


def test_final_stage_runs_the_server_as_a_non_root_user(stages: list[Stage]) -> None:
    final = stages[-1]
    assert final.arguments("USER")[-1] == "65532:65532"
    assert json.loads(final.arguments("ENTRYPOINT")[-1]) == ["tidegauge"]
    assert json.loads(final.arguments("CMD")[-1]) == ["serve"]
    exposed = {port for argument in final.arguments("EXPOSE") for port in argument.split()}
    assert exposed == {"6443", "9090", "9443"}
    run = " ".join(final.arguments("RUN"))
    assert "--uid 65532" in run
    assert "--gid 65532" in run


def test_final_stage_has_no_build_tools_and_installs_only_built_wheels(stages: list[Stage]) -> None:
    final = stages[-1]
    commands = " ".join(final.arguments("RUN"))
    words = set(re.split(r"[\s;&|]+", commands))
    assert not [tool for tool in BUILD_TOOLS if tool in words], "build tools in the final stage"
    assert "apt-get" not in words
    assert "apk" not in words
    for match in re.finditer(r"pip install ([^&;]*)", commands):
        assert "--no-index" in match.group(1), "the final stage installs only the builder's wheels"
    assert "pip uninstall --yes pip" in commands, "no package installer left in the image"
    copies_from_builder = [a for a in final.arguments("COPY") if a.startswith("--from")]
    assert not copies_from_builder, "wheels are bind-mounted from the builder, not copied into a layer"


def test_builder_never_compiles(stages: list[Stage]) -> None:
    builder = stages[0]
    commands = builder.arguments("RUN")
    dependency_installs = [c for c in commands if "-r docker/requirements-server.txt" in c]
    assert dependency_installs
    assert all("--only-binary=:all:" in c for c in dependency_installs)
    assert not [c for c in commands if "apt-get" in c]


def test_server_requirements_are_all_pinned() -> None:
    requirements = pinned_requirements(SERVER_REQUIREMENTS)
    names = {canonicalize_name(r.name) for r in requirements}
    assert {"aiohttp", "cryptography", "redis", "pyyaml"} <= names
    assert "kubernetes" not in names, "the server has its own small API client"
    assert "tidegauge" not in names
    assert len(names) == len(requirements), "a package is listed twice"
    for requirement in requirements:
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{requirement} is not pinned with =="
        assert not requirement.marker, f"{requirement}: the image has one platform, no markers"


def test_server_requirements_satisfy_the_declared_server_dependencies() -> None:
    # GIVEN what pyproject.toml declares for the package and the extras the image carries
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [line for extra in IMAGE_EXTRAS for line in project["optional-dependencies"][extra]]
    declared = [Requirement(r) for r in project["dependencies"] + extras]
    pins = {canonicalize_name(r.name): r for r in pinned_requirements(SERVER_REQUIREMENTS)}
    # THEN each is pinned in the image's requirements, within the declared range
    for requirement in declared:
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is missing; run docker/pin_requirements.py"
        (specifier,) = pin.specifier
        assert requirement.specifier.contains(specifier.version), f"{pin} is outside {requirement}"


def test_pin_script_lists_the_server_closure_of_this_environment() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "pin_requirements.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    generated = [
        Requirement(line) for line in result.stdout.splitlines() if line and not line.startswith("#")
    ]
    names = {canonicalize_name(r.name) for r in generated}
    assert {"aiohttp", "cryptography", "redis", "pyyaml", "multidict", "yarl"} <= names
    assert {"grpcio", "protobuf"} <= names, "the KEDA external scaler runs in the image"
    assert "boto3" not in names, "the server never needs AWS SDKs"
    assert "aws-lambda-powertools" not in names, "the server never needs AWS SDKs"
    assert all(str(r.specifier).startswith("==") for r in generated)


def glob_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regular expression: ** spans directories, * and ? do not."""
    regex, index = "", 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            regex, index = regex + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            regex, index = regex + ".*", index + 2
        elif pattern[index] == "*":
            regex, index = regex + "[^/]*", index + 1
        elif pattern[index] == "?":
            regex, index = regex + "[^/]", index + 1
        else:
            regex, index = regex + re.escape(pattern[index]), index + 1
    return regex


def excluded(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = glob_regex(pattern.removeprefix("!").strip("/"))
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            result = not negated
    return result


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/unit/test_model.py",
        "shared/tidegauge.egg-info/PKG-INFO",
        "shared/tidegauge/__pycache__/cli.cpython-312.pyc",
        "functions/collect_sqs/app.py",
        "k8s/base/deployment.yaml",
        "template.yaml",
        ".aws-sam/build/template.yaml",
        "k8s/overlays/self-signed/certs/ca.key",
        "shared/tidegauge/demo/__init__.py",
        "shared/tidegauge/demo/driver.py",
    ],
)
def test_dockerignore_keeps_out(path: str, ignore_patterns: list[str]) -> None:
    assert excluded(path, ignore_patterns), f"{path} would be sent to the Docker daemon"


def copied_from_context(stages: list[Stage]) -> list[Path]:
    """The context paths the Dockerfile's COPY instructions name (not those copied from a stage)."""
    paths: list[Path] = []
    for stage in stages:
        for argument in stage.arguments("COPY"):
            if not argument.startswith("--from"):
                *sources, _destination = shlex.split(argument)
                paths.extend(ROOT / source for source in sources)
    return paths


def test_dockerignore_keeps_everything_the_dockerfile_copies(
    stages: list[Stage], ignore_patterns: list[str]
) -> None:
    for source_path in copied_from_context(stages):
        assert source_path.exists(), f"COPY {source_path.relative_to(ROOT)}: no such path"
        files = [source_path] if source_path.is_file() else list(source_path.rglob("*.py"))
        assert files
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative and not relative.startswith(LEFT_OUT_OF_IMAGE):
                assert not excluded(relative, ignore_patterns), f"{relative} is copied but ignored"


def build_context(stages: list[Stage], patterns: list[str], destination: Path) -> None:
    """Copy what the Dockerfile's COPY instructions take from the context, as .dockerignore filters it."""
    for source_path in copied_from_context(stages):
        files = [source_path] if source_path.is_file() else sorted(source_path.rglob("*"))
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if file.is_file() and not excluded(relative, patterns):
                (destination / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, destination / relative)


# Runs with -S: no site module, so the checkout's editable install (a .pth file) is not on sys.path.
IMAGE_PROBE = """
import contextlib, io, json, sys
shared, *site_packages = sys.argv[1:]
sys.path[:0] = [shared, *site_packages]
import tidegauge, tidegauge.cli, tidegauge.server.command
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    try:
        code = tidegauge.cli.main(["demo"])
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"tidegauge": tidegauge.__file__, "demo_exit": code, "demo_stderr": stderr.getvalue()}))
"""


def test_build_context_without_the_demo_has_every_other_package_and_serves(
    stages: list[Stage], ignore_patterns: list[str], tmp_path: Path
) -> None:
    # GIVEN the build context the Docker daemon receives
    build_context(stages, ignore_patterns, tmp_path)

    # WHEN setuptools discovers the wheel's packages in it, as pyproject.toml tells it to
    where = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    (shared,) = where["where"]
    in_context = set(setuptools.find_namespace_packages(where=str(tmp_path / shared)))
    in_checkout = set(setuptools.find_namespace_packages(where=str(ROOT / shared)))

    # THEN the wheel has every package of the checkout but the demo
    assert "tidegauge.server" in in_context
    assert in_context == {name for name in in_checkout if not name.startswith("tidegauge.demo")}
    # AND the server imports from it alone, while `tidegauge demo` is a usage error naming the fix
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    result = subprocess.run(
        [sys.executable, "-S", "-c", IMAGE_PROBE, str(tmp_path / shared), *sorted(paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["tidegauge"].startswith(str(tmp_path))
    assert probe["demo_exit"] == 2
    assert "no tidegauge.demo" in probe["demo_stderr"]
    assert "make venv" in probe["demo_stderr"]
