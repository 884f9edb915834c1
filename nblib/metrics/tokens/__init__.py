"""Do discrete latent-action tokens mean the same motion everywhere? (seed 004)

Every function takes one row per frame pair:

- ``tokens`` (N,) non-negative int code ids. For token *sequences* pass one position at a
  time, or a combined id such as ``t0 * K + t1``.
- ``motion`` (N, 2) float motion vectors in image axes: dx to the right, dy *down* (e.g. the
  magnitude-weighted mean optical flow of the pair).
- ``angles`` (N,) degrees with 0 = right and 90 = up, i.e. ``atan2(-dy, dx)``; see
  :func:`nblib.flow.angle_deg`. Returned angles lie in [0, 360).
- ``groups`` (N,) labels of the dataset / camera / task each row came from.
- ``instructions`` (N,) instruction strings or instruction-cluster ids.

Direction bins are centred on the compass: with ``n_bins=8`` bin 0 is "right"
(-22.5 to 22.5 deg), bin 2 "up", bin 4 "left", bin 6 "down".

Directions come from unit vectors, so rows whose motion is exactly zero have no direction
and are left out of every direction statistic (``min_magnitude`` can drop more). Statistics
of a code with no rows are NaN, never 0: a dead code has no direction, not direction 0.
Everything is vectorised (``np.bincount``) and runs on 10^6 rows in well under a second.

Modules: ``directions`` (per-code compass, direction histograms, direction probe),
``consistency`` (does a code mean the same direction in every group?), ``information``
(H(token | direction), NMI / AMI, instruction clustering), ``codebook`` (usage),
``summary`` (everything as metrics.json scalars) and ``inputs`` (their shared checks).
"""

from nblib.metrics.tokens.codebook import codebook_usage
from nblib.metrics.tokens.consistency import AGREEMENT_MIN_ROOM, consistency_score
from nblib.metrics.tokens.directions import angular_histograms, direction_probe, token_directions
from nblib.metrics.tokens.information import (
    AMI_MAX_ROWS,
    cluster_instructions,
    direction_nmi,
    instruction_nmi,
    token_entropy_given_direction,
)
from nblib.metrics.tokens.summary import summarize_tokens

__all__ = [
    "AGREEMENT_MIN_ROOM",
    "AMI_MAX_ROWS",
    "angular_histograms",
    "cluster_instructions",
    "codebook_usage",
    "consistency_score",
    "direction_nmi",
    "direction_probe",
    "instruction_nmi",
    "summarize_tokens",
    "token_directions",
    "token_entropy_given_direction",
]
