"""Does the instruction matter? (seed 000's H(L|V) ~ 0 worry)

The same observations with the original instruction replaced by a paraphrase, another
task's instruction, its words shuffled, or nothing: how far each stage's embedding and the
predicted actions move. Plus the VLM's attention on the instruction and, for an InfoBot
policy, its I(Z; V) estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nblib.data.store import StoreBase
from nblib.errors import ParameterError
from nblib.metrics.estimates import bootstrap_mean
from nblib.studies.probes.stages import INPUT_STAGES, encode_stages
from nblib.studies.probes.study import ProbesStudy, policy_inputs
from nblib.verdict import Estimate

VARIANTS = ("paraphrase", "other task", "shuffled", "empty")
# A change of the predicted actions below this many action stds counts as "ignored".
LANGUAGE_TOL = 0.05


@dataclass(frozen=True)
class LanguageReliance:
    """Per instruction variant (rows of ``table``): ``text_similarity`` to the original
    (all-MiniLM-L6-v2 cosine), the mean cosine of each stage's embedding with the
    original's (1 = unchanged) and ``action_change_std``, the mean |change| of the
    predicted actions in action stds (flow noise held fixed); ``action_change`` holds the
    latter with its bootstrap interval over the probe samples."""

    table: pd.DataFrame
    action_change: dict[str, Estimate]


# The variants that decide whether the policy reads its instruction (a paraphrase or a
# shuffle may rightly leave the actions alone).
DECISIVE = ("other task", "empty")


def reliance(change: dict[str, Estimate], tol: float = LANGUAGE_TOL) -> str:
    """What the decisive variants' action changes say, in words the verdict and the
    figure share: "relies on", "ignores" or "may or may not rely on (...)"."""
    decisive = [change[k] for k in DECISIVE if k in change]
    if any(e.above(tol) for e in decisive):
        return "relies on"
    if decisive and all(e.below(tol) for e in decisive):
        return "ignores"
    return "may or may not rely on (an interval straddles the threshold)"


def instruction_variants(study: ProbesStudy) -> dict[str, list[str]]:
    """Per variant, one instruction per probe sample: ``paraphrase`` (another phrasing of
    the same task from the file's instruction list; left out unless every task has one),
    ``other task`` (the instruction of the next task in alphabetical order), ``shuffled``
    (its words in a random order) and ``empty``."""
    original = list(study.samples.instructions)
    tasks = study.info["task"].tolist()
    by_task = {t: i for t, i in zip(tasks, original, strict=True)}
    ordered = sorted(by_task)
    other = {t: by_task[ordered[(k + 1) % len(ordered)]] for k, t in enumerate(ordered)}
    rng = np.random.default_rng(study.config.seed)

    def shuffle(text: str) -> str:
        words = text.split()
        if len(set(words)) < 2:
            return text
        while True:
            perm = [words[i] for i in rng.permutation(len(words))]
            if perm != words:
                return " ".join(perm)

    out = {}
    phrasings = _paraphrases(study.store)
    paraphrased = [_another(phrasings.get(t, []), o) for t, o in zip(tasks, original, strict=True)]
    if all(p is not None for p in paraphrased):  # only when every task has another phrasing
        out["paraphrase"] = paraphrased
    out["other task"] = [other[t] for t in tasks]
    out["shuffled"] = [shuffle(o) for o in original]
    out["empty"] = [""] * len(original)
    return out


def _paraphrases(store: StoreBase) -> dict[str, list[str]]:
    """task -> its phrasings, where the dataset lists them (the generator's files do)."""
    if not store.has("instruction_phrasings"):
        return {}
    return store.instruction_phrasings()


def _another(phrasings: list[str], original: str) -> str | None:
    others = [p for p in phrasings if p != original]
    return others[0] if others else None


def language_reliance(study: ProbesStudy) -> LanguageReliance:
    """How far each stage and the predicted actions move when the instruction changes."""
    from nblib.models.text import sentence_similarity

    original = study.samples.instructions
    base = encode_stages(study, original)
    std = np.maximum(np.asarray(study.stats.actions.std), 1e-8)
    rows, change = {}, {}
    for name, texts in instruction_variants(study).items():
        changed = encode_stages(study, texts)
        row = {"text_similarity": float(np.mean(sentence_similarity(original, texts)))}
        for stage, x in changed["stages"].items():
            if stage not in INPUT_STAGES:
                row[stage] = _mean_row_cosine(base["stages"][stage], x)
        per_sample = (np.abs(changed["actions"] - base["actions"]) / std).mean(axis=(1, 2))
        change[name] = bootstrap_mean(per_sample, "samples", seed=study.config.seed)
        row["action_change_std"] = change[name].value
        rows[name] = row
    return LanguageReliance(pd.DataFrame(rows).T.astype(float), change)


def _mean_row_cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (nb > 0)
    if not ok.any():
        return None
    return float(np.mean(np.einsum("nd,nd->n", a[ok], b[ok]) / (na[ok] * nb[ok])))


def mi_estimate(study: ProbesStudy) -> float | None:
    """An InfoBot policy's InfoNCE estimate of I(Z; V) on the probe samples (nats; at most
    log of their number); None for other policies, a plug-in's among them (not available:
    the estimator is part of nblib's InfoBot head)."""
    if study.plugin is not None:
        return None
    samples = study.samples
    enc = study.backbone.encode(samples.images, samples.instructions, output=("last", "tokens"))
    return study.model.policy.mi_estimate(policy_inputs(study, np.arange(len(samples)), enc))


def instruction_attention(study: ProbesStudy) -> dict | None:
    """The VLM's last-token attention on the instruction tokens (mean over samples) and the
    instruction's share of the tokens (what uniform attention gives); None for a model
    whose prompt does not mark the instruction, or a plug-in (not available: it needs
    nblib's prompt layout)."""
    if study.plugin is not None:
        return None
    try:
        got = study.backbone.instruction_attention(study.samples.images, study.samples.instructions)
    except ParameterError:
        return None
    return {"mass": float(got["mass"].mean()), "share": float(got["share"].mean())}
