"""The report's and the privacy report's figures, checked on the matplotlib objects they draw:
legend swatches equal the lines they name, rounds tick only whole numbers, proportions stay
inside [0, 1], legends sit outside the axes and swept values read plainly. Tiny frames, no Ray.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from simfl.privacy.report import draw_privacy_figure, privacy_table
from simfl.report.comparison import Design
from simfl.report.plots import (
    client_boxes,
    client_boxes_figure,
    metric_curves,
    metric_curves_figure,
    outcome_vs_x_figure,
)

STRATEGIES = ["fedavg", "fedprox"]
ALPHAS = [0.1, 1.0]
DESIGN = Design(by="strategy.name", x="partition.alpha", settings=["partition.alpha"])


def _cells() -> pd.DataFrame:
    rows = [
        {"cell_id": f"{s}-{a}-{seed}", "strategy.name": s, "partition.alpha": a, "seeds": seed}
        for s in STRATEGIES
        for a in ALPHAS
        for seed in (0, 1, 2)
    ]
    return pd.DataFrame(rows)


def _rounds(cells: pd.DataFrame) -> pd.DataFrame:
    """Accuracy rising to near 1 so a naive interval would reach past the axis' top."""
    rows = []
    for cell in cells.to_dict("records"):
        for round_ in range(4):
            accuracy = min(0.999, 0.3 * round_ + 0.02 * cell["seeds"])
            rows.append({"cell_id": cell["cell_id"], "round": round_, "central_accuracy": accuracy})
    return pd.DataFrame(rows)


def _colour(artist) -> tuple:
    """An artist's colour as RGBA: a line's, or an error bar legend handle's (its bars')."""
    colour = artist.get_color()
    return to_rgba(colour if isinstance(colour, str) or len(np.shape(colour)) == 1 else colour[0])


def _visible_ticks(axis) -> np.ndarray:
    low, high = sorted(axis.get_view_interval())
    ticks = axis.get_majorticklocs()
    return ticks[(ticks >= low - 1e-9) & (ticks <= high + 1e-9)]


def _inside_unit_interval(ax) -> None:
    low, high = ax.get_ylim()
    assert 0.0 <= low < high <= 1.0


def _outside_axes(figure, legend) -> None:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in figure.axes)


def test_curves_legend_swatches_are_the_lines_and_bands():
    cells = _cells()
    figure = metric_curves_figure(_rounds(cells), cells, DESIGN, "central_accuracy")
    [ax] = figure.axes
    [legend] = figure.legends
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert len(lines) == 4
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
        line = lines[text.get_text()]
        assert to_rgba(handle.get_color()) == to_rgba(line.get_color())
        assert handle.get_linestyle() == line.get_linestyle()
    for line, band in zip(ax.get_lines(), ax.collections, strict=True):
        assert to_rgba(band.get_facecolor()[0], 1) == to_rgba(line.get_color())
    # A competitor keeps its colour across settings; the setting takes the line style.
    colour = {label: to_rgba(line.get_color()) for label, line in lines.items()}
    assert colour["alpha=0.1, strategy=fedavg"] == colour["alpha=1.0, strategy=fedavg"]
    assert colour["alpha=0.1, strategy=fedavg"] != colour["alpha=0.1, strategy=fedprox"]
    _outside_axes(figure, legend)


def test_curves_tick_whole_rounds_and_keep_accuracy_in_unit_interval():
    cells = _cells()
    figure = metric_curves_figure(_rounds(cells), cells, DESIGN, "central_accuracy")
    figure.canvas.draw()
    [ax] = figure.axes
    ticks = _visible_ticks(ax.xaxis)
    np.testing.assert_array_equal(ticks, [0, 1, 2, 3])
    _inside_unit_interval(ax)


def test_curves_of_many_groups_never_repeat_a_colour_style_pair():
    cells = pd.DataFrame(
        [
            {"cell_id": f"c{i}-{s}", "strategy.name": f"s{i}", "seeds": s}
            for i in range(12)
            for s in (0, 1)
        ]
    )
    design = Design(by="strategy.name", x=None, settings=[])
    figure = metric_curves_figure(_rounds(cells), cells, design, "central_accuracy")
    styles = {
        (to_rgba(line.get_color()), line.get_linestyle()) for line in figure.axes[0].get_lines()
    }
    assert len(styles) == 12


def _comparison() -> pd.DataFrame:
    rows = []
    for strategy in STRATEGIES:
        for alpha, mean in zip(ALPHAS, (0.5, 0.97), strict=True):
            rows.append(
                {
                    "outcome": "central_accuracy",
                    "strategy.name": strategy,
                    "partition.alpha": alpha,
                    "mean": mean,
                    "ci_low": mean - 0.05,
                    "ci_high": min(1.0, mean + 0.05),
                }
            )
    return pd.DataFrame(rows)


