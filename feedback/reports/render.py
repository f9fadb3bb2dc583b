"""Rendering a bulletin snapshot (figures.py) as PDF (ReportLab, CJK font embedded) and XLSX.

Both files are made from the snapshot alone, every rate computed from its two counts with the
statistics' definitions (statistics.service.Rates) and written the way the statistics pages
write it (``pct``: one decimal and a percent sign; ``score``: two decimals; "—" for an empty
denominator). The PDF is rendered with ReportLab's ``invariant`` flag (no creation time, no
random document id), so the same snapshot gives the same bytes.

The font is WenQuanYi Micro Hei from the Debian package fonts-wqy-microhei (REPORT_FONT_PATH):
ReportLab cannot read the CFF outlines of Noto CJK (docs: PITFALLS.md "PDF reports").
"""
from __future__ import annotations

import io
import os
from datetime import datetime, timezone

from flask import current_app
from openpyxl import Workbook
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from feedback.errors import ConflictError
from feedback.spreadsheets import append_xlsx_row
from feedback.statistics.definitions import RATES
from feedback.statistics.service import Rates

FONT = "WQYMicroHei"
PDF_OVERDUE_ROWS = 60  # tickets listed in the PDF; the XLSX lists them all
CN_NUMBERS = "一二三四五六七八九十"


class FontMissingError(ConflictError, code="report-font-missing"):
    """The CJK font the PDF needs is not installed."""


def pct(value: float | None) -> str:
    """A rate as the statistics pages write it: one decimal and %, — when nothing to divide."""
    return "—" if value is None else f"{value * 100:.1f}%"


def score(value: float | None) -> str:
    """An average score with two decimals; — when nobody rated."""
    return "—" if value is None else f"{value:.2f}"


def rate_text(counts: dict, attr: str) -> str:
    """The rate ``attr`` of a set of counters, formatted (pct or score)."""
    value = getattr(Rates(counts), attr)
    return score(value) if attr == "average_score" else pct(value)


def change_text(now: dict, prev: dict, attr: str) -> str:
    """This month against last month: ±x.x 个百分点 (± the score for 平均分); — when either is empty."""
    a, b = getattr(Rates(now), attr), getattr(Rates(prev), attr)
    if a is None or b is None:
        return "—"
    if attr == "average_score":
        return f"{a - b:+.2f}"
    return f"{(a - b) * 100:+.1f} 个百分点"


def month_title(month: str) -> str:
    """2026-11 → 2026年11月."""
    y, m = month.split("-")
    return f"{y}年{int(m)}月"


def scope_title(snapshot: dict) -> str:
    """Whose bulletin it is: 全市, or the department with those below it."""
    scope = snapshot["scope"]
    return "全市" if scope["kind"] == "city" else f"{scope['name']}（含下级部门）"


def notes(snapshot: dict) -> list[str]:
    """The sentences saying what is missing (no data, no children, month not over), for the PDF,
    the XLSX and the ``report monthly`` command's output."""
    out = []
    if snapshot.get("empty"):
        out.append(f"{month_title(snapshot['month'])}没有评价、办件或工单数据，本期通报各项比率均为“—”。")
    if snapshot["scope"]["kind"] == "department" and not snapshot["scope"]["has_children"]:
        out.append("该部门没有下级部门，只列出本部门的数据。")
    if snapshot.get("in_progress"):
        out.append(f"本月尚未结束，数据截至 {snapshot['generated_at']}。")
    return out


# ---------------------------------------------------------------- PDF

def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        path = current_app.config.get("REPORT_FONT_PATH", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
        if not os.path.exists(path):
            raise FontMissingError(f"找不到中文字体 {path}，请安装 Debian 软件包 fonts-wqy-microhei 后重试。")
        pdfmetrics.registerFont(TTFont(FONT, path, subfontIndex=0))
    return FONT


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    base = ParagraphStyle("body", fontName=font, fontSize=10, leading=15, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=20, leading=28, alignment=1, spaceAfter=4),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=12, leading=18, alignment=1, spaceAfter=10),
        "h2": ParagraphStyle("h2", parent=base, fontSize=13, leading=20, spaceBefore=10, spaceAfter=4),
        "h3": ParagraphStyle("h3", parent=base, fontSize=11, leading=16, spaceBefore=6, spaceAfter=2),
        "body": base,
        "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10.5),
        "note": ParagraphStyle("note", parent=base, fontSize=9, leading=13, textColor=colors.HexColor("#555555")),
    }


