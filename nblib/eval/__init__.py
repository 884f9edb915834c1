"""Evaluation: result files of LIBERO-style evaluations (``results``), the published
baselines (``baselines``), and closed-loop evaluation in Meta-World (``metaworld``) and
LIBERO / LIBERO-PRO (``libero``) through one harness (``rollout``, ``policies``)."""
