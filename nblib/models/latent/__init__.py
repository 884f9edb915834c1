"""The small latent-action model (``model``), its training and tokenisation (``training``)
and the token tables it shares with users' own checkpoints (``tokens``)."""

from nblib.models.latent.model import (
    LatentActionConfig,
    LatentActionModel,
    load_latent_model,
    permutation_ablation,
    save_latent_model,
)
from nblib.models.latent.tokens import load_token_file, token_matrix, token_table
from nblib.models.latent.training import load_frame_pairs, tokenize_dataset, train_latent_model

__all__ = [
    "LatentActionConfig",
    "LatentActionModel",
    "load_frame_pairs",
    "load_latent_model",
    "load_token_file",
    "permutation_ablation",
    "save_latent_model",
    "token_matrix",
    "token_table",
    "tokenize_dataset",
    "train_latent_model",
]
