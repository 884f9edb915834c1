"""``nblib data``: generate, check, describe, export and ensure datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from nblib.cli.options import add_config_options, config_from


def _generate_options(parser: argparse.ArgumentParser) -> None:
    from nblib.data.metaworld_gen import GenerateConfig

    add_config_options(parser, GenerateConfig)
    parser.add_argument(
        "--out", help="output HDF5 (default: data/<manifest or metaworld_default>.hdf5)"
    )
    parser.add_argument(
        "--manifest", help="also write data_manifests/NAME.yaml describing the file"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="rendering processes (default: one per core, at most 2; the file is the same)",
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    from nblib.data.manifest import (
        DEFAULT_DATASET,
        describe_generated,
        load_manifest,
        verify_dataset,
        write_manifest,
    )
    from nblib.data.metaworld_gen import generate
    from nblib.paths import data_dir, manifests_dir

    cfg = config_from(args)
    out = Path(args.out) if args.out else data_dir() / f"{args.manifest or DEFAULT_DATASET}.hdf5"
    summary = generate(cfg, out, progress=not args.quiet, workers=args.workers)
    size_mb = out.stat().st_size / 1e6
    print(f"wrote {out}: {summary['demos']} demos, {summary['steps']} steps, {size_mb:.1f} MB")
    if summary["failed_demos"]:
        print(f"warning: expert did not succeed in {summary['failed_demos']} (kept, success=False)")
    if args.manifest:
        path = manifests_dir() / f"{args.manifest}.yaml"
        if args.manifest == DEFAULT_DATASET and path.exists():
            # The committed default manifest is the reference: verify against it, never overwrite.
            status = verify_dataset(load_manifest(path), out)
            print(f"checked against {path}: {status} match")
        else:
            write_manifest(describe_generated(out, args.manifest, cfg), path)
            print(f"wrote manifest {path}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from nblib.data.formats import check_dataset
    from nblib.data.summary import format_summary

    summary = check_dataset(args.path, mapping=args.mapping, horizon=args.horizon)
    print(format_summary(summary))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from nblib.data.lerobot import LeRobotStore
    from nblib.data.lerobot_export import VideoOptions, codec_error, export_lerobot, open_source

    store = open_source(args.source, mapping=args.mapping)
    report = export_lerobot(
        store,
        args.out,
        fps=args.fps,
        video=VideoOptions(vcodec=args.vcodec, crf=args.crf),
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(
        f"{report.out}: LeRobot v3.0, {report.episodes} episodes, {report.frames} frames, "
        f"{report.tasks} tasks, {report.fps:g} fps, {len(report.cameras)} cameras "
        f"({report.vcodec}), {report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s"
    )
    if not args.no_verify:
        exported = LeRobotStore(report.out)
        for camera in report.cameras:
            err = codec_error(store, exported, camera)
            print(
                f"  {camera}: frames differ from the source by {err['mean_abs']:.2f} grey levels "
                f"on average (max {err['max_abs']}), PSNR {err['psnr_db']:.1f} dB"
            )
    if args.manifest:
        _write_folder_manifest(report.out, args.manifest)
    return 0


def _write_folder_manifest(folder: Path, name: str, description: str = "") -> None:
    from nblib.data.lerobot_check import describe_folder
    from nblib.data.manifest import write_manifest
    from nblib.paths import manifests_dir

    path = manifests_dir() / f"{name}.yaml"
    data = describe_folder(Path(folder).resolve(), name, description)
    write_manifest(data, path)
    counts = data["counts"]
    print(f"wrote manifest {path}: {counts['demos']} episodes, {counts['steps']} frames")


def _cmd_describe(args: argparse.Namespace) -> int:
    from nblib.data.formats import is_lerobot_folder

    if is_lerobot_folder(args.path):
        if args.mapping:
            from nblib.errors import ParameterError

            raise ParameterError(
                f"--mapping: {args.path} is a LeRobot folder, read with the 'lerobot' "
                "mapping; --mapping is for HDF5 files"
            )
        _write_folder_manifest(Path(args.path), args.manifest, args.description)
        return 0
    from nblib.data.hdf5_describe import write_hdf5_manifest

    path, data, guess = write_hdf5_manifest(
        args.path, args.manifest, args.description, mapping=args.mapping
    )
    if args.mapping:
        print(f"key mapping '{data['key_mapping']}' (as given)")
    elif guess.exact:
        print(f"key mapping '{data['key_mapping']}' (the file has its layout)")
    else:
        print(
            f"key mapping '{data['key_mapping']}': adapted from '{guess.base}', saved as "
            f"{path.parent / 'key_mappings' / (args.manifest + '.json')}"
        )
    for note in guess.notes:
        print(f"  {note}")
    counts = data["counts"]
    print(f"wrote manifest {path}: {counts['demos']} demos, {counts['steps']} steps")
    return 0


def _cmd_ensure(args: argparse.Namespace) -> int:
    from nblib.data.manifest import ensure_dataset

    path = ensure_dataset(args.manifest, progress=not args.quiet)
    print(f"{args.manifest}: {path} (checksum verified)")
    return 0


def register(sub) -> None:
    data = sub.add_parser("data", help="generate, check and verify datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    gen = dsub.add_parser(
        "generate",
        help="render Meta-World expert demos into robomimic-style HDF5",
        description="Render demonstrations with Meta-World's scripted experts on MuJoCo "
        "(headless EGL).",
        populate=_generate_options,
    )
    gen.set_defaults(func=_cmd_generate)

    chk = dsub.add_parser("check", help="validate a dataset file or folder and print a summary")
    chk.add_argument("path", help="HDF5 file or LeRobot folder (v3.0, v2.1, v2.0)")
    chk.add_argument(
        "--mapping",
        help="key mapping name or JSON path (default: metaworld for HDF5, lerobot for folders)",
    )
    chk.add_argument(
        "--horizon", type=int, help="fail if any episode is shorter than this chunk horizon"
    )
    chk.set_defaults(func=_cmd_check)

    dsc = dsub.add_parser(
        "describe",
        help="write a manifest for an HDF5 file or LeRobot folder (counts, cameras, checksums)",
        description="Write data_manifests/NAME.yaml for a dataset. An HDF5 file's key mapping "
        "is guessed from its layout (robomimic, LIBERO, nblib's Meta-World file, NVIDIA "
        "Cosmos); one adapted to the file is saved as data_manifests/key_mappings/NAME.json.",
    )
    dsc.add_argument("path", help="HDF5 demo file, or LeRobot folder (v3.0, v2.1, v2.0)")
    dsc.add_argument("--manifest", required=True, help="manifest name: data_manifests/NAME.yaml")
    dsc.add_argument("--description", default="", help="one line saying what the data is")
    dsc.add_argument(
        "--mapping", help="HDF5 only: key mapping name or JSON path to use instead of guessing"
    )
    dsc.set_defaults(func=_cmd_describe)

    exp = dsub.add_parser(
        "export", help="write an HDF5 dataset as a LeRobot v3.0 folder (Parquet + MP4)"
    )
    exp.add_argument("source", help="manifest name or path, or an HDF5 file")
    exp.add_argument("--format", choices=("lerobot",), required=True, help="output format")
    exp.add_argument("--out", required=True, help="output folder (must not exist)")
    exp.add_argument("--mapping", help="key mapping of an HDF5 file (default metaworld)")
    exp.add_argument("--fps", type=float, help="control rate (default: from the file)")
    exp.add_argument(
        "--vcodec", default="libsvtav1", help="libsvtav1, h264 or hevc (default %(default)s)"
    )
    exp.add_argument("--crf", type=int, default=30, help="video quality (default %(default)s)")
    exp.add_argument("--manifest", help="also write data_manifests/NAME.yaml for the folder")
    exp.add_argument(
        "--no-verify", action="store_true", help="skip decoding the videos to report codec error"
    )
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(func=_cmd_export)

    ens = dsub.add_parser(
        "ensure", help="generate a manifest's dataset if missing, then verify its checksum"
    )
    ens.add_argument(
        "manifest",
        nargs="?",
        default="metaworld_default",
        help="manifest name (default %(default)s)",
    )
    ens.add_argument("--quiet", action="store_true", help="no progress bar")
    ens.set_defaults(func=_cmd_ensure)
