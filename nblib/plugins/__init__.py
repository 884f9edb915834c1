"""Plug-in policies: a VLA written outside nblib, diagnosed by the suite's notebooks and
evaluated in the closed loop with no change to nblib.

- :mod:`nblib.plugins.spec`: how a policy is named (``file.py:factory``,
  ``package.module:factory``, an entry point of the group ``nblib.policies``).
- :mod:`nblib.plugins.contract`: what the factory gets (:class:`PolicyInfo`), the batches a
  plug-in sees (LeRobot's keys) and the checks its answers pass.
- :mod:`nblib.plugins.runtime`: training, prediction, saving and loading.

The user's side of the contract is documented in ``docs/plugins.md``; complete examples
that do not import nblib are in ``examples/policies/``.
"""

from nblib.plugins.spec import ENTRY_POINT_GROUP, is_policy_spec, load_factory

__all__ = ["ENTRY_POINT_GROUP", "PolicyInfo", "is_policy_spec", "load_factory"]


def __getattr__(name: str):
    # PolicyInfo's module imports torch: `nblib run`'s parameter check reads specs without it.
    if name == "PolicyInfo":
        from nblib.plugins.contract import PolicyInfo

        return PolicyInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