def _esc(text) -> str:
    return (str(text if text is not None else "")).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table(rows: list[list], styles, widths: list[float], header_rows: int = 1) -> Table:
    data = [[Paragraph(_esc(c).replace("\n", "<br/>"), styles["cell"]) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=header_rows)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#e8eef5")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _headline_rows(snapshot: dict) -> list[list]:
    now, prev = snapshot["headline"]["now"], snapshot["headline"]["prev"]
    rows = [["指标", "本月", "分子 / 分母", "上月", "较上月"]]
    for r in RATES:
        rows.append([r.label, rate_text(now, r.attr), f"{now.get(r.num, 0)} / {now.get(r.den, 0)}",
                     rate_text(prev, r.attr), change_text(now, prev, r.attr)])
    return rows


def _unit_table_rows(snapshot: dict) -> list[list]:
    rows = [["部门", "口径", "评价数", *[r.label for r in RATES]]]
    for u in snapshot["units"]:
        rows.append(["\u3000" * u["depth"] + u["name"], u["scope"], f"{u['now'].get('ratings', 0)}\n上月 {u['prev'].get('ratings', 0)}",
                     *[f"{rate_text(u['now'], r.attr)}\n上月 {rate_text(u['prev'], r.attr)}" for r in RATES]])
    return rows


def _board_rows(rows: list[dict]) -> list[list]:
    out = [["名次", "单位", "评价数", "好评率", "平均分", ""]]
    for r in rows:
        out.append([r["rank"], r["name"], r["counts"].get("ratings", 0), rate_text(r["counts"], "good_rate"),
                    rate_text(r["counts"], "average_score"), "末位" if r["last"] else ""])
    return out


def _section(n: int, title: str, styles) -> Paragraph:
    return Paragraph(f"{CN_NUMBERS[n - 1]}、{_esc(title)}", styles["h2"])


def pdf_bytes(snapshot: dict, issuer: str) -> bytes:
    """The bulletin as a landscape A4 PDF with the CJK font embedded."""
    styles = _styles()
    width = landscape(A4)[0] - 30 * mm
    month = month_title(snapshot["month"])
    story: list = [Paragraph(_esc(issuer), styles["subtitle"]),
                   Paragraph("政务服务“好差评”月度通报", styles["title"]),
                   Paragraph(f"{month} · {_esc(scope_title(snapshot))}", styles["subtitle"])]
    signature = snapshot.get("signature")
    story.append(Paragraph(f"签发：{_esc(signature['by'])} {_esc(signature['at'])}" if signature
                           else "草稿（未签发）", styles["note"]))
    story += [Paragraph(_esc(n), styles["body"]) for n in notes(snapshot)]

    story.append(_section(1, f"总体情况（{scope_title(snapshot)}，与{month_title(snapshot['previous'])}对比）", styles))
    story.append(_table(_headline_rows(snapshot), styles, [w * width for w in (0.2, 0.15, 0.25, 0.15, 0.25)]))

    story.append(_section(2, "各部门情况", styles))
    story.append(Paragraph("各部门为含下级部门的合计（“本部门”为该部门自身）；每格上行为本月，下行为上月。", styles["note"]))
    if snapshot["units"]:
        story.append(_table(_unit_table_rows(snapshot), styles,
                            [width * 0.13, width * 0.07, width * 0.06] + [width * 0.74 / len(RATES)] * len(RATES)))
    else:
        story.append(Paragraph("本月及上月没有部门数据。", styles["body"]))

    story.append(_section(3, "红黑榜", styles))
    for board in snapshot["rankings"].values():
        story.append(Paragraph(f"{board['label']}：参与排名 {board['ranked']} 个（评价不少于 {board['min_ratings']} 条）",
                               styles["h3"]))
        for name, key in (("红榜", "red"), ("黑榜", "black")):
            if board[key]:
                story.append(Paragraph(name, styles["note"]))
                story.append(_table(_board_rows(board[key]), styles, [w * width for w in (0.08, 0.4, 0.12, 0.14, 0.14, 0.12)]))
            else:
                story.append(Paragraph(f"{name}：无", styles["note"]))

    story.append(_section(4, "末位单位与约谈情况", styles))
    talks = snapshot.get("talks")
    if not talks:
        story.append(Paragraph("本月没有连续两个月排名末位的单位。", styles["body"]))
    else:
        rows = [["类型", "单位", "约谈状态", "约谈日期", "参加人员", "约定事项", "跟进日期"]]
        rows += [[t["kind"], t["name"], t["status"], t["talk_date"], t["attendees"], t["agreed"], t["follow_up_on"]]
                 for t in talks]
        story.append(_table(rows, styles, [w * width for w in (0.07, 0.15, 0.08, 0.1, 0.2, 0.3, 0.1)]))

    story.append(_section(5, "督办单", styles))
    orders = snapshot.get("orders")
    if not orders:
        story.append(Paragraph("本月没有签发督办单。", styles["body"]))
    else:
        rows = [["编号", "承办部门", "工单", "督办事项", "签发日期", "答复期限", "状态", "答复日期"]]
        rows += [[o["number"], o["department"], o["ticket_id"] or "", o["content"], o["issued_at"], o["due_at"],
                  o["status"], o["answered_at"]] for o in orders]
        story.append(_table(rows, styles, [w * width for w in (0.12, 0.13, 0.06, 0.33, 0.09, 0.09, 0.08, 0.1)]))

    overdue = snapshot["overdue"]
    story.append(_section(6, "超期和督办工单", styles))
    story.append(Paragraph(f"本月超期工单 {overdue['total']} 件，其中提交督办（二级预警）{overdue['escalated']} 件。",
                           styles["body"]))
    if overdue["rows"]:
        rows = [["工单", "承办部门", "来源", "生成日期", "办理期限", "预警级别", "当前状态"]]
        rows += [[r["ticket_id"], r["department"], r["source"], r["created"], r["due"], r["level_label"], r["state"]]
                 for r in overdue["rows"][:PDF_OVERDUE_ROWS]]
        story.append(_table(rows, styles, [w * width for w in (0.08, 0.22, 0.08, 0.12, 0.12, 0.2, 0.18)]))
        if overdue["total"] > PDF_OVERDUE_ROWS:
            story.append(Paragraph(f"只列出前 {PDF_OVERDUE_ROWS} 件，全部工单见同期 XLSX。", styles["note"]))

    story.append(_section(7, "典型案例", styles))
    if not snapshot["cases"]:
        story.append(Paragraph("本期未选取典型案例。", styles["body"]))
    for i, c in enumerate(snapshot["cases"], start=1):
        facts = "；".join(x for x in (
            f"{c['source']}日期：{c['occurred']}", f"评价：{c['level']}" if c["level"] else "",
            f"原因：{c['reasons']}" if c["reasons"] else "", f"办理结果：{c['outcome']}", c["on_time"],
            f"群众评价办理结果：{c['handling']}", f"公示日期：{c['published']}") if x)
        title = " · ".join(x for x in (c["department"], c["where"], c["item"]) if x)
        story.append(KeepTogether([Paragraph(f"案例{CN_NUMBERS[i - 1]}：{_esc(title)}", styles["h3"]),
                                   Paragraph(_esc(facts), styles["note"]),
                                   Paragraph(_esc(c["text"]).replace("\n", "<br/>"), styles["body"])]))

    story += [Spacer(1, 8 * mm), Paragraph(_esc(issuer), styles["body"]),
              Paragraph(f"生成时间：{_esc(snapshot['generated_at'])}", styles["note"])]

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.drawRightString(landscape(A4)[0] - 15 * mm, 8 * mm, f"{issuer} · {month}通报 · 第 {doc.page} 页")
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=14 * mm, bottomMargin=14 * mm, title=f"{month}政务服务“好差评”月度通报",
                            author=issuer, subject=scope_title(snapshot), creator="haochaping-feedback",
                            invariant=1)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