def test_outcome_vs_x_ticks_the_swept_values_plainly_inside_unit_interval():
    figure = outcome_vs_x_figure(_comparison(), DESIGN, "central_accuracy")
    figure.canvas.draw()
    [ax] = figure.axes
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(_visible_ticks(ax.xaxis), ALPHAS)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "1"]
    assert ax.xaxis.get_minorticklocs().size == 0
    _inside_unit_interval(ax)
    [legend] = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [f"strategy={s}" for s in STRATEGIES]
    for handle, container in zip(legend.legend_handles, ax.containers, strict=True):
        assert _colour(handle) == _colour(container.lines[0])


def _clients(cells: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {"cell_id": cell, "round": 3, "partition_id": p, "eval_accuracy": value}
        for cell in cells["cell_id"]
        for p, value in enumerate((0.0, 0.6, 0.7, 0.75, 1.0))
    ]
    return pd.DataFrame(rows)


def test_client_boxes_legend_names_the_marks_they_draw():
    cells = _cells()
    figure = client_boxes_figure(_clients(cells), cells, DESIGN, "eval_accuracy", STRATEGIES)
    ax = figure.axes[0]
    [legend] = figure.legends
    handles = dict(
        zip([t.get_text() for t in legend.get_texts()], legend.legend_handles, strict=True)
    )
    median = next(line for line in ax.get_lines() if line.get_color() != "black")
    assert to_rgba(handles["median"].get_color()) == to_rgba(median.get_color())
    means = [line for line in ax.get_lines() if line.get_marker() == "^"]
    assert means and to_rgba(handles["mean"].get_markerfacecolor()) == to_rgba(
        means[0].get_markerfacecolor()
    )
    for axis in figure.axes:
        _inside_unit_interval(axis)
    _outside_axes(figure, legend)


def test_rendered_report_figures_are_png_and_svg():
    cells = _cells()
    curves = metric_curves(_rounds(cells), cells, DESIGN, "central_accuracy")
    assert curves.png.startswith(b"\x89PNG") and b"<svg" in curves.svg
    assert client_boxes(pd.DataFrame(), cells, DESIGN, "eval_accuracy", []) is None


def _privacy_cells() -> pd.DataFrame:
    rows = []
    for strategy in STRATEGIES:
        for noise, epsilon in ((0.0, math.inf), (0.3, 120.0), (1.0, 8.0)):
            for seed in (0, 1):
                accuracy = 0.9 - 0.3 * noise + 0.05 * seed
                auc = 0.75 - 0.2 * noise + 0.2 * seed  # the noise-0 cells reach AUC 0.95
                rows.append(
                    {
                        "strategy.name": strategy,
                        "privacy.noise_multiplier": noise,
                        "epsilon": epsilon,
                        "central_accuracy": accuracy,
                        "mia_auc": auc,
                        "mia_tpr_at_1pct_fpr": 0.01,
                    }
                )
    return pd.DataFrame(rows)


def test_privacy_figure_has_one_legend_below_whose_swatches_match():
    axes = ["privacy.noise_multiplier", "strategy.name"]
    table = privacy_table(_privacy_cells(), axes)
    figure = draw_privacy_figure(table, "strategy.name")
    accuracy, auc = figure.axes
    assert accuracy.get_legend() is None and auc.get_legend() is None
    [legend] = figure.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:2] == STRATEGIES
    assert "chance (AUC 0.5)" in labels
    drawn = {c.get_label(): c for c in accuracy.containers}
    for label, handle in zip(labels[:2], legend.legend_handles[:2], strict=True):
        assert _colour(handle) == _colour(drawn[label].lines[0])
    references = {
        line.get_label(): line for line in accuracy.get_lines() if "inf" in line.get_label()
    }
    for label, handle in zip(labels, legend.legend_handles, strict=True):
        if label in references:
            assert to_rgba(handle.get_color()) == to_rgba(references[label].get_color())
            assert handle.get_linestyle() == references[label].get_linestyle()
    for ax in (accuracy, auc):
        _inside_unit_interval(ax)
        # Ticks at the epsilons spent, plainly: no "3x10^1" minor labels on a short log axis.
        figure.canvas.draw()
        np.testing.assert_allclose(_visible_ticks(ax.xaxis), [8.0, 120.0])
        assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "120"]
        assert ax.xaxis.get_minorticklocs().size == 0
    _outside_axes(figure, legend)


@pytest.mark.parametrize("line_axis", [None, "strategy.name"])
def test_privacy_figure_draws_without_a_line_axis(line_axis):
    cells = _privacy_cells()
    if line_axis is None:
        cells = cells[cells["strategy.name"] == "fedavg"].drop(columns="strategy.name")
    axes = ["privacy.noise_multiplier", *([line_axis] if line_axis else [])]
    figure = draw_privacy_figure(privacy_table(cells, axes), line_axis)
    assert len(figure.legends) == 1
