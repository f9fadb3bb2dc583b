"""Forms of the directory admin pages, one per kind."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, StopValidation, ValidationError

from feedback.directory import national
from feedback.inputs import as_id
from feedback.long_lists import searchable

_code = [DataRequired("请填写编码"), Length(max=40, message="编码最长 40 位")]
_name = [DataRequired("请填写名称"), Length(max=120, message="名称最长 120 个字符")]


def national_code(check):
    """A WTForms validator running a national.check_* function on a non-empty field; its
    message shows at the field (the service checks again and stores the canonical value)."""
    def validate(form, field):
        if not national.clean(field.data):
            raise StopValidation()
        try:
            if check is national.check_handle_item_code:
                check(field.data, national.clean(form.implementation_code.data).upper() or None)
            else:
                check(field.data)
        except national.NationalCodeError as exc:
            raise ValidationError(exc.message)
    return validate


def area_code_field() -> StringField:
    """The 行政区划代码 field of departments and halls (a new one per form: fields keep their order)."""
    return StringField("行政区划代码", validators=[national_code(national.check_area_code)],
                       description="12 位数字，如 341600000000；6 位县级代码自动补 000000")


class DepartmentForm(FlaskForm):
    code = StringField("部门编码", validators=_code)
    name = StringField("部门名称", validators=_name)
    parent_id = SelectField("上级部门", coerce=as_id, validate_choice=False, render_kw=searchable("部门名称"))
    credit_code = StringField("统一社会信用代码", validators=[national_code(national.check_credit_code)],
                              description="18 位，按 GB 32100 校验")
    area_code = area_code_field()
    active = BooleanField("启用", default=True)


class HallForm(FlaskForm):
    code = StringField("大厅编码", validators=_code)
    name = StringField("大厅名称", validators=_name)
    address = StringField("地址", validators=[Optional(), Length(max=200)])
    area_code = area_code_field()
    active = BooleanField("启用", default=True)


class WindowForm(FlaskForm):
    code = StringField("窗口编码", validators=_code)
    name = StringField("窗口名称", validators=_name)
    hall_id = SelectField("所属大厅", coerce=as_id, validate_choice=False, validators=[DataRequired("请选择大厅")],
                          render_kw=searchable("大厅名称"))
    department_id = SelectField("所属部门", coerce=as_id, validate_choice=False, validators=[DataRequired("请选择部门")],
                                render_kw=searchable("部门名称"))
    active = BooleanField("启用", default=True)


class StaffForm(FlaskForm):
    staff_number = StringField("工号", validators=_code)
    name = StringField("姓名", validators=[DataRequired("请填写姓名"), Length(max=60)])
    # Scope is checked by the view/service with a specific message, not by WTForms' English one.
    department_id = SelectField("所属部门", coerce=as_id, validate_choice=False,
                                validators=[DataRequired("请选择部门")], render_kw=searchable("部门名称"))
    window_ids = SelectMultipleField("服务窗口", coerce=as_id, validate_choice=False)
    active = BooleanField("在岗", default=True)


class ServiceItemForm(FlaskForm):
    code = StringField("事项编码", validators=[DataRequired("请填写编码"), Length(max=40)])
    name = StringField("事项名称", validators=[DataRequired("请填写名称"), Length(max=200)])
    department_id = SelectField("实施部门", coerce=as_id, validate_choice=False, validators=[DataRequired("请选择部门")],
                                render_kw=searchable("部门名称"))
    promised_days = IntegerField("承诺办结时限（工作日）", default=0,
                                 validators=[NumberRange(0, 365, "请填写 0–365 之间的整数")])
    implementation_code = StringField("实施编码", validators=[national_code(national.check_implementation_code)],
                                      description="31 位；不填为本地事项，不上报省平台")
    handle_item_code = StringField("业务办理项编码", validators=[national_code(national.check_handle_item_code)],
                                   description="33 位，以实施编码开头")
    item_type = SelectField("事项类型", choices=[("", "（未填）")] + [(c, f"{c} {n}") for c, n in national.ITEM_TYPES.items()],
                            default="")
    record_type = SelectField("办件类型", choices=[(c, f"{c} {n}") for c, n in national.RECORD_TYPES.items()],
                              default=national.DEFAULT_RECORD_TYPE)
    active = BooleanField("启用", default=True)


class ImportForm(FlaskForm):
    file = FileField("导入文件（.csv 或 .xlsx）", validators=[
        FileRequired("请选择文件"), FileAllowed(["csv", "xlsx"], "只支持 .csv 和 .xlsx 文件")])
    kind = SelectField("数据类型", choices=[("", "自动识别（按表头或工作表名）"),
                                         ("departments", "部门"), ("halls", "大厅"),
                                         ("windows", "窗口"), ("staff", "工作人员"),
                                         ("service_items", "服务事项")])


FORMS = {"departments": DepartmentForm, "halls": HallForm, "windows": WindowForm,
         "staff": StaffForm, "service_items": ServiceItemForm}


class HeadForm(FlaskForm):
    """Add a department head (部门负责人) by user name."""

    username = StringField("用户名", validators=[DataRequired("请填写用户名"), Length(max=80, message="用户名最长 80 个字符")])
