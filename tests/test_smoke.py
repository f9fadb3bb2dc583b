from tests.conftest import login


def test_landing_page_names_every_audience(client):
    html = client.get("/").get_data(as_text=True)
    assert "我要评价" in html and "我要投诉" in html and "结果公开" in html and "登录工作台" in html


def test_admin_logs_in_and_sees_the_directory(client, make_user, make_department):
    make_department(code="GA", name="市公安局")
    make_user("admin", username="boss")
    login(client, "boss")
    html = client.get("/admin/directory/departments/").get_data(as_text=True)
    assert "市公安局" in html
