"""2-D embeddings of representations for figures: PCA and UMAP (rows of x (N, D))."""

from __future__ import annotations

import warnings

import numpy as np

from nblib.errors import ParameterError


def _rows(x, least: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) < least:
        raise ParameterError(f"x: expected (N, D) with at least {least} rows, got shape {x.shape}")
    return x


def pca_embedding(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) projection on the first two principal components, and the share of the
    variance each explains (2,); zeros for a constant representation."""
    from sklearn.decomposition import PCA

    x = _rows(x, 2)
    if not np.ptp(x, axis=0).any():  # every sample identical: nothing to project
        return np.zeros((len(x), 2)), np.zeros(2)
    k = min(2, *x.shape)
    pca = PCA(n_components=k).fit(x)
    points = np.zeros((len(x), 2))
    points[:, :k] = pca.transform(x)
    ratio = np.zeros(2)
    ratio[:k] = pca.explained_variance_ratio_
    return points, ratio


def umap_embedding(x: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP of the rows of ``x`` (n_neighbors capped at n - 1 for small sets such as a
    codebook). The first call in a process compiles numba code (~10-20 s)."""
    import umap

    x = _rows(x, 3)
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(x) - 1), random_state=seed)
    with warnings.catch_warnings():
        # a fixed random_state makes UMAP single-threaded, which it announces every call
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return reducer.fit_transform(x)
