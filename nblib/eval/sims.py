"""What a simulator takes, for everything that builds or serves a policy for it (the
closed loop, the policy servers and their clients), without importing either; and the
simulator a run builds for a task and a policy."""

from __future__ import annotations

from nblib.errors import ParameterError


def action_dim(sim: str) -> int:
    """The width of simulator ``sim``'s actions."""
    if sim == "libero":
        from nblib.eval.libero import ACTION_DIM
    else:
        from nblib.eval.metaworld import ACTION_DIM
    return ACTION_DIM


def check_action_dim(policy, sim: str) -> None:
    """A saved policy trained for another simulator fails here, not mid-episode."""
    trained, takes = getattr(policy, "action_dim", None), action_dim(sim)
    if trained is not None and trained != takes:
        raise ParameterError(
            f"the policy predicts {trained}-D actions; {sim} takes {takes}-D actions "
            "(was it trained on another simulator's demonstrations?)"
        )


def simulator_for(cache: dict, spec, policy, config):
    """The simulator of ``spec``'s task (a TaskSpec) for ``policy`` under ``config`` (an
    EvalConfig): the cameras, frame size and colour depth the policy reads; built once
    per task and kept in ``cache``."""
    if spec.key in cache:
        return cache[spec.key]
    cameras = tuple(getattr(policy, "cameras", ()))
    size = getattr(policy, "image_size", 128) or 128
    if spec.sim == "libero":
        from nblib.eval.libero import LiberoTask

        if getattr(policy, "depth", False):
            raise ParameterError(
                "the policy reads depth-based geometry tokens, which nblib renders in "
                "Meta-World only"
            )
        sim = LiberoTask(
            spec.suite,
            spec.task_id,
            cameras=cameras,
            size=size,
            video=bool(config.video),
            max_steps=config.max_steps or spec.max_steps,
        )
    else:
        from nblib.eval.metaworld import MetaWorldTask

        sim = MetaWorldTask(
            spec.key,
            cameras=cameras,
            size=size,
            color_bits=getattr(policy, "color_bits", 8),
            position_noise=config.position_noise,
            depth=getattr(policy, "depth", False),
        )
    cache[spec.key] = sim
    return sim
