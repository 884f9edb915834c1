"""Do discrete latent-action tokens mean the same motion everywhere? (notebook 04, seed 004)

The engine of ``04_token_compass`` (the engine contract of :mod:`nblib.studies`). Its
steps, in the notebook's order:

1. ``prepare(config)``: the dataset (the cameras act as datasets);
2. ``make_tokens(study, run_dir)``: tokenise every frame pair with the bundled
   latent-action model, a checkpoint of yours, or one trained here, or read your token
   file: a :class:`Tokens` with the :class:`~nblib.studies.tokens.table.TokenTable`;
3. ``add_motion(study, table)``: mean optical flow and the projected end-effector motion of
   every pair; ``stride_check(study)``: how far flow and reference agree per stride;
4. ``compass_figures``, ``analyse`` (across datasets, tasks and the reference motion, with
   the verdict's intervals), ``order_ablation``, ``umap_figures``, ``gallery``;
5. ``evidence`` -> ``verdict`` (:mod:`nblib.studies.tokens.evidence`) -> ``metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.data.hdf5 import DemoStore
from nblib.errors import is_int, is_number, require
from nblib.flow import WEIGHTINGS, angle_deg
from nblib.metrics.embedding import umap_embedding
from nblib.metrics.tokens import angular_histograms, cluster_instructions, codebook_usage
from nblib.models.latent.tokens import token_matrix
from nblib.studies import Study, StudyConfig
from nblib.studies.tokens import compass, frame_pairs, plots
from nblib.studies.tokens.table import MOTION_SOURCES, TokenTable

# Compass sectors of the per-token angular histograms (finer than the metrics' bins: they
# show the shape of each token's distribution, not a label).
HISTOGRAM_BINS = 16
# Random pairs decoded in the token-order ablation, and embedded in the UMAP of latents.
ABLATION_PAIRS = 256
UMAP_LATENTS = 1500
# The across-datasets metrics shown in the notebook's table, in this order.
VIEW_KEYS = (
    "direction_resultant_length",
    "direction_resultant_length_pooled",
    "direction_resultant_length_adjusted",
    "agreement",
    "agreement_chance",
    "agreement_adjusted",
    "consistency_ratio",
    "direction_nmi",
    "probe_accuracy",
    "probe_chance",
    "entropy_given_direction_normalized",
    "instruction_nmi",
    "codebook_perplexity",
    "codebook_active_codes",
    "rows",
    "rows_with_direction",
)
CHECKPOINT = "latent_action_model.pt"
VERDICT_VIEW = "across datasets"
#: ``latent_model`` values that are not paths: the model bundled for the embedded demos,
#: and training one here.
BUNDLED, TRAIN = "default", "train"
# The bundled model: the default recipe (600 steps, seed 0) trained on the embedded demos
# by `make latent-model`. Why a bundled model and not training by default: the small model's
# tokens depend on its training run. Seeds 0, 1 and 2 (and 1 against 2 CPU threads, whose
# float sums differ) gave tokenisers whose chance-corrected cross-camera agreement ranged
# from -0.59 to 0.94 (PARTIAL, INCONSISTENT, INCONSISTENT): a verdict on a tokeniser must
# be about one fixed tokeniser, or it changes with the machine.
BUNDLED_MODEL = Path("data_manifests") / "models" / "latent_actions_metaworld_default.pt"


def latent_model_path(value: str) -> Path:
    """The checkpoint a ``latent_model`` value names: the bundled one for ``"default"``,
    else the path itself (relative to the working directory)."""
    from nblib.paths import repo_root

    return repo_root() / BUNDLED_MODEL if value == BUNDLED else Path(value)


@dataclass
class CompassConfig(StudyConfig):
    manifest: str = "metaworld_default"  # dataset manifest name or path
    token_file: str | None = None  # your own tokens (.parquet, .npz, .csv); None: a model's
    latent_model: str = BUNDLED  # "default" (bundled), a checkpoint path, or "train"
    cameras: list[str] = field(default_factory=lambda: ["corner", "behindGripper"])
    motion: str = "flow"  # flow, reference or actions
    stride: int = 4  # k, frames between the two frames of a pair
    train_steps: int = 600  # training steps of the small latent-action model
    codebook_size: int = 16  # codes (with token_file: at least the largest token + 1)
    seq_len: int = 2  # tokens per frame pair of the small model
    token_position: int = 0  # token of the sequence analysed
    combine_tokens: bool = False  # analyse the whole sequence as one id
    weighting: str = "magnitude"  # mean-flow weighting: plain, magnitude or threshold
    direction_bins: int = 8  # compass bins for the entropy, the NMI and the probe
    min_motion: float = 0.5  # pairs moving less than this (pixels) count as static
    instruction_clusters: int = 0  # 0: each instruction its own label; N: TF-IDF clusters
    strides_compared: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    pairs_per_stride: int = 200  # random pairs per stride and camera in that check
    umap: bool = False  # UMAP of the codebook and of the latents
    gallery_tokens: int = 6  # most used tokens shown in the gallery
    gallery_per_token: int = 3  # random frame pairs shown per token
    seed: int = 0  # seed of training (when latent_model is train), subsampling and the gallery

    def __post_init__(self):
        own = "CompassConfig"
        tf = self.token_file
        require(tf is None or isinstance(tf, str), own, "token_file", tf, "None or a path")
        lm = self.latent_model
        ok = isinstance(lm, str) and lm.strip() != ""
        require(ok, own, "latent_model", lm, f'"{BUNDLED}", "{TRAIN}" or a checkpoint path')
        cams = self.cameras
        ok = isinstance(cams, (list, tuple)) and cams and all(isinstance(c, str) for c in cams)
        require(ok, own, "cameras", cams, "a non-empty list of camera names")
        self.cameras = list(cams)
        sources = sorted(MOTION_SOURCES)
        require(self.motion in sources, own, "motion", self.motion, f"one of {sources}")
        w = self.weighting
        require(w in WEIGHTINGS, own, "weighting", w, f"one of {WEIGHTINGS}")
        for name in (
            "stride",
            "train_steps",
            "seq_len",
            "direction_bins",
            "pairs_per_stride",
            "gallery_tokens",
            "gallery_per_token",
        ):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        cs = self.codebook_size
        require(is_int(cs) and cs >= 2, own, "codebook_size", cs, "an int >= 2")
        tp = self.token_position
        require(is_int(tp) and tp >= 0, own, "token_position", tp, "an int >= 0")
        ic = self.instruction_clusters
        require(is_int(ic) and ic >= 0, own, "instruction_clusters", ic, "an int >= 0")
        mm = self.min_motion
        require(is_number(mm) and mm >= 0, own, "min_motion", mm, "a number >= 0")
        ks = self.strides_compared
        ok = isinstance(ks, (list, tuple)) and all(is_int(k) and k >= 1 for k in ks)
        require(ok, own, "strides_compared", ks, "a list of ints >= 1")
        self.strides_compared = list(ks)
        for name in ("combine_tokens", "umap"):
            value = getattr(self, name)
            require(isinstance(value, bool), own, name, value, "True or False")
        require(is_int(self.seed), own, "seed", self.seed, "an int")


@dataclass(frozen=True)
class CompassStudy(Study):
    """The dataset whose cameras act as datasets."""

    store: DemoStore


@dataclass(frozen=True)
class Tokens:
    """The token table and, when it was trained here, the latent-action model, its
    training history and checkpoint (None with a token file)."""

    table: TokenTable
    model: object = None
    history: object = None
    checkpoint: Path | None = None


@dataclass(frozen=True)
class Views:
    """Every token metric by view (``across datasets``: the verdict's, ``across tasks``,
    ``reference motion``), the intervals of the verdict's two numbers, and the instruction
    clusters when ``instruction_clusters`` > 0."""

    summaries: dict
    estimates: dict
    clusters: pd.Series | None = None
    cells: pd.DataFrame | None = None  # per (token, dataset): compass.compass_cells


def prepare(config: CompassConfig) -> CompassStudy:
    """The dataset of ``config.manifest`` (generated on first use, checksum verified),
    narrowed to ``config.cameras``."""
    from nblib.data.manifest import open_dataset

    return CompassStudy(config, open_dataset(config.manifest, cameras=config.cameras))


def make_tokens(study: CompassStudy, run_dir: str | Path | None = None) -> Tokens:
    """The token table: read from ``config.token_file``, or made by tokenising every pair at
    ``stride`` with the latent-action model ``config.latent_model`` names (the bundled one,
    a checkpoint, or one trained here on every camera's pairs, k = 1..2*stride, half
    reversed, its checkpoint written to ``run_dir``)."""
    from nblib.models.latent import (
        LatentActionConfig,
        load_latent_model,
        load_token_file,
        save_latent_model,
        tokenize_dataset,
        train_latent_model,
    )
    from nblib.train import History

    cfg = study.config
    position = "combined" if cfg.combine_tokens else cfg.token_position
    if cfg.token_file:
        return Tokens(TokenTable.of(load_token_file(cfg.token_file), position, cfg.codebook_size))
    if cfg.latent_model == TRAIN:
        model_config = LatentActionConfig(codebook_size=cfg.codebook_size, seq_len=cfg.seq_len)
        model, history = train_latent_model(
            study.store,
            camera=cfg.cameras,
            stride=cfg.stride,
            steps=cfg.train_steps,
            seed=cfg.seed,
            config=model_config,
        )
        checkpoint = None
        if run_dir is not None:
            checkpoint = save_latent_model(model, Path(run_dir) / CHECKPOINT, history)
    else:
        checkpoint = latent_model_path(cfg.latent_model)
        model = load_latent_model(checkpoint)
        history = None if model.history is None else History(model.history)
        for name in ("codebook_size", "seq_len"):
            have, want = getattr(model.config, name), getattr(cfg, name)
            require(
                have == want,
                "CompassConfig",
                name,
                want,
                f"{have}, the {name} of latent_model {checkpoint} (or latent_model="
                f'"{TRAIN}" to train a model with {name}={want})',
            )
    df = tokenize_dataset(model, study.store, camera=cfg.cameras, stride=cfg.stride)
    return Tokens(TokenTable.of(df, position, cfg.codebook_size), model, history, checkpoint)


def describe(tokens: Tokens) -> str:
    """Where the tokens come from, pairs per dataset, tokens per pair, analysed ids and
    pairs with frames."""
    table = tokens.table
    if tokens.model is None:
        source = "tokens: read from token_file"
    else:
        meta = tokens.model.meta
        trained = f"{meta.get('steps')} steps, seed {meta.get('seed')}"
        data = Path(str(meta.get("file", "?"))).name
        name = tokens.checkpoint.name if tokens.checkpoint else "not saved"
        source = f"tokens: latent-action model {name} ({trained}, trained on {data})"
    return (
        f"{source}\n"
        f"frame pairs per dataset: {table.df.groupby('dataset').size().to_dict()}\n"
        f"tokens per pair: {token_matrix(table.df).shape[1]} | analysed ids: {table.n_codes} | "
        f"pairs with frames: {int(frame_pairs.has_frames(table.df).sum())}"
    )


def training_summary(tokens: Tokens) -> str:
    """Training time, pairs, the final reconstruction / copy MSE and perplexity."""
    if tokens.model is None:
        return "tokens read from token_file: no model trained here"
    meta = tokens.model.meta
    history = tokens.history
    final = {}
    if history:
        final = {
            k: round(float(history.final(k)), 5)
            for k in ("recon", "copy", "perplexity")
            if k in history[-1]
        }
    where = f"; checkpoint {tokens.checkpoint.name}" if tokens.checkpoint else ""
    return f"{meta['seconds']:.0f} s, {meta['pairs']} training pairs; final {final}{where}"


def training_final(tokens: Tokens) -> dict | None:
    """Final reconstruction / copy MSE and perplexity (means over the last 10 batches) of
    the latent model's training; None without a history."""
    if not tokens.history:
        return None
    keys = ("recon", "copy", "perplexity", "active")
    return {k: float(tokens.history.final(k)) for k in keys if k in tokens.history[-1]}


