"""``nblib serve POLICY``: a policy as a vla-eval model server (:mod:`nblib.serving`). Its
options are :class:`nblib.serving.server.ServeConfig`'s fields."""

from __future__ import annotations

import argparse

from nblib.cli.options import add_config_options, config_from, flag_errors


def _options(parser: argparse.ArgumentParser) -> None:
    from nblib.eval.rollout import SIMULATORS
    from nblib.serving.server import PROTOCOLS, ServeConfig

    parser.add_argument(
        "policy",
        metavar="POLICY",
        help="expert, random, zero, a notebook-01 run folder, or a plug-in spec "
        "(file.py:factory, module:factory, an entry point)",
    )
    fields = [f for f in ServeConfig.__dataclass_fields__ if f != "policy"]
    add_config_options(
        parser, ServeConfig, fields, choices={"sim": SIMULATORS, "protocol": PROTOCOLS}
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from nblib.serving.server import serve

    config = config_from(args, policy=args.policy)

    def ready(url: str) -> None:
        print(f"serving {config.policy} ({config.protocol}) on {url}; Ctrl-C stops", flush=True)

    with flag_errors(args):
        try:
            serve(config, ready=ready)
        except KeyboardInterrupt:
            print("stopped")
    return 0


def register(sub) -> None:
    sv = sub.add_parser(
        "serve",
        help="serve a policy over a websocket (vla-eval or openpi protocol) for remote simulators",
        description="Serve POLICY as a vla-eval model server (`nblib eval --policy "
        "ws://HOST:PORT`, vla-eval's benchmark clients) or, with --protocol openpi, as an "
        "openpi policy server (`--policy openpi://HOST:PORT`, openpi-client).",
        populate=_options,
    )
    sv.set_defaults(func=_cmd_serve)
