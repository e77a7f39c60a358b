"""The comparison as a chart (SVG or PNG, by the file name): CPU per invocation and throughput relative to
awslambdaric per scenario, and the cold start (to the first `/next`, to the first response) in milliseconds.

matplotlib comes with the `bench` extra; `compare.py` skips the chart, saying why, when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.compare import Results

COLORS = {"fastric": "#2a7ab9", "awslambdaric": "#9aa4ad", "plain": "#e08a3c"}


def write_chart(results: Results, clients: list[str], scenarios: list[str], path: str, title: str = "") -> None:
    """Write the chart of `results` to `path` (the format follows its suffix: .svg or .png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "fastric", "font.size": 9})
    figure, (cpu, throughput, cold) = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [3, 3, 2]})
    measured = [s for s in scenarios if results.median(s, clients[0], "cpu_us") is not None]
    _ratio_bars(
        cpu, results, clients, measured, "cpu_us", "client CPU per invocation\n(× awslambdaric, lower is better)"
    )
    _ratio_bars(throughput, results, clients, measured, "throughput", "throughput\n(× awslambdaric, higher is better)")
    _cold_bars(cold, results, clients)
    handles, labels = cold.get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=len(clients), frameon=False)
    if title:
        figure.suptitle(title, fontsize=8, color="#555555", y=0.01, va="bottom")
    figure.tight_layout(rect=(0, 0.04 if title else 0, 1, 0.93))
    figure.savefig(path, metadata={"Date": None} if path.endswith(".svg") else None)
    plt.close(figure)


def _ratio_bars(axes, results: Results, clients: list[str], scenarios: list[str], metric: str, label: str) -> None:
    width = 0.8 / len(clients)
    for index, client in enumerate(clients):
        ratios = [results.ratio(s, client, metric) or 0.0 for s in scenarios]
        positions = [i + (index - (len(clients) - 1) / 2) * width for i in range(len(scenarios))]
        bars = axes.bar(positions, ratios, width, label=client, color=COLORS.get(client))
        axes.bar_label(bars, [f"{r:.2g}" for r in ratios], fontsize=7, padding=1)
    axes.axhline(1.0, color="#555555", linewidth=0.8)
    axes.set_yscale("log")
    axes.set_xticks(range(len(scenarios)), scenarios, rotation=25, ha="right")
    axes.set_title(label)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _cold_bars(axes, results: Results, clients: list[str]) -> None:
    metrics = (("to_first_next_ms", "to first /next"), ("to_first_response_ms", "to first response"))
    width = 0.8 / len(clients)
    for index, client in enumerate(clients):
        values = [results.median("cold", client, metric) or 0.0 for metric, _ in metrics]
        positions = [i + (index - (len(clients) - 1) / 2) * width for i in range(len(metrics))]
        bars = axes.bar(positions, values, width, label=client, color=COLORS.get(client))
        axes.bar_label(bars, [f"{v:.0f}" for v in values], fontsize=7, padding=1)
    axes.set_xticks(range(len(metrics)), [label for _, label in metrics])
    axes.set_ylabel("ms after spawn")
    axes.set_title("cold start, no-op handler\n(milliseconds, lower is better)")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