def training_figure(tokens: Tokens):
    """What the latent model learned (reconstruction against copying frame t, codebook
    perplexity) and its caption; (None, "") with a token file or a checkpoint saved without
    its history."""
    final = training_final(tokens)
    if not final:
        return None, ""
    size = tokens.model.config.codebook_size
    fig, _ = plots.plot_latent_training(tokens.history, size)
    return fig, plots.caption_latent_training(final, size)


def add_motion(study: CompassStudy, table: TokenTable) -> TokenTable:
    """The table with the mean optical flow (rows with frames and no flow yet) and the
    projected end-effector motion of every pair."""
    return table.with_rows(frame_pairs.add_motion(table.df, study.store, study.config.weighting))


def stride_check(study: CompassStudy, table: TokenTable) -> pd.DataFrame | None:
    """Median angle between flow and the hand's motion per stride and camera (None when no
    row has frames)."""
    if not frame_pairs.has_frames(table.df).any():
        return None
    cfg = study.config
    return frame_pairs.stride_effect(
        study.store,
        cfg.cameras,
        cfg.strides_compared,
        cfg.pairs_per_stride,
        cfg.weighting,
        cfg.seed,
        min_pixels=cfg.min_motion,
    )


def stride_figure(strides: pd.DataFrame | None, stride: int = 4):
    """The flow-vs-reference figure and its caption; (None, "") without a stride check."""
    if strides is None:
        return None, ""
    return plots.plot_stride_effect(strides)[0], plots.caption_stride_effect(strides, stride)


