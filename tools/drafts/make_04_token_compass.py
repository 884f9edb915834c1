import nbformat as nbf
nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
C = []
C.append(md("""# 04 · Token compass: do latent action tokens mean the same motion everywhere?

**Question (seed 004).** A latent-action model (LAQ/LAPA style) turns a frame pair
(t, t+k) into a few discrete tokens. If token 5 means "move right" in one dataset, does it
mean "move right" in another — another camera, another task? Motion is measured from the
pixels: the magnitude-weighted mean optical flow of the pair, which needs no action
labels and is the same quantity in every dataset; the end effector's motion projected into
the image with the stored camera parameters is the reference.

**How to read the verdict.** Two numbers decide it:

* **R**, the concentration of each token's motion directions (row-weighted mean
  resultant length: 1 = all pairs of a token move the same way, ~0 = any way);
* **agreement**, how far the datasets agree on each token's mean direction beyond chance
  (0 = no better than unrelated datasets, 1 = identical directions).

**CONSISTENT** when both are ≥ 0.5, **INCONSISTENT** when either is < 0.2, else
**PARTIAL**. NMI between tokens and direction bins, a linear probe, the codebook usage
and NMI with the instructions are reported alongside.

With no `token_file`, a small latent-action quantiser is trained on the embedded demos
(both cameras) first. Note that the wrist camera moves with the hand: there the scene
moves *opposite* to the hand, so flow-based directions of one hand motion differ between
a fixed and a wrist camera by construction."""))
C.append(code("""manifest = "metaworld_default"  # dataset manifest (data_manifests/NAME.yaml) or a path to one
token_file = None  # your own tokens (Parquet, NPZ or CSV, see nblib.latent.load_token_file); None trains the small model
cameras = ["corner", "behindGripper"]  # cameras analysed; each acts as one dataset
stride = 4  # k, frames between the two frames of a pair
train_steps = 600  # training steps of the small latent-action model
codebook_size = 16  # codes in its codebook
seq_len = 2  # tokens per frame pair
token_position = 0  # token of the sequence analysed (0 to seq_len - 1) or combined
weighting = "magnitude"  # mean-flow weighting: plain, magnitude or threshold
direction_bins = 8  # compass bins for entropy, NMI and the probe
min_motion = 0.5  # pairs whose mean flow is shorter (pixels) count as static
strides_compared = [1, 2, 4, 8]  # strides of the flow-vs-reference check
pairs_per_stride = 200  # random pairs per stride and camera in that check
umap = True  # UMAP of codebook vectors and of latents (the first fit compiles numba)
gallery_per_token = 3  # random frame pairs shown per token
seed = 0  # seed of training, subsampling and the gallery
interactive = False  # True in JupyterLab adds a plotly scatter with hover""", metadata={"tags": ["parameters"]}))
C.append(code("""import numpy as np
import pandas as pd

from nblib import compass, report
from nblib.data.dataset import DemoStore
from nblib.data.manifest import ensure_dataset, load_manifest
from nblib.latent import LatentActionConfig, load_token_file, permutation_ablation, tokenize_dataset, train_latent_model
from nblib.metrics.tokens import angular_histograms, codebook_usage, motion_angles
from nblib.plots import plot_training_curves

NOTEBOOK = "04_token_compass"
m = load_manifest(manifest)
path = ensure_dataset(m)
store = DemoStore(path, mapping=m.key_mapping, cameras=cameras)"""))
C.append(md("## Tokens\nEither your own token file or the small latent-action model trained here (encoder of the pair → vector-quantised tokens → decoder that rebuilds frame t+k from frame t and the tokens)."))
C.append(code("""model = history = None
if token_file:
    tokens = load_token_file(token_file)
else:
    config = LatentActionConfig(codebook_size=codebook_size, seq_len=seq_len)
    model, history = train_latent_model(path, camera=cameras, stride=stride, steps=train_steps, seed=seed, config=config)
    tokens = pd.concat([tokenize_dataset(model, path, camera=c, stride=stride) for c in cameras], ignore_index=True)
ids, n_codes = compass.token_ids(tokens, token_position, codebook_size)"""))
C.append(code("""# NBVAL_CHECK_OUTPUT
print("frame pairs per dataset:", tokens.groupby("dataset").size().to_dict())
print("tokens per pair:", compass.token_matrix(tokens).shape[1], "| analysed ids:", n_codes)"""))
C.append(code("""if history is not None:
    fig, _ = plot_training_curves(history, label="latent actions")
    report.save(fig, "latent_training", NOTEBOOK)
    print({k: round(float(history.final(k)), 4) for k in ("recon", "perplexity") if k in history[-1]})"""))
