"""The README's deploy steps, checked against the files they describe: what a reader runs literally."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The text of the README's ``## title`` section, up to the next ``## `` heading."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def shell_blocks(text: str) -> list[str]:
    return [match.group(2) for match in re.finditer(r"^( *)```sh\n(.*?)^\1```", text, re.M | re.S)]


def test_readme_names_the_base_image_the_dockerfile_uses() -> None:
    # GIVEN the Dockerfile's base image
    (image,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    # THEN the README's image section names exactly that one
    images = set(re.findall(r"`(python:[^`]+)`", section("Build the server image")))
    assert images == {image}


def test_readme_image_push_logs_in_and_creates_a_builder_first() -> None:
    # GIVEN the commands of the image section, in order
    commands = "\n".join(shell_blocks(section("Build the server image")))
    push = commands.index("docker buildx build")
    # THEN the registry login and a multi-platform builder come before the push
    assert 0 <= commands.find("docker login") < push
    assert "aws ecr get-login-password" in commands
    assert 0 <= commands.find("docker buildx create") < push
    assert "--use" in commands[commands.find("docker buildx create") : push]


def test_readme_build_works_without_python_312_on_path() -> None:
    # GIVEN the deploy section (sam build needs the runtime's Python 3.12, or Docker)
    deploy = section("Deploy to AWS")
    commands = "\n".join(shell_blocks(deploy))
    # THEN the build command builds in the runtime's container, and the README says what it needs
    assert "sam build --use-container" in commands
    assert "Python 3.12" in deploy
    assert "needs no Docker" not in deploy


def test_readme_cluster_steps_define_every_variable_they_use() -> None:
    # GIVEN the shell commands of "Deploy to the cluster", in order
    commands = "\n".join(shell_blocks(section("Deploy to the cluster")))
    # THEN each variable used is assigned earlier (shell functions' positional $1 aside)
    for match in re.finditer(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", commands):
        name = match.group(1)
        assert re.search(rf"(^|\s){name}=", commands[: match.start()], re.M), f"${name} is never defined"
    # AND the stack outputs the values come from exist
    outputs = set(re.findall(r"\$\(output (\w+)\)", commands))
    assert {"RedisSecretArn", "RedisEndpointAddress"} <= outputs
    for output in outputs:
        assert f"\n  {output}:\n" in (ROOT / "template.yaml").read_text(), f"no stack output {output}"
