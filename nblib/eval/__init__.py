"""Evaluation: result files of LIBERO-style evaluations (``results``) and the published
baselines (``baselines``); closed-loop rollouts will live here too."""
