"""The partition figure as a reader sees it, checked on the matplotlib objects it draws: legend
swatches equal the bars they name, client and count axes tick only whole numbers, no stack is
clipped, text is readable at the documentation's width and no two labels overlap."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text

from partitioners.plots import FIGSIZE, partition_figure, plot_partition, size_bin_edges

DOCS_WIDTH_PX = 800
ACCENTS = ["en-029", "en-gb", "en-gb-x-gbclan", "en-gb-x-rp"]


def _table(clients: int = 20, labels: int = 3, seed: int = 0, **columns) -> pd.DataFrame:
    """A client table as ``client_table`` writes it: sizes, extra columns, label histogram."""
    hist = np.random.default_rng(seed).integers(1, 12, size=(clients, labels))
    table = pd.DataFrame({"client": np.arange(clients), "size": hist.sum(axis=1)})
    for name, values in columns.items():
        table[name] = values
    for index in range(labels):
        table[f"label:w{index}"] = hist[:, index]
    table = table.rename(columns={"label:w2": "label:_silence_"}) if labels > 2 else table
    return table


def _accent_table() -> pd.DataFrame:
    accents = [ACCENTS[i % 4] for i in (0, 1, 1, 2, 3, 3, 3, 0, 2, 1, 0, 3)]
    return _table(12, main_accent=accents, num_speakers=np.arange(12) % 5 + 1)


def _panel(figure: Figure, title: str):
    return next(ax for ax in figure.axes if ax.get_title().startswith(title))


def _visible_ticks(axis) -> np.ndarray:
    low, high = sorted(axis.get_view_interval())
    ticks = axis.get_majorticklocs()
    return ticks[(ticks >= low - 1e-9) & (ticks <= high + 1e-9)]


def _assert_integer_ticks(axis) -> None:
    ticks = _visible_ticks(axis)
    assert len(ticks) >= 2
    np.testing.assert_array_equal(ticks, np.round(ticks))


def _bars(ax) -> list:
    return [patch for container in ax.containers for patch in container.patches]


def test_accent_legend_swatches_are_the_bar_colours():
    table = _accent_table()
    ax = _panel(partition_figure(table, {}), "speakers per client")
    swatches = {t.get_text(): h.get_facecolor() for t, h in zip(*_legend(ax), strict=True)}
    assert sorted(swatches) == sorted(ACCENTS)
    assert len(set(swatches.values())) == len(ACCENTS)  # four accents, four colours
    for bar, accent in zip(_bars(ax), table["main_accent"], strict=True):
        assert bar.get_facecolor() == swatches[accent]


def _legend(ax):
    legend = ax.get_legend()
    return legend.get_texts(), legend.legend_handles


def test_label_legend_swatches_are_the_stack_colours():
    ax = _panel(partition_figure(_table(), {}), "label mix")
    swatches = {t.get_text(): h.get_facecolor() for t, h in zip(*_legend(ax), strict=True)}
    assert list(swatches) == ["silence", "w1", "w0"]  # top of the stack first; "_" stripped
    for container, label in zip(ax.containers, ["w0", "w1", "silence"], strict=True):
        assert {p.get_facecolor() for p in container.patches} == {swatches[label]}


@pytest.mark.parametrize("clients", [12, 20, 37])
def test_client_and_count_axes_tick_only_whole_numbers(clients):
    accents = [ACCENTS[i % 4] for i in range(clients)]
    table = _table(clients, main_accent=accents, num_speakers=np.arange(clients) % 3 + 1)
    figure = partition_figure(table, {"size_cv": 0.3})
    figure.canvas.draw()
    for title in ("label mix", "speakers per client"):
        ax = _panel(figure, title)
        _assert_integer_ticks(ax.xaxis)
        _assert_integer_ticks(ax.yaxis)
        assert _visible_ticks(ax.xaxis).max() <= clients - 1  # no tick past the last client
    sizes = _panel(figure, "size distribution")
    _assert_integer_ticks(sizes.xaxis)
    _assert_integer_ticks(sizes.yaxis)


def test_size_histogram_bins_hold_whole_sizes():
    np.testing.assert_array_equal(size_bin_edges(np.array([115, 116, 116])), [114.5, 115.5, 116.5])
    edges = size_bin_edges(np.arange(50, 250, 7))
    widths = np.diff(edges)
    assert np.all(widths == widths[0]) and widths[0] == round(widths[0])
    assert np.all(edges % 1 == 0.5)
    table = _table(6)
    table["size"] = [115, 116, 116, 115, 116, 116]
    ax = _panel(partition_figure(table, {}), "size")
    assert [p.get_height() for p in ax.patches] == [2, 4]


def test_tallest_stack_is_not_clipped_by_the_frame():
    table = _table(5)
    table.loc[2, "label:_silence_"] = 0  # a zero-height segment on top of the tallest stack
    table.loc[2, "label:w0"] = 500
    ax = _panel(partition_figure(table, {}), "label mix")
    top = table.filter(like="label:").sum(axis=1).max()
    assert ax.get_ylim()[1] > top


def test_a_conditions_panel_draws_the_effects_set_and_ignores_neutral_ones():
    lowpass = np.linspace(2000.0, 7000.0, 8)
    table = _table(8, **{"cond:lowpass_hz": lowpass, "cond:gain_db": 0.0, "cond:speed": 1.0})
    ax = _panel(partition_figure(table, {}), "recording condition")
    assert ax.get_ylabel() == "low-pass cut-off (kHz)"
    np.testing.assert_allclose([b.get_height() for b in _bars(ax)], lowpass / 1000)
    assert to_rgba(ax.yaxis.label.get_color()) == _bars(ax)[0].get_facecolor()


def test_a_sampled_population_draws_bars_as_wide_as_the_sampling_step():
    figure = partition_figure(_table(2000, labels=2), {})
    ax = _panel(figure, "label mix")
    assert len(ax.containers[0].patches) == 500
    assert ax.containers[0].patches[0].get_width() == pytest.approx(4.0, rel=0.01)
    assert "500 evenly spaced" in figure.get_suptitle()


def test_title_without_scores_has_no_dangling_separator():
    assert partition_figure(_table(4), {}).get_suptitle() == "4 clients"
    assert (
        partition_figure(_table(4), {"size_cv": 0.5}).get_suptitle() == "4 clients  |  size CV 0.5"
    )


def _texts(figure: Figure) -> list[Text]:
    """Every text drawn: tick labels of ticks in view, and all other non-empty visible text."""
    figure.canvas.draw()
    tick_labels, shown = set(), []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                in_view = low - 1e-9 <= tick.get_loc() <= high + 1e-9
                for label in (tick.label1, tick.label2):
                    tick_labels.add(label)
                    if in_view and label.get_visible() and label.get_text().strip():
                        shown.append(label)
    others = [
        t
        for t in figure.findobj(Text)
        if t not in tick_labels and t.get_visible() and t.get_text().strip()
    ]
    return shown + others


def test_text_is_readable_at_docs_width_and_never_overlaps():
    figure = partition_figure(_accent_table(), {"size_cv": 0.3, "label_js_distance_mean": 0.4})
    texts = _texts(figure)
    px_per_point = DOCS_WIDTH_PX / (FIGSIZE[0] * 72)
    assert min(t.get_fontsize() for t in texts) * px_per_point >= 9.5
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    overlaps = [(a, b) for (a, x), (b, y) in itertools.combinations(boxes, 2) if x.overlaps(y)]
    assert overlaps == []


def test_plot_partition_writes_a_png(tmp_path):
    path = plot_partition(_accent_table(), {}, tmp_path / "sub" / "partition.png")
    assert path.read_bytes().startswith(b"\x89PNG")
