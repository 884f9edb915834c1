"""Metrics: open-loop action errors, representation probes, token statistics, success rates."""
