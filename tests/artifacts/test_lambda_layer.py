"""Every Lambda Handler in template.yaml imports with only what Lambda will have: the function's
directory, the layer (shared/ and shared/requirements.txt) and the runtime's boto3.

The requirements are installed from the package registry once per test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
LAYER_REQUIREMENTS = ROOT / "shared" / "requirements.txt"

# Runs in `python -I -S`: no site-packages, no PYTHONPATH, no current directory on sys.path.
IMPORT_HANDLER = """
import importlib, json, sys
function_dir, module_name, attribute, *search_path = sys.argv[1:]
sys.path[:0] = [function_dir, *search_path]
module = importlib.import_module(module_name)
handler = getattr(module, attribute)
tidegauge = importlib.import_module("tidegauge")
print(json.dumps({
    "callable": callable(handler),
    "module_file": module.__file__,
    "tidegauge_file": tidegauge.__file__,
    "site_loaded": "site" in sys.modules,
}))
"""


def load_template() -> dict[str, Any]:
    template: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    return template


def serverless_functions() -> dict[str, dict[str, Any]]:
    template = load_template()
    globals_ = template.get("Globals", {}).get("Function", {})
    return {
        name: globals_ | resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def pip_install(target: Path, *arguments: str) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run(
        [*command, "--no-compile", "--target", str(target), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"pip install {' '.join(arguments)} failed:\n{result.stderr}"


@pytest.fixture(scope="session")
def lambda_search_path(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """sys.path entries after the function's directory, in Lambda's order: layer, then runtime."""
    layer_packages = tmp_path_factory.mktemp("layer-packages")
    pip_install(layer_packages, "-r", str(LAYER_REQUIREMENTS))
    runtime_packages = tmp_path_factory.mktemp("runtime-packages")
    pip_install(runtime_packages, f"boto3=={version('boto3')}")
    return [str(ROOT / "shared"), str(layer_packages), str(runtime_packages)]


def environment_for(properties: dict[str, Any]) -> dict[str, str]:
    """The function's environment (a parameter's default for a Ref, else a placeholder) plus what Lambda
    always sets; fake credentials, so nothing reaches AWS."""
    parameters = load_template()["Parameters"]
    environment = {}
    for name, value in properties.get("Environment", {}).get("Variables", {}).items():
        if isinstance(value, dict) and "Ref" in value and "Default" in parameters.get(value["Ref"], {}):
            value = str(parameters[value["Ref"]]["Default"])
        environment[name] = value if isinstance(value, str) else f"placeholder-{name.lower()}"
    environment.update(
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
        AWS_REGION="eu-west-1",
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_LAMBDA_FUNCTION_NAME="tidegauge-handler-check",
        LAMBDA_TASK_ROOT="/var/task",
    )
    return environment


@pytest.mark.parametrize("function_name", sorted(serverless_functions()))
def test_handler_resolves_with_only_the_layer_and_runtime(
    function_name: str, lambda_search_path: list[str]
) -> None:
    # GIVEN the function's CodeUri and Handler from the template
    properties = serverless_functions()[function_name]
    function_dir = ROOT / properties["CodeUri"]
    module_name, attribute = properties["Handler"].rsplit(".", 1)
    module_file = function_dir / (module_name.replace(".", "/") + ".py")
    assert module_file.is_file(), f"{function_name}: Handler {properties['Handler']} needs {module_file}"
    # WHEN an isolated interpreter imports it with Lambda's search path
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            IMPORT_HANDLER,
            str(function_dir),
            module_name,
            attribute,
            *lambda_search_path,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment_for(properties),
        cwd=function_dir,
        check=False,
    )
    # THEN the handler is a callable, and the code came from the function directory and the layer
    assert result.returncode == 0, (
        f"{function_name}: importing {properties['Handler']} failed:\n{result.stderr}"
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["callable"], f"{function_name}: {properties['Handler']} is not callable"
    assert Path(report["module_file"]).resolve() == module_file.resolve()
    assert Path(report["tidegauge_file"]).resolve().is_relative_to((ROOT / "shared").resolve())
    assert not report["site_loaded"], "the isolated interpreter must not see the development environment"


def test_isolated_interpreter_cannot_see_the_development_packages() -> None:
    # GIVEN packages installed in the development environment (aiohttp is not a layer requirement)
    # WHEN the isolated interpreter used above tries to import one
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import aiohttp"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN it fails, so a handler that imports a package missing from the layer fails its test too
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr


def test_layer_requirements_have_wheels_for_lambda_arm64(tmp_path: Path) -> None:
    # GIVEN the layer requirements; sam build installs them for python3.12 on arm64 (manylinux aarch64)
    # WHEN pip resolves binary distributions for exactly that platform
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_aarch64",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--dest",
            str(tmp_path),
            "-r",
            str(LAYER_REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # THEN every requirement has one (no source build, which would need a build container)
    assert result.returncode == 0, result.stderr
    assert not [p.name for p in tmp_path.iterdir() if p.suffix != ".whl"]
