"""PNG plots of a bench run (matplotlib, Agg backend): written beside report.md.

* ``latency.png``: p50 / p90 / p99 of each load-tested endpoint beside its bare reference;
* ``pages.png``: each page's p50 at small and at large scale (the scaling of issues 4 and 7);
* ``ratios.png``: every figure's ratio to its reference, worst first.
"""
from __future__ import annotations

from pathlib import Path

from tests.bench.report import Figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency(pairs: list[tuple[str, dict, dict]], path: Path) -> Path | None:
    """``pairs``: (endpoint label, wrk result dict, bare reference wrk result dict)."""
    if not pairs:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4), squeeze=False)
    for ax, (label, res, ref) in zip(axes[0], pairs):
        pct = ["p50", "p90", "p99"]
        xs = range(len(pct))
        ax.bar([x - 0.2 for x in xs], [ref[f"{p}_ms"] for p in pct], width=0.4, label="bare insert", color="#888")
        ax.bar([x + 0.2 for x in xs], [res[f"{p}_ms"] for p in pct], width=0.4, label=label, color="#c0392b")
        ax.set_xticks(list(xs), pct)
        ax.set_ylabel("ms")
        ax.set_title(f"{label}: latency under load")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pages(page_data: dict, path: Path) -> Path | None:
    """``page_data``: results.json's "pages" ({key: {"small": {"p50_ms": …}, "large": {…}}})."""
    if not page_data:
        return None
    plt = _pyplot()
    keys = list(page_data)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(keys) + 1.5))
    ys = range(len(keys))
    ax.barh([y + 0.2 for y in ys], [page_data[k]["small"]["p50_ms"] for k in keys], height=0.4,
            label="small (10k ratings / 1k tickets)", color="#888")
    ax.barh([y - 0.2 for y in ys], [page_data[k]["large"]["p50_ms"] for k in keys], height=0.4,
            label="large (10M ratings / 1M tickets)", color="#2c7fb8")
    ax.set_yticks(list(ys), keys)
    ax.invert_yaxis()
    ax.set_xlabel("p50 ms (sequential requests)")
    ax.set_title("Pages at scale beside the same pages small")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ratios(figures: list[Figure], path: Path) -> Path | None:
    rows = sorted(((f.name, f.cost) for f in figures if f.cost is not None), key=lambda x: -x[1])
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(rows) + 1.5))
    ys = range(len(rows))
    ax.barh(list(ys), [c for _, c in rows], color=["#c0392b" if c > 2 else "#2c7fb8" for _, c in rows])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(list(ys), [n[:70] for n, _ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("× worse than the reference measured in the same run (log scale; 1 = as good)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_all(figures: list[Figure], data: dict, out: Path) -> list[Path]:
    """Every plot the data allows; returns the files written."""
    pairs = []
    if data.get("rounds"):
        pairs.append(("rating", data["rounds"][0]["rating"], data["rounds"][0]["bare"]))
        if "tablet" in data["rounds"][0]:
            pairs.append(("tablet rating", data["rounds"][0]["tablet"], data["rounds"][0]["bare"]))
    sms = data.get("sms") or {}
    if sms.get("rounds"):
        pairs.append(("SMS webhook", sms["rounds"][0]["sms"], sms["rounds"][0]["bare"]))
    written = [latency(pairs, out / "latency.png"), pages(data.get("pages") or {}, out / "pages.png"),
               ratios(figures, out / "ratios.png")]
    return [p for p in written if p is not None]
