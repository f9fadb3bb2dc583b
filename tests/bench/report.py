"""Figures beside their references, as a Markdown table (bench-results/report.md) and JSON.

Every benchmark figure is measured in the same run as a reference that shares its noise
(same machine, same stack, minutes apart), so the ratio means more than either number on
a shared 2-core machine. ``cost`` is always "how many times worse than the reference":
reference/value for throughputs, value/reference for latencies and durations.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    reference_name: str = ""
    reference_value: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def cost(self) -> float | None:
        """Times worse than the reference (1.0 = as good as the reference)."""
        if not self.reference_value or not self.value:
            return None
        if self.higher_is_better:
            return self.reference_value / self.value
        return self.value / self.reference_value


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def rounds_table(rounds: list[dict], key: str, label: str) -> str:
    """One row per bare-then-endpoint round: req/s, p50/p99 of both and the ratio; ``rounds``
    holds loadgen results under "bare" and ``key``."""
    rows = [f"| round | bare req/s | bare p50 / p99 ms | {label} req/s | {label} p50 / p99 ms | ratio |",
            "|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {n} | {r['bare'].ok_per_s:.0f} | {r['bare'].p50_ms:.1f} / {r['bare'].p99_ms:.1f} | "
             f"{r[key].ok_per_s:.0f} | {r[key].p50_ms:.1f} / {r[key].p99_ms:.1f} | "
             f"{r['bare'].ok_per_s / max(r[key].ok_per_s, 1e-9):.2f}× |" for n, r in enumerate(rounds, 1)]
    return "\n".join(rows)


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table: figure, value, reference, ratio."""
    lines = ["| figure | value | reference | ratio (× worse than reference) | note |",
             "|---|---:|---|---:|---|"]
    for f in figures:
        ref = f"{f.reference_name}: {_num(f.reference_value)} {f.unit}" if f.reference_name else "—"
        cost = f"{f.cost:.2f}×" if f.cost is not None else "—"
        lines.append(f"| {f.name} | {_num(f.value)} {f.unit} | {ref} | {cost} | {f.note} |")
    return "\n".join(lines)


@dataclass
class Report:
    title: str
    figures: list[Figure] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (heading, markdown body)
    data: dict = field(default_factory=dict)

    def markdown(self) -> str:
        parts = [f"# {self.title}", "", table(self.figures), ""]
        for heading, body in self.sections:
            parts += [f"## {heading}", "", body.rstrip(), ""]
        return "\n".join(parts)

    def write(self, out_dir: Path) -> Path:
        """Write report.md and results.json into ``out_dir``; return the report's path."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "report.md"
        path.write_text(self.markdown(), encoding="utf-8")
        payload = {"title": self.title,
                   "figures": [asdict(f) | {"cost": f.cost} for f in self.figures], **self.data}
        (out_dir / "results.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str),
                                              encoding="utf-8")
        return path