def compass_figures(study: CompassStudy, table: TokenTable, views: Views | None = None) -> dict:
    """The compass (the verdict's concentration), the relative compass (the verdict's
    agreement), the flow scatter and the per-token angular histograms of the moving pairs:
    figure name -> (figure, caption). ``views`` from :func:`analyse` (computed here when
    not given)."""
    from nblib.studies.tokens.compass import MIN_COUNT, per_token

    cfg = study.config
    views = views if views is not None else analyse(study, table)
    summary, estimates = views.summaries[VERDICT_VIEW], views.estimates
    cells, tokens_info = views.cells, per_token(views.cells, MIN_COUNT)
    vec = table.motion(cfg.motion)
    moving = table.moving(cfg.motion, cfg.min_motion)
    hist = angular_histograms(
        table.ids[moving], angle_deg(vec[moving]), HISTOGRAM_BINS, table.n_codes
    )
    conc, agree = estimates.get("concentration"), estimates.get("agreement")
    out = {
        "token_compass": (
            plots.plot_compass(
                cells, tokens_info, summary, table.n_codes, conc, min_count=MIN_COUNT
            )[0],
            plots.caption_compass(summary, tokens_info, conc),
        )
    }
    if summary.get("codes_compared"):
        out["token_compass_relative"] = (
            plots.plot_compass_relative(cells, tokens_info, summary, agree, min_count=MIN_COUNT)[0],
            plots.caption_compass_relative(summary, agree),
        )
    out["flow_scatter"] = (
        plots.plot_flow_scatter(table, cfg.motion)[0],
        plots.caption_flow_scatter(table, cfg.motion),
    )
    out["polar_histograms"] = (
        plots.plot_polar_histograms(hist)[0],
        plots.caption_polar_histograms(hist),
    )
    return out


