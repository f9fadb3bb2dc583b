from tests.conftest import login


def test_landing_page_names_every_audience(client):
    html = client.get("/").get_data(as_text=True)
    assert "我要评价" in html
    assert "我要投诉" in html
    assert "结果公开" in html
    assert "登录工作台" in html


def test_admin_logs_in_and_sees_the_directory(client, make_user, make_department):
    make_department(code="GA", name="市公安局")
    make_user("admin", username="boss")
    login(client, "boss")
    html = client.get("/admin/directory/departments/").get_data(as_text=True)
    assert "市公安局" in html


def test_demo_load_builds_a_city_with_activity_that_the_public_pages_show(app, db):
    import sqlalchemy as sa

    from feedback.publications.models import Publication
    from feedback.tickets.models import Ticket

    app.config["ENV_NAME"] = "development"
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert "staff_ga01" in result.output
    assert "published results" in result.output
    states = set(db.session.scalars(sa.select(Ticket.state)))
    assert {"closed"} <= states
    assert len(states) >= 2  # tickets at several stages
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Publication)
                             .where(Publication.state == "published")) >= 1
    client = app.test_client()
    page = client.get("/public/results").get_data(as_text=True)
    assert "整改" in page
    again = app.test_cli_runner().invoke(args=["demo", "load"])
    assert again.exit_code != 0
    assert "not empty" in again.output
