"""What rule each strategy runs, against the paper its name promises: one note per strategy.

Benchmark users compare our numbers with papers, so every difference between the rule as run
(Flower's implementation, plus what simfl adds) and the paper's rule is listed here, with the
``[strategy]`` settings that select the paper's rule where one exists. ``simfl list --details``
prints these notes and the documentation's fidelity page is :func:`markdown_table` (a test
keeps the two equal). Read against Flower 1.42's ``flwr.serverapp.strategy``; imports nothing
heavy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fidelity:
    """One strategy's note. ``differences`` holds at default settings; ``notes`` are readings
    of the paper that are not differences; ``paper_settings`` is what to set for the paper's
    rule ("" when the defaults already are the paper's rule)."""

    paper: str
    rule: str
    differences: tuple[str, ...]
    paper_settings: str = ""
    notes: tuple[str, ...] = ()


#: True of every strategy, so not repeated in each note.
COMMON = (
    "Every strategy samples clients uniformly without replacement, "
    "max(⌊fraction_train · available⌋, min_train_nodes) per round (Flower), and aggregates the "
    "replies that arrive; a failed client is left out of that round. n_k is the client's "
    "reported num-examples."
)

_DELTA = "Δ = Σ (n_k/n) w_k − w"
_WEIGHTED_DELTA = (
    "Δ is weighted by num-examples where Algorithm 2 averages client deltas unweighted "
    "(the same when the sampled clients hold equally many examples)"
)
_V_ZERO = "v₋₁ = 0 (the paper takes v₋₁ ≥ τ² as an input)"

FIDELITY: dict[str, Fidelity] = {
    "fedavg": Fidelity(
        paper="McMahan et al. 2017, Algorithm 1 (FederatedAveraging)",
        rule="w ← Σ (n_k/n) w_k over the replies",
        differences=(),
    ),
    "fedavgm": Fidelity(
        paper="Hsu et al. 2019 (FedAvgM)",
        rule="Δ = w − Σ (n_k/n) w_k; v ← β v + Δ (v₀ = 0); w ← w − η v; "
        "β = server_momentum, η = server_learning_rate",
        differences=(),
        notes=(
            "Δ is weighted by n_k, as in FedAvg, on which the paper builds; "
            "server_learning_rate η generalises the paper's step, which is the default η = 1",
        ),
    ),
    "fedprox": Fidelity(
        paper="Li et al. 2020 (MLSys), Algorithm 2 (FedProx)",
        rule="each client minimises F_k(w) + μ/2 ‖w − w_t‖² for train.local_epochs epochs "
        "(simfl's client); w ← Σ (n_k/n) w_k",
        differences=(
            "Flower samples clients uniformly and weights them by n_k, where the paper samples "
            "with probability n_k/n and averages unweighted (the same objective in expectation)",
            "every client does the same local work (the paper's γ-inexact, variable local work "
            "is not modelled)",
        ),
        paper_settings="not selectable (sampling by n_k)",
    ),
    "fedadam": Fidelity(
        paper="Reddi et al. 2021, Algorithm 2 (FedAdam)",
        rule=f"{_DELTA}; m ← β₁ m + (1 − β₁) Δ; v ← β₂ v + (1 − β₂) Δ²; "
        "w ← w + c_t η m / (√v + τ), c_t = √(1 − β₂^(t+1)) / (1 − β₁^(t+1)) in round t",
        differences=(
            "Adam's bias correction c_t scales η (not in Algorithm 2, and Flower's FedYogi has "
            "none): at β₁ = 0.9, β₂ = 0.99 the step is 0.74, 0.64, 0.58, 0.54 η in rounds 1–4, "
            "lowest 0.47 η in round 12, still 0.80 η in round 100",
            _V_ZERO,
            _WEIGHTED_DELTA,
        ),
        paper_settings='bias_correction = "none", v0 = "tau_squared", weighting = "uniform"',
    ),
    "fedyogi": Fidelity(
        paper="Reddi et al. 2021, Algorithm 2 (FedYogi)",
        rule=f"{_DELTA}; m ← β₁ m + (1 − β₁) Δ; v ← v − (1 − β₂) Δ² sign(v − Δ²); "
        "w ← w + η m / (√v + τ)",
        differences=(_V_ZERO, _WEIGHTED_DELTA),
        paper_settings='v0 = "tau_squared", weighting = "uniform"',
    ),
    "fedadagrad": Fidelity(
        paper="Reddi et al. 2021, Algorithm 2 (FedAdagrad)",
        rule=f"{_DELTA}; m ← β₁ m + (1 − β₁) Δ with β₁ = 0 (m = Δ); v ← v + Δ²; "
        "w ← w + η m / (√v + τ)",
        differences=(
            "no first-moment momentum: Flower fixes β₁ = 0, where the paper's FedAdagrad keeps β₁",
            _V_ZERO,
            _WEIGHTED_DELTA,
        ),
        paper_settings='beta_1 = 0.9, v0 = "tau_squared", weighting = "uniform"',
    ),
    "fedmedian": Fidelity(
        paper="Yin et al. 2018 (coordinate-wise median)",
        rule="w ← coordinate-wise median of the client models, unweighted (even n: mean of the "
        "two middle values)",
        differences=(),
    ),
    "fedtrimmedavg": Fidelity(
        paper="Yin et al. 2018 (coordinate-wise trimmed mean)",
        rule="per coordinate, drop the ⌊β n⌋ largest and the ⌊β n⌋ smallest client values and "
        "average the rest, unweighted",
        differences=(),
        notes=(
            "β is the fraction trimmed at each end, as in the paper, 0 ≤ β < ½; ⌊β n⌋ rounds "
            "down, so β = 0.2 trims nothing with fewer than 5 replies",
        ),
    ),
    "krum": Fidelity(
        paper="Blanchard et al. 2017 (Krum)",
        rule="score(i) = Σ squared distances from model i to its n − f − 2 nearest other models "
        "(f = num_malicious_nodes); w ← the model with the lowest score",
        differences=(
            "Flower scores with max(1, n − f − 2) neighbours, so it still picks a model when "
            "failures leave n ≤ f + 2 replies (simfl refuses min_train_nodes < 2f + 3 up front)",
        ),
    ),
    "multikrum": Fidelity(
        paper="Blanchard et al. 2017 (Multi-Krum)",
        rule="Krum's scores; w ← mean of the m = num_nodes_to_select models with the lowest "
        "scores, weighted by n_k",
        differences=(
            "the m selected models are weighted by num-examples (the paper: unweighted mean)",
            "neighbours as in krum: max(1, n − f − 2)",
        ),
        paper_settings='weighting = "uniform"',
    ),
    "bulyan": Fidelity(
        paper="El Mhamdi et al. 2018 (Bulyan over Krum)",
        rule="select θ = n − 2f models by the θ best Krum scores computed once over all n; per "
        "coordinate, average the β = θ − 2f selected values closest to their median",
        differences=(
            "selection by one Krum pass; the paper selects recursively (Krum picks one model, "
            "which leaves the pool, and the scores are recomputed on the rest, θ times)",
            "with fewer than 4f + 3 replies Flower skips the round and keeps the model "
            "(simfl refuses min_train_nodes < 4f + 3 up front)",
        ),
        paper_settings='selection = "recursive_krum"',
    ),
    "qfedavg": Fidelity(
        paper="Li et al. 2020 (ICLR), q-FedAvg",
        rule="L = 1/client_learning_rate; Δw_k = L (w − w_k); Δ_k = F_k^q Δw_k; "
        "h_k = q F_k^(q−1) ‖Δw_k‖² + L F_k^q; w ← w − Σ Δ_k / Σ h_k; F_k = loss of the received "
        "global model on client k's training split (simfl's client computes it first)",
        differences=(
            "Flower adds 10⁻¹⁰ to F_k inside the powers",
            "clients are sampled uniformly, not with probability n_k/n as in the paper, so "
            "q = 0 is the unweighted mean of the client models, not FedAvg's n_k-weighted one",
            "L is the paper's step-size estimate 1/η with η = train.lr by default, which ignores "
            "local momentum or Adam",
        ),
        paper_settings="not selectable (sampling by n_k)",
    ),
    "fedbn": Fidelity(
        paper="Li et al. 2021 (FedBN)",
        rule="FedAvg on every parameter except BatchNorm weights, biases and running "
        "statistics, which never leave a client",
        differences=(),
    ),
    "fedper": Fidelity(
        paper="Arivazhagan et al. 2019 (FedPer)",
        rule="FedAvg on the base layers; parameters whose name contains a local_layers pattern "
        '(default "head") never leave a client',
        differences=(
            "the personal layers are chosen by name pattern; the paper keeps the last K_P layers",
        ),
    ),
    "fedbuff": Fidelity(
        paper="Nguyen et al. 2022 (AISTATS), Algorithm 1 (FedBuff)",
        rule="C = concurrency clients train at once on the model version they downloaded; in "
        "order of simulated finish time each Δ_k = w_k − w_(v_k) joins the buffer weighted by "
        "s(τ) = (1 + τ)^−staleness_exponent; every K = buffer_size updates "
        "Δ = Σ s(τ_k) n_k Δ_k / Σ n_k, m ← β m + Δ, w ← w + η_g m; a finished client is "
        "replaced by one sampled uniformly from the available idle clients",
        differences=(
            "updates are weighted by n_k as in FedAvg; the paper averages the buffer unweighted",
            "no client-side clipping or DP noise (the paper's privacy variant)",
        ),
        paper_settings='weighting: "uniform"',
        notes=(
            "staleness_exponent 0.5 is the paper's 1/√(1+τ); K = 1 is FedAsync-style; one "
            "round is one server update",
        ),
    ),
    "scaffold": Fidelity(
        paper="Karimireddy et al. 2020 (ICML), Algorithm 1 (SCAFFOLD), option II",
        rule="client: y ← y − η_l (g(y) − c_i + c) for K steps; c_i⁺ = c_i − c + (x − y)/(K η_l); "
        "server: x ← x + η_g (1/|S|) Σ (y_i − x), c ← c + (1/N) Σ (c_i⁺ − c_i); "
        "η_l = train.lr, η_g = server_learning_rate, K = the client's optimizer steps",
        differences=(
            "the correction is added to the gradient before the scenario's optimizer, so with "
            "momentum or weight decay the step is SGD-momentum on the corrected gradient and "
            "option II's (x − y)/(K η_l) is no longer the mean gradient (the paper: plain SGD)",
        ),
        notes=(
            "c and c_i cover the trainable parameters; arrays that are not parameters "
            "(BatchNorm statistics) are averaged as in FedAvg",
            "each client sends Δc_i beside its model: twice FedAvg's upload, as in the paper",
        ),
    ),
    "feddyn": Fidelity(
        paper="Acar et al. 2021 (ICLR), Algorithm 1 (FedDyn)",
        rule="client: the scenario's local training on L_k(θ) − ⟨g_k, θ⟩ + α/2‖θ − θ^{t−1}‖², "
        "then g_k ← g_k − α(θ_k − θ^{t−1}); server: h ← h − α(1/m) Σ (θ_k − θ^{t−1}), "
        "θ ← (1/|P_t|) Σ θ_k − h/α; m = data.num_clients",
        differences=(
            "the client's argmin is approximated by local_epochs of minibatch training, as in the "
            "paper's experiments; every floating-point array gets h, BatchNorm statistics "
            "included",
        ),
        notes=("alpha = 0 is FedAvg with the unweighted mean",),
    ),
    "moon": Fidelity(
        paper="Li, He & Song 2021 (CVPR), Algorithm 1 and Eq. 3 (MOON)",
        rule="FedAvg; client loss CE + μ ℓ_con, ℓ_con = −log(e^{sim(z,z_glob)/τ} / "
        "(e^{sim(z,z_glob)/τ} + e^{sim(z,z_prev)/τ})), z the output of a two-layer projection "
        "head before a new output layer; μ = mu, τ = temperature",
        differences=(
            "before a client's first round its previous model is the global one (ℓ_con then "
            "constant); the paper keeps the initial model as every client's previous one",
        ),
        notes=("mu = 0 is FedAvg on the model with a projection head",),
    ),
    "ditto": Fidelity(
        paper="Li et al. 2021 (ICML), Algorithm 1 (Ditto)",
        rule="global: FedAvg (w ← Σ (n_k/n) w_k); each sampled client then trains its personal "
        "v_k for local_epochs on F_k(v) + λ/2‖v − w^t‖² from v_k (w⁰ at first); v_k is "
        "evaluated as the personalized accuracy; λ = lam",
        differences=(
            "the global update is weighted by n_k (FedAvg's rule, on which the paper builds); "
            "v_k takes the scenario's local epochs and optimizer (the paper: s SGD steps)",
        ),
        notes=("lam = 0 trains v_k on the client's data alone",),
    ),
    "pfedme": Fidelity(
        paper="T. Dinh et al. 2020 (NeurIPS), Algorithm 1 (pFedMe)",
        rule="client: w ← w^t; per minibatch, K = inner_steps SGD steps at personal_lr on "
        "f(θ; D) + λ/2‖θ − w‖² (θ carried over), then w ← w − η λ (w − θ), η = train.lr; "
        "server: w ← (1 − β) w + β (1/|S|) Σ w_i; θ is the personalized model",
        differences=(
            "only the sampled clients train (the paper's Algorithm 1 lets every client update "
            "and samples S for aggregation only)",
        ),
        notes=("the local rounds R are the minibatches of local_epochs",),
    ),
    "fednova": Fidelity(
        paper="Wang et al. 2020 (NeurIPS), FedNova, Eq. 6-7 with p_i = n_i/n",
        rule="x ← x − η_g τ_eff Σ p_i (x − y_i)/‖a_i‖₁, τ_eff = Σ p_i ‖a_i‖₁; ‖a_i‖₁ = τ_i "
        "(SGD) or Σ_k (1 − ρ^k)/(1 − ρ) (momentum ρ = train.momentum); τ_i the optimizer steps "
        "the client reports; η_g = server_learning_rate",
        differences=(
            "every array of the shared model is normalized, BatchNorm statistics included "
            "(the paper normalizes the parameters SGD updates)",
        ),
        notes=("with equal τ_i it is FedAvg exactly, as the paper states",),
    ),
}


def differences_cell(note: Fidelity) -> str:
    """The differences in one Markdown table cell, one per line ("none" if there are none),
    then the notes."""
    lines = [f"• {difference}" for difference in note.differences] or ["none"]
    return "<br>".join(lines + [f"note: {remark}" for remark in note.notes])


def details_text() -> str:
    """``simfl list --details``: every note in full, one block per strategy."""
    blocks = ["Strategy fidelity: the rule each strategy runs, against its paper.", COMMON]
    for name, note in FIDELITY.items():
        lines = [name, f"  paper: {note.paper}", f"  rule as run: {note.rule}"]
        lines.append("  differences from the paper (defaults):")
        lines += [f"    - {difference}" for difference in note.differences] or ["    none"]
        lines += [f"  note: {remark}" for remark in note.notes]
        lines.append(f"  paper's rule with: {note.paper_settings or 'the defaults'}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def markdown_table() -> str:
    """The documentation's fidelity table: strategy, paper, differences, the paper's settings."""
    lines = [
        "| strategy | paper | differences from the paper (defaults) | paper's rule with |",
        "| --- | --- | --- | --- |",
    ]
    for name, note in FIDELITY.items():
        settings = f"`{note.paper_settings}`" if "=" in note.paper_settings else note.paper_settings
        row = (f"`{name}`", note.paper, differences_cell(note), settings or "defaults")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
