"""Login, password and user management forms."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from feedback.accounts.models import ROLE_LABELS
from feedback.accounts.service import API_SCOPES
from feedback.long_lists import searchable


class LoginForm(FlaskForm):
    """The sign-in form: user name and password."""

    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired("请输入密码"), Length(max=200)])


class ChangePasswordForm(FlaskForm):
    """Changing one's own password: the current one and the new one twice."""

    old_password = PasswordField("当前密码", validators=[DataRequired("请输入当前密码")])
    new_password = PasswordField("新密码", validators=[DataRequired("请输入新密码"), Length(max=200)])
    confirm = PasswordField("再次输入新密码",
                            validators=[DataRequired("请再次输入新密码"),
                                        EqualTo("new_password", "两次输入的新密码不一致")])


class UserForm(FlaskForm):
    """An account in the admin pages: name, role, scope, staff record (工号), status."""

    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=64)])
    display_name = StringField("姓名", validators=[DataRequired("请输入姓名"), Length(max=60)])
    role = SelectField("角色", choices=[(r.value, label) for r, label in ROLE_LABELS.items()])
    departments = SelectMultipleField("负责部门（含下级）", choices=[], validate_choice=False)
    phone = StringField("手机号（用于工作提醒）", validators=[Optional(), Length(max=20)])
    staff_number = StringField("工号（本人也在工作人员名录中时）", validators=[Optional(), Length(max=40)])
    active = BooleanField("启用", default=True)
    password = PasswordField("初始密码", validators=[Optional(), Length(max=200)])


class ResetPasswordForm(FlaskForm):
    """An administrator's new password for an account."""

    password = PasswordField("新密码", validators=[DataRequired("请输入新密码"), Length(max=200)])


class ApiKeyForm(FlaskForm):
    """A new API key: the caller's name, its scopes and optionally one department."""

    name = StringField("名称（调用方）", validators=[DataRequired("请输入名称"), Length(max=100)])
    scopes = SelectMultipleField("权限范围", choices=list(API_SCOPES.items()),
                                 validators=[DataRequired("请至少选择一个权限范围")])
    department = SelectField("限定部门（可选）", choices=[], validate_choice=False,
                             render_kw=searchable("部门名称"))


class EmptyForm(FlaskForm):
    """A CSRF-only form for POST buttons (deactivate, revoke, logout)."""