def analyse(study: CompassStudy, table: TokenTable) -> Views:
    """Every token metric by view: across datasets (the verdict's, with the intervals of
    its two numbers: a cluster bootstrap over demos), across tasks, and against the
    reference motion. With ``instruction_clusters`` > 0 the instructions are first grouped
    into that many clusters."""
    cfg = study.config
    label, clusters = "instruction", None
    if cfg.instruction_clusters:
        clusters = pd.Series(
            cluster_instructions(table.df["instruction"], cfg.instruction_clusters, cfg.seed),
            name="instruction_cluster",
        )
        table = table.with_rows(table.df.assign(instruction_cluster=clusters.to_numpy()))
        label = "instruction_cluster"
    summaries = compass.analyse_views(table, cfg.motion, cfg.direction_bins, cfg.min_motion, label)
    estimates = compass.verdict_estimates(
        table, summaries[VERDICT_VIEW], cfg.motion, "dataset", cfg.min_motion, cfg.seed
    )
    cells = compass.compass_cells(table, cfg.motion, "dataset", cfg.min_motion)
    return Views(summaries, estimates, clusters, cells)


def views_table(views: Views) -> pd.DataFrame:
    """The reported metrics (rows) of every view (columns)."""
    return pd.DataFrame(views.summaries).reindex(list(VIEW_KEYS))


def cluster_counts(views: Views) -> str:
    """How many pairs each instruction cluster holds (or that instructions were taken as
    they are)."""
    if views.clusters is None:
        return "instructions taken as they are (instruction_clusters = 0)"
    return views.clusters.value_counts().to_string()


def usage(table: TokenTable) -> dict:
    """Counts per id, perplexity, active and dead codes of the analysed ids."""
    return codebook_usage(table.ids, table.n_codes)


def usage_by_dataset(table: TokenTable) -> pd.DataFrame:
    """Frame pairs per code (rows, every code) and dataset (columns)."""
    counts = pd.crosstab(table.ids, table.df["dataset"].to_numpy())
    return counts.reindex(range(table.n_codes), fill_value=0)


def plot_codebook_usage(table: TokenTable):
    """Codebook usage per dataset and its caption."""
    used = usage(table)
    summary = {
        "codebook_perplexity": used["perplexity"],
        "codebook_active_codes": used["active_codes"],
    }
    counts = usage_by_dataset(table)
    return plots.plot_codebook_usage(counts, summary)[0], plots.caption_codebook_usage(
        counts, summary
    )