C.append(md("## Motion from pixels, and how far to trust it\nMean optical flow (OpenCV Farneback) of every pair, and the end effector's motion projected into each camera as the reference. The stride k trades noise for ambiguity: the angle between the two shrinks as k grows."))
C.append(code("""tokens = compass.add_motion(tokens, store, weighting)
strides = compass.stride_effect(store, cameras, strides_compared, pairs_per_stride, weighting, seed)
fig, _ = compass.plot_stride_effect(strides)
report.save(fig, "flow_vs_reference_by_stride", NOTEBOOK)
strides.round(1)"""))
C.append(md("## The compass\nOne panel per token: an arrow per dataset pointing in the token's mean flow direction, as long as its concentration R. Consistent tokens have long arrows pointing the same way in every dataset."))
C.append(code("""fig, _ = compass.plot_compass(tokens, ids, n_codes)
report.save(fig, "token_compass", NOTEBOOK)
fig, _ = compass.plot_flow_scatter(tokens, ids, n_codes)
report.save(fig, "flow_scatter", NOTEBOOK)
moving = np.hypot(tokens["flow_dx"], tokens["flow_dy"]).to_numpy() >= min_motion
hist = angular_histograms(ids[moving], motion_angles(tokens[["flow_dx", "flow_dy"]].to_numpy()[moving]), 16, n_codes)
fig, _ = compass.plot_polar_histograms(hist)
report.save(fig, "polar_histograms", NOTEBOOK)"""))
C.append(md("## Metrics\nAcross cameras (the datasets), across tasks, and against the reference motion instead of flow."))
C.append(code("""by_camera = compass.analyse(tokens, ids, n_codes, "flow", "dataset", direction_bins, min_motion)
by_task = compass.analyse(tokens, ids, n_codes, "flow", "task", direction_bins, min_motion)
fixed = tokens["dataset"].isin([c for c in cameras if c != "behindGripper"]).to_numpy()
reference = compass.analyse(tokens[fixed], ids[fixed], n_codes, "reference", "task", direction_bins, min_motion) if fixed.any() else {}
keys = ["direction_resultant_length", "agreement", "agreement_chance", "agreement_adjusted", "direction_nmi", "probe_accuracy", "probe_chance", "entropy_given_direction_normalized", "instruction_nmi", "codebook_perplexity", "codebook_active_codes"]
pd.DataFrame({"across cameras": by_camera, "across tasks": by_task, "reference motion (fixed cameras)": reference}).loc[keys]"""))
C.append(code("""usage = codebook_usage(ids, n_codes)
fig, _ = compass.plot_codebook_usage(usage["counts"])
report.save(fig, "codebook_usage", NOTEBOOK)
if model is not None:
    print(permutation_ablation(model, *compass.sample_frames(store, tokens, 128, seed)))"""))
C.append(code("""if umap and model is not None:
    import umap as umap_lib

    codebook = model.codebook().detach().numpy()
    emb = umap_lib.UMAP(n_neighbors=min(5, len(codebook) - 1), random_state=seed).fit_transform(codebook)
    fig, _ = compass.plot_embedding(emb, np.arange(len(codebook)), "UMAP of codebook vectors")
    report.save(fig, "umap_codebook", NOTEBOOK)
    latents, latent_ids = compass.latents_sample(model, store, tokens, ids, 1500, seed)
    emb = umap_lib.UMAP(random_state=seed).fit_transform(latents)
    fig, _ = compass.plot_embedding(emb, latent_ids, "UMAP of latents (colour: token)")
    report.save(fig, "umap_latents", NOTEBOOK)"""))
C.append(md("## Gallery\nRandom frame pairs of the most used tokens (frame t left, frame t+k right)."))
C.append(code("""top = list(np.argsort(usage["counts"])[::-1][:6])
fig, _ = compass.plot_gallery(store, tokens, ids, top, gallery_per_token, seed)
report.save(fig, "token_gallery", NOTEBOOK)"""))
C.append(code("""if interactive:
    compass.plotly_scatter(tokens, ids).show()"""))
C.append(md("## Verdict: do tokens mean consistent motion across datasets?"))
C.append(code("""verdict, reasons = compass.verdict(by_camera)
report.finish(
    NOTEBOOK,
    verdict=verdict,
    metrics={
        "across_cameras": by_camera,
        "across_tasks": by_task,
        "reference_motion": reference,
        "flow_vs_reference_median_deg": strides.to_dict(orient="records"),
        "pairs": len(tokens),
        "reasons": reasons,
    },
)
print(verdict, *reasons, sep="\\n- ")"""))
C.append(code("""# NBVAL_CHECK_OUTPUT
print("verdict computed:", verdict in ("CONSISTENT", "PARTIAL", "INCONSISTENT", "UNDETERMINED"))"""))
nb.cells = C
nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}, "language_info": {"name": "python"}}
nbf.write(nb, "/work/main/notebooks/04_token_compass.ipynb")
