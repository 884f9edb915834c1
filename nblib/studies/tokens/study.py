"""Do discrete latent-action tokens mean the same motion everywhere? (notebook 04, seed 004)

The engine of ``04_token_compass``. Its steps, in the notebook's order:

1. ``prepare(config)``: the dataset (the cameras act as datasets);
2. ``make_tokens(study, run_dir)``: train the small latent-action model and tokenise every
   frame pair, or read the user's token file;
3. ``add_motion(study)``: mean optical flow and the projected end-effector motion of every
   pair; ``stride_check(study)``: how far flow and reference agree per stride;
4. ``compass_figures``, ``analyse`` (across datasets, tasks and the reference motion),
   ``codebook_usage``, ``order_ablation``, ``umap_figures``, ``gallery``;
5. ``verdict(study)`` (from the across-datasets view, see
   :func:`nblib.studies.tokens.compass.verdict`) and ``metrics(study)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.data.hdf5 import DemoStore
from nblib.errors import ParameterError, is_int, is_number, require
from nblib.flow import WEIGHTINGS, angle_deg
from nblib.metrics.embedding import umap_embedding
from nblib.metrics.tokens import angular_histograms, cluster_instructions, codebook_usage
from nblib.models.latent.tokens import token_matrix
from nblib.studies import StudyConfig
from nblib.studies.tokens import compass, frame_pairs, plots
from nblib.verdict import Verdict

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


@dataclass
class CompassConfig(StudyConfig):
    manifest: str = "metaworld_default"  # dataset manifest name or path
    token_file: str | None = None  # your own tokens (.parquet, .npz, .csv); None trains
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
    umap: bool = True  # UMAP of the codebook and of the latents
    gallery_tokens: int = 6  # most used tokens shown in the gallery
    gallery_per_token: int = 3  # random frame pairs shown per token
    seed: int = 0  # seed of training, subsampling and the gallery

    def __post_init__(self):
        own = "CompassConfig"
        tf = self.token_file
        require(tf is None or isinstance(tf, str), own, "token_file", tf, "None or a path")
        cams = self.cameras
        ok = isinstance(cams, (list, tuple)) and cams and all(isinstance(c, str) for c in cams)
        require(ok, own, "cameras", cams, "a non-empty list of camera names")
        self.cameras = list(cams)
        sources = sorted(compass.MOTION_SOURCES)
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


@dataclass
class Compass:
    """The dataset and everything the notebook has found so far (filled in step by step)."""

    config: CompassConfig
    store: DemoStore
    table: pd.DataFrame | None = None  # the token table, one row per frame pair
    ids: np.ndarray | None = None  # (N,) the analysed token id of each row
    n_codes: int | None = None  # how many ids there can be
    model: object = None  # the trained LatentActionModel (None with a token file)
    history: object = None  # its training history
    checkpoint: Path | None = None
    strides: pd.DataFrame | None = None  # flow vs reference per stride and camera
    views: dict | None = None  # metric summaries by view
    ablation: dict | None = None  # token-order ablation

    @property
    def with_frames(self) -> np.ndarray:
        """(N,) rows whose frames are known (they get flow, reference and gallery)."""
        return frame_pairs.has_frames(self._table())

    def _table(self) -> pd.DataFrame:
        if self.table is None:
            raise ParameterError("no tokens yet: run tokens.make_tokens(study, ...) first")
        return self.table


def prepare(config: CompassConfig) -> Compass:
    """The dataset of ``config.manifest`` (generated on first use, checksum verified),
    narrowed to ``config.cameras``."""
    from nblib.data.manifest import open_dataset

    return Compass(config, open_dataset(config.manifest, cameras=config.cameras))


def make_tokens(study: Compass, run_dir: str | Path | None = None) -> None:
    """The token table: read from ``config.token_file``, or made by training the small
    latent-action model on every camera's pairs (k = 1..2*stride, half reversed) and
    tokenising every pair at ``stride``; its checkpoint goes to ``run_dir``."""
    from nblib.models.latent import (
        LatentActionConfig,
        load_token_file,
        save_latent_model,
        tokenize_dataset,
        train_latent_model,
    )

    cfg = study.config
    if cfg.token_file:
        study.table = load_token_file(cfg.token_file)
    else:
        model_config = LatentActionConfig(codebook_size=cfg.codebook_size, seq_len=cfg.seq_len)
        study.model, study.history = train_latent_model(
            study.store,
            camera=cfg.cameras,
            stride=cfg.stride,
            steps=cfg.train_steps,
            seed=cfg.seed,
            config=model_config,
        )
        if run_dir is not None:
            study.checkpoint = save_latent_model(study.model, Path(run_dir) / CHECKPOINT)
        study.table = tokenize_dataset(
            study.model, study.store, camera=cfg.cameras, stride=cfg.stride
        )
    position = "combined" if cfg.combine_tokens else cfg.token_position
    study.ids, study.n_codes = compass.token_ids(study.table, position, cfg.codebook_size)


def describe(study: Compass) -> str:
    """Pairs per dataset, tokens per pair, analysed ids and pairs with frames."""
    table = study._table()
    return (
        f"frame pairs per dataset: {table.groupby('dataset').size().to_dict()}\n"
        f"tokens per pair: {token_matrix(table).shape[1]} | analysed ids: {study.n_codes} | "
        f"pairs with frames: {int(study.with_frames.sum())}"
    )


def training_summary(study: Compass) -> str:
    """Training time, pairs, the final reconstruction / copy MSE and perplexity."""
    history, meta = study.history, study.model.meta
    final = {
        k: round(float(history.final(k)), 5)
        for k in ("recon", "copy", "perplexity")
        if k in history[-1]
    }
    where = f"; checkpoint {study.checkpoint.name}" if study.checkpoint else ""
    return f"{meta['seconds']:.0f} s, {meta['pairs']} training pairs; final {final}{where}"


def plot_training(study: Compass):
    from nblib.plots import plot_training_curves

    return plot_training_curves(study.history, label="latent actions")


def add_motion(study: Compass) -> None:
    """Mean optical flow (rows with frames and no flow yet) and the projected end-effector
    motion of every pair."""
    study.table = frame_pairs.add_motion(study._table(), study.store, study.config.weighting)


def stride_check(study: Compass) -> pd.DataFrame | None:
    """Median angle between flow and the hand's motion per stride and camera (None when no
    row has frames)."""
    if not study.with_frames.any():
        return None
    cfg = study.config
    study.strides = frame_pairs.stride_effect(
        study.store,
        cfg.cameras,
        cfg.strides_compared,
        cfg.pairs_per_stride,
        cfg.weighting,
        cfg.seed,
        min_pixels=cfg.min_motion,
    )
    return study.strides


def compass_figures(study: Compass) -> dict[str, tuple]:
    """The compass, the relative compass, the flow scatter and the per-token angular
    histograms of the moving pairs, by figure name."""
    cfg, table, ids, n = study.config, study._table(), study.ids, study.n_codes
    vec = compass.motion_vectors(table, cfg.motion)
    moving = np.isfinite(vec).all(axis=1) & (np.hypot(vec[:, 0], vec[:, 1]) >= cfg.min_motion)
    hist = angular_histograms(ids[moving], angle_deg(vec[moving]), HISTOGRAM_BINS, n)
    return {
        "token_compass": plots.plot_compass(
            table, ids, n, cfg.motion, min_magnitude=cfg.min_motion
        ),
        "token_compass_relative": plots.plot_compass(
            table, ids, n, cfg.motion, min_magnitude=cfg.min_motion, relative=True
        ),
        "flow_scatter": plots.plot_flow_scatter(table, ids, n, cfg.motion),
        "polar_histograms": plots.plot_polar_histograms(hist),
    }


def analyse(study: Compass) -> dict:
    """Every token metric by view: across datasets (the verdict's), across tasks, and
    against the reference motion. With ``instruction_clusters`` > 0 the instructions are
    first grouped into that many clusters (column ``instruction_cluster``)."""
    cfg, table = study.config, study._table()
    label = "instruction"
    if cfg.instruction_clusters:
        table["instruction_cluster"] = cluster_instructions(
            table["instruction"], cfg.instruction_clusters, cfg.seed
        )
        label = "instruction_cluster"
    study.views = compass.analyse_views(
        table, study.ids, study.n_codes, cfg.motion, cfg.direction_bins, cfg.min_motion, label
    )
    return study.views


def views_table(study: Compass) -> pd.DataFrame:
    """The reported metrics (rows) of every view (columns)."""
    return pd.DataFrame(_views(study)).reindex(list(VIEW_KEYS))


def usage(study: Compass) -> dict:
    """Counts per id, perplexity, active and dead codes of the analysed ids."""
    return codebook_usage(study.ids, study.n_codes)


def plot_codebook_usage(study: Compass):
    return plots.plot_codebook_usage(usage(study)["counts"])


def codebook_summary(study: Compass) -> str:
    used = usage(study)
    return (
        f"perplexity {used['perplexity']:.1f} of {study.n_codes}; active codes "
        f"{used['active_codes']}; dead codes {list(used['dead_codes'])}"
    )


def order_ablation(study: Compass) -> pd.DataFrame | None:
    """Reconstruction MSE of random pairs decoded with their own tokens, the tokens
    permuted, reversed, random tokens, and copying frame t (None without a model)."""
    from nblib.models.latent import permutation_ablation

    if study.model is None:
        return None
    first, last = frame_pairs.sample_frames(
        study.store, study._table(), ABLATION_PAIRS, study.config.seed
    )
    study.ablation = permutation_ablation(study.model, first, last)
    names = ("original", "permuted", "reversed", "random", "copy")
    return pd.Series({k: study.ablation[k] for k in names}, name="recon MSE").to_frame()


def umap_figures(study: Compass) -> dict[str, tuple]:
    """UMAP of the codebook vectors and of the latents of random pairs (coloured by their
    token), by figure name; none without a model."""
    if study.model is None:
        return {}
    cfg = study.config
    codebook = study.model.codebook().detach().numpy()
    latents, latent_ids = frame_pairs.latents_sample(
        study.model,
        study.store,
        study._table(),
        study.ids,
        UMAP_LATENTS,
        cfg.seed,
        position=cfg.token_position,
    )
    return {
        "umap_codebook": plots.plot_embedding(
            umap_embedding(codebook, cfg.seed),
            np.arange(len(codebook)),
            "UMAP of codebook vectors",
            len(codebook),
        ),
        "umap_latents": plots.plot_embedding(
            umap_embedding(latents, cfg.seed),
            latent_ids,
            "UMAP of latents (colour: token)",
            study.n_codes,
        ),
    }


def gallery(study: Compass):
    """Random frame pairs of the most used tokens, with their mean flow drawn in."""
    cfg, table, ids = study.config, study._table(), study.ids
    counts = usage(study)["counts"]
    top = [int(c) for c in np.argsort(counts)[::-1][: cfg.gallery_tokens] if counts[c] > 0]
    rng = np.random.default_rng(cfg.seed)
    with_frames = study.with_frames
    flow = compass.motion_vectors(table, "flow") if "flow_dx" in table.columns else None
    rows = []
    for code in top:
        members = np.flatnonzero((ids == code) & with_frames)
        picks = (
            rng.choice(members, size=min(cfg.gallery_per_token, len(members)), replace=False)
            if len(members)
            else []
        )
        firsts, seconds = (
            frame_pairs.pair_frames(table, picks, study.store) if len(picks) else ([], [])
        )
        pairs = []
        for j, i in enumerate(picks):
            r = table.iloc[int(i)]
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
    return plots.plot_gallery(rows)


def plotly_scatter(study: Compass):
    """Interactive scatter of every pair's motion coloured by token, hover for details."""
    return plots.plotly_scatter(study._table(), study.ids, study.config.motion)


def verdict(study: Compass) -> Verdict:
    """CONSISTENT / PARTIAL / INCONSISTENT / UNDETERMINED, from the across-datasets view."""
    return compass.verdict(_views(study)["across datasets"])


def metrics(study: Compass) -> dict:
    """What metrics.json records beside the verdict's numbers: every view's summary, the
    stride check, the ablation and the model's training record."""
    return {
        "pairs": len(study._table()),
        **{name.replace(" ", "_"): summary for name, summary in _views(study).items()},
        "flow_vs_reference_median_deg": None
        if study.strides is None
        else frame_pairs.records(study.strides),
        "permutation_ablation": study.ablation,
        "latent_model": None if study.model is None else study.model.meta,
    }


def _views(study: Compass) -> dict:
    if study.views is None:
        raise ParameterError("no metrics yet: run tokens.analyse(study) first")
    return study.views
