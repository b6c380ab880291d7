"""What ``doctor`` reports: one finding per check, PASS / WARN / FAIL, what it saw and the exact fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["PASS", "WARN", "FAIL"]
EXIT_CODES = {"PASS": 0, "WARN": 1, "FAIL": 2}


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    saw: str
    fix: str = ""


def passed(check: str, saw: str) -> Finding:
    return Finding(check, "PASS", saw)


def warned(check: str, saw: str, fix: str) -> Finding:
    return Finding(check, "WARN", saw, fix)


def failed(check: str, saw: str, fix: str) -> Finding:
    return Finding(check, "FAIL", saw, fix)


def exit_code(findings: Sequence[Finding]) -> int:
    """0 all passed, 1 warnings, 2 failures."""
    return max((EXIT_CODES[f.status] for f in findings), default=0)


def render(findings: Sequence[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{finding.status:<4}  {finding.check}: {finding.saw}")
        if finding.fix:
            lines.append(f"      fix: {finding.fix}")
    counts = {status: sum(f.status == status for f in findings) for status in EXIT_CODES}
    lines.append(f"{counts['PASS']} passed, {counts['WARN']} warnings, {counts['FAIL']} failures")
    return "\n".join(lines)


def as_json(findings: Sequence[Finding]) -> dict[str, Any]:
    return {"exitCode": exit_code(findings), "findings": [asdict(f) for f in findings]}
