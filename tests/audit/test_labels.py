"""Every audit action the code records has a Chinese label (feedback/audit/labels.py)."""
from __future__ import annotations

import ast
import itertools
from pathlib import Path

from feedback.audit.labels import ACTION_LABELS, action_label
from feedback.config import PROJECT_ROOT

SOURCES = [p for d in ("feedback", "jobs") for p in (PROJECT_ROOT / d).rglob("*.py")]


def _strings(node: ast.AST) -> list[str] | None:
    """Every value an action expression can take ('*' for a part known only at run time)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return (_strings(node.body) or []) + (_strings(node.orelse) or [])
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                parts.append(_strings(value.value) or ["*"])
            else:
                parts.append(_strings(value) or ["*"])
        return ["".join(p) for p in itertools.product(*parts)]
    return None


def emitted_actions() -> dict[str, Path]:
    """Action strings passed to audit.record(...) or _audit_attempt(...) anywhere in the code."""
    found: dict[str, Path] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            is_record = isinstance(f, ast.Attribute) and f.attr == "record" and getattr(f.value, "id", "") == "audit"
            if is_record or (isinstance(f, ast.Name) and f.id == "_audit_attempt"):
                for action in _strings(node.args[0]) or []:
                    found[action] = path
    return found


def test_the_scan_finds_the_actions_the_code_records():
    actions = emitted_actions()
    assert {"login.success", "login.failed", "apikey.revoke", "directory.*.deactivate"} <= set(actions), \
        sorted(actions)


def test_every_audit_action_the_code_records_has_a_chinese_label():
    missing = []
    for action, path in sorted(emitted_actions().items()):
        if "*" in action:
            prefix = action.split("*")[0]
            # A part known only at run time: at least one labelled action must fit the pattern.
            if not any(k.startswith(prefix) for k in ACTION_LABELS) and action_label(
                    action.replace("*", "departments")) == "其他操作":
                missing.append((action, str(path.relative_to(PROJECT_ROOT))))
        elif action_label(action) == "其他操作":
            missing.append((action, str(path.relative_to(PROJECT_ROOT))))
    assert not missing, f"audit actions without a label in feedback/audit/labels.py: {missing}"


def test_directory_actions_are_labelled_from_their_parts():
    assert action_label("directory.windows.deactivate") == "停用窗口"
    assert action_label("directory.service_items.create") == "新增服务事项"
    assert action_label("no.such.action") == "其他操作"