def codebook_summary(table: TokenTable) -> str:
    used = usage(table)
    return (
        f"perplexity {used['perplexity']:.1f} of {table.n_codes}; active codes "
        f"{used['active_codes']}; dead codes {list(used['dead_codes'])}"
    )


def order_ablation(study: CompassStudy, tokens: Tokens) -> dict | None:
    """Reconstruction MSE of random pairs decoded with their own tokens, the tokens
    permuted, reversed, random tokens, and copying frame t (None without a model; see
    :func:`nblib.models.latent.permutation_ablation`)."""
    from nblib.models.latent import permutation_ablation

    if tokens.model is None:
        return None
    first, last = frame_pairs.sample_frames(
        study.store, tokens.table.df, ABLATION_PAIRS, study.config.seed
    )
    return permutation_ablation(tokens.model, first, last)


def ablation_table(ablation: dict | None) -> pd.DataFrame | None:
    """The ablation's reconstruction errors as a one-column table (None without one)."""
    if ablation is None:
        return None
    names = ("original", "permuted", "reversed", "random", "copy")
    return pd.Series({k: ablation[k] for k in names}, name="recon MSE").to_frame()


def codebook_figure(tokens: Tokens):
    """Cosine similarity of the codebook vectors and its caption; (None, "") without a
    model."""
    if tokens.model is None:
        return None, ""
    codebook = tokens.model.codebook().detach().numpy()
    counts = usage(tokens.table)["counts"]
    return plots.plot_codebook_similarity(codebook, counts)[0], plots.caption_codebook_similarity(
        codebook
    )


def umap_figures(study: CompassStudy, tokens: Tokens) -> dict:
    """UMAP of the latents of random pairs (coloured by their token): name -> (figure,
    caption); none without a model or with ``umap=False``. (The 16 or so codebook vectors
    get a cosine-similarity matrix instead, :func:`codebook_figure`: a UMAP of that few
    points shows mostly its own layout.)"""
    cfg = study.config
    if tokens.model is None or not cfg.umap:
        return {}
    latents, latent_ids = frame_pairs.latents_sample(
        tokens.model, study.store, tokens.table, UMAP_LATENTS, cfg.seed, position=cfg.token_position
    )
    fig, _ = plots.plot_embedding(
        umap_embedding(latents, cfg.seed),
        latent_ids,
        "UMAP of latents (colour: token)",
        tokens.table.n_codes,
    )
    caption = (
        f"UMAP of the encoder outputs of {len(latents):,} random frame pairs, coloured by the "
        "token they quantise to: tokens that mean one motion form separate clusters (UMAP "
        "distances between clusters carry no meaning)."
    )
    return {"umap_latents": (fig, caption)}


def gallery(study: CompassStudy, table: TokenTable):
    """Random frame pairs of the most used tokens, with their mean flow drawn in;
    (None, None) when no pair references frames."""
    cfg, df, ids = study.config, table.df, table.ids
    with_frames = frame_pairs.has_frames(df)
    if not with_frames.any():
        return None, ""
    counts = usage(table)["counts"]
    top = [int(c) for c in np.argsort(counts)[::-1][: cfg.gallery_tokens] if counts[c] > 0]
    rng = np.random.default_rng(cfg.seed)
    flow = table.motion("flow") if "flow_dx" in df.columns else None
    rows = []
    for code in top:
        members = np.flatnonzero((ids == code) & with_frames)
        picks = (
            rng.choice(members, size=min(cfg.gallery_per_token, len(members)), replace=False)
            if len(members)
            else []
        )
        firsts, seconds = (
            frame_pairs.pair_frames(df, picks, study.store) if len(picks) else ([], [])
        )
        pairs = []
        for j, i in enumerate(picks):
            r = df.iloc[int(i)]
            pairs.append(
                {
                    "first": firsts[j],
                    "second": seconds[j],
                    "caption": f"{r['dataset']} t={int(r['t'])}",
                    "k": int(r["k"]),
                    "flow": None if flow is None else flow[i],
                }
            )
        rows.append((code, pairs))
    fig, _ = plots.plot_gallery(rows)
    caption = (
        f"Random frame pairs of the {len(rows)} most used tokens (one row each): frame t, then "
        "frame t+k with the pair's mean optical flow drawn from the centre (white, 3x)."
    )
    return fig, caption


def plotly_scatter(study: CompassStudy, table: TokenTable):
    """Interactive scatter of every pair's motion coloured by token, hover for details."""
    return plots.plotly_scatter(table, study.config.motion)