# ---------------------------------------------------------------- XLSX

def xlsx_bytes(snapshot: dict, issuer: str) -> bytes:
    """The bulletin's tables as a workbook: the same figures, written the same way, one sheet each."""
    wb = Workbook()
    ws = wb.active
    ws.title = "总体情况"
    append_xlsx_row(ws, [f"{issuer} 政务服务“好差评”月度通报", month_title(snapshot["month"]), scope_title(snapshot)])
    signature = snapshot.get("signature")
    append_xlsx_row(ws, ["签发", f"{signature['by']} {signature['at']}" if signature else "草稿（未签发）"])
    for note in notes(snapshot):
        append_xlsx_row(ws, [note])
    for row in _headline_rows(snapshot):
        append_xlsx_row(ws, row)

    ws = wb.create_sheet("各部门")
    append_xlsx_row(ws, ["编码", "部门", "口径", "层级", "评价数", "上月评价数",
                         *[x for r in RATES for x in (r.label, f"上月{r.label}")]])
    for u in snapshot["units"]:
        append_xlsx_row(ws, [u["code"], u["name"], u["scope"], u["depth"], u["now"].get("ratings", 0),
                             u["prev"].get("ratings", 0),
                             *[x for r in RATES for x in (rate_text(u["now"], r.attr), rate_text(u["prev"], r.attr))]])

    ws = wb.create_sheet("红黑榜")
    append_xlsx_row(ws, ["类型", "榜", "名次", "编码", "单位", "评价数", "好评率", "平均分", "末位"])
    for board in snapshot["rankings"].values():
        for name, key in (("红榜", "red"), ("黑榜", "black")):
            for r in board[key]:
                append_xlsx_row(ws, [board["label"], name, r["rank"], r["code"], r["name"], r["counts"].get("ratings", 0),
                                     rate_text(r["counts"], "good_rate"), rate_text(r["counts"], "average_score"),
                                     "末位" if r["last"] else ""])

    ws = wb.create_sheet("末位约谈")
    append_xlsx_row(ws, ["类型", "单位", "约谈状态", "约谈日期", "参加人员", "约定事项", "跟进日期"])
    for t in snapshot.get("talks") or []:
        append_xlsx_row(ws, [t["kind"], t["name"], t["status"], t["talk_date"], t["attendees"], t["agreed"],
                             t["follow_up_on"]])

    ws = wb.create_sheet("督办单")
    append_xlsx_row(ws, ["编号", "承办部门", "工单", "督办事项", "签发日期", "答复期限", "状态", "答复日期"])
    for o in snapshot.get("orders") or []:
        append_xlsx_row(ws, [o["number"], o["department"], o["ticket_id"], o["content"], o["issued_at"], o["due_at"],
                             o["status"], o["answered_at"]])

    ws = wb.create_sheet("超期督办工单")
    append_xlsx_row(ws, ["工单", "承办部门", "来源", "生成日期", "办理期限", "预警级别", "当前状态"])
    for r in snapshot["overdue"]["rows"]:
        append_xlsx_row(ws, [r["ticket_id"], r["department"], r["source"], r["created"], r["due"], r["level_label"],
                             r["state"]])

    ws = wb.create_sheet("典型案例")
    append_xlsx_row(ws, ["工单", "部门", "大厅窗口", "事项", "来源", "评价", "原因", "办理结果", "是否按时",
                         "群众评价办理结果", "发生日期", "公示日期", "公示内容"])
    for c in snapshot["cases"]:
        append_xlsx_row(ws, [c["ticket_id"], c["department"], c["where"], c["item"], c["source"], c["level"],
                             c["reasons"], c["outcome"], c["on_time"], c["handling"], c["occurred"], c["published"],
                             c["text"]])
    fixed = datetime(2000, 1, 1, tzinfo=timezone.utc).replace(tzinfo=None)
    wb.properties.created = wb.properties.modified = fixed  # no wall-clock time in the file's properties
    wb.properties.creator = issuer
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
