"""Department heads from the command line: `directory heads …`, also reachable as `notifications heads …`."""
from __future__ import annotations

from feedback.directory import heads as department_heads


def test_an_operator_adds_lists_and_removes_a_head_under_either_command_name(app, db, city):
    runner = app.test_cli_runner()

    added = runner.invoke(args=["directory", "heads", "add", "GA", "handler_ga"])
    assert added.exit_code == 0, added.output
    assert "已设置" in added.output
    assert [u.username for u in department_heads.heads_of(city.parent.id)] == ["handler_ga"]

    listed = runner.invoke(args=["notifications", "heads", "list"])
    assert listed.exit_code == 0, listed.output
    assert "GA\t市公安局\thandler_ga" in listed.output

    again = runner.invoke(args=["notifications", "heads", "add", "GA", "handler_ga"])
    assert "无变化" in again.output

    removed = runner.invoke(args=["notifications", "heads", "remove", "GA", "handler_ga"])
    assert removed.exit_code == 0, removed.output
    db.session.expire_all()
    assert department_heads.heads_of(city.parent.id) == []


def test_an_unknown_department_or_user_is_refused_with_its_name_and_nothing_changes(app, db, city):
    runner = app.test_cli_runner()

    unknown_dept = runner.invoke(args=["directory", "heads", "add", "NOPE", "handler_ga"])
    assert unknown_dept.exit_code == 1
    assert "部门编码 NOPE 不存在" in unknown_dept.output

    unknown_user = runner.invoke(args=["directory", "heads", "add", "GA", "nobody"])
    assert unknown_user.exit_code == 1
    assert "用户 nobody 不存在" in unknown_user.output
    assert department_heads.heads_of(city.parent.id) == []
