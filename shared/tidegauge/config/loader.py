"""Text to a mapping: YAML (strict: duplicate keys are errors) or JSON, with the error's line and column."""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Mapping
from typing import Any, Final

import yaml

from tidegauge import environment
from tidegauge.config.document import build_config
from tidegauge.config.errors import DOCUMENT, ConfigError, ConfigIssue
from tidegauge.config.model import Config


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    redis_url: str | None = None,
) -> Config:
    """Read and validate a YAML or JSON configuration file; raises ConfigError."""
    origin = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigError(
            [ConfigIssue(field=DOCUMENT, problem=f"cannot read the file: {reason}", fix=_FIX_PATH)], origin
        ) from error
    return parse_config(text, origin, environ=environ, redis_url=redis_url)


def parse_config(
    text: str,
    origin: str = "<string>",
    *,
    environ: Mapping[str, str] | None = None,
    redis_url: str | None = None,
) -> Config:
    """Validate configuration text (YAML or JSON, e.g. an SSM parameter value); raises ConfigError.

    ``redis_url`` beats ``TIDEGAUGE_REDIS_URL`` in ``environ`` (default ``os.environ``, empty means
    unset), which beats ``redis.url`` in the text.
    """
    data = parse_text(text, origin)
    if redis_url is not None:
        override: tuple[str, str] | None = (redis_url, "the redis_url argument")
    else:
        from_environment = (os.environ if environ is None else environ).get(environment.REDIS_URL, "")
        override = (from_environment, environment.REDIS_URL) if from_environment else None
    return build_config(data, origin, url_override=override)


_FIX_PATH: Final = "check the path and that the file is readable UTF-8 text"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            identity = (key_node.tag, key_node.value)
            if identity in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(identity)
        return super().construct_mapping(node, deep)


def parse_text(text: str, origin: str) -> Any:
    """YAML or JSON by content: JSON when it looks like a JSON object and parses as one."""
    text = text.removeprefix("\ufeff")
    json_error: json.JSONDecodeError | None = None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_unique_json_object)
        except json.JSONDecodeError as error:
            json_error = error  # maybe a YAML flow mapping; report the JSON error if YAML fails too
        except _DuplicateKeyError as error:
            raise ConfigError(
                [
                    ConfigIssue(
                        field=DOCUMENT,
                        problem=f"duplicate key {error.key!r} in a JSON object",
                        fix="remove one of the two entries",
                    )
                ],
                origin,
            ) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        if json_error is not None:
            issue = ConfigIssue(
                field=f"line {json_error.lineno}, column {json_error.colno}",
                problem=f"invalid JSON: {json_error.msg}",
                fix="correct the JSON syntax there",
            )
        else:
            issue = _yaml_issue(error)
        raise ConfigError([issue], origin) from None


def _yaml_issue(error: yaml.YAMLError) -> ConfigIssue:
    if not isinstance(error, yaml.MarkedYAMLError):
        return ConfigIssue(field=DOCUMENT, problem=f"invalid YAML: {error}", fix="correct the YAML syntax")
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else DOCUMENT
    problem = error.problem or "syntax error"
    if problem.startswith("found duplicate key"):
        return ConfigIssue(
            field=where, problem=f"invalid YAML: {problem}", fix="remove one of the two entries"
        )
    context = f" ({error.context})" if error.context else ""
    return ConfigIssue(
        field=where,
        problem=f"invalid YAML: {problem}{context}",
        fix="correct the YAML syntax there (indentation, a missing ':' or an unclosed quote or bracket)",
    )


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result
