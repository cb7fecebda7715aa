"""``studiolo explore interpolate GENERATOR [--from-seed N] [--to-seed N] [--from-prompt TEXT] [--to-prompt TEXT]
--frames N [--param K=V …] [--to-param K=V …] [--model REF] --output PATH``: an interpolation, headless.

Every frame is one job through the engine (saved to the library with its own metadata, which reproduces it); the
frames are written to ``--output`` as an animated WebP or GIF or a strip PNG that records them
(:mod:`desktop.explore.strip`). Exit status: 0 every frame done, 1 a frame failed (the file is written, the frame
grey) or the file could not be written, 2 a usage error (a generator that offers no interpolation, frames out of
range, ends of different sizes or models, a bad parameter or output name), all before any job; 130 cancelled with
Ctrl+C (the frames not ended are cancelled; nothing is written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desktop.cli.generate_cmd import EXIT_CANCELLED, EXIT_FAILED, EXIT_USAGE, _checked_utf8, _error


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``interpolate`` to the ``explore`` command's subcommands."""
    from desktop.explore.interpolate import MAX_FRAMES, MIN_FRAMES

    p = sub.add_parser(
        "interpolate", help="interpolate between two seeds and/or two prompts and save the frames as one file",
        description="Make FRAMES jobs from one seed and prompt to another (the image generator slerps the starting "
                    "noise of the seeds and lerps the prompts' embeddings) and save them as an animated WebP or "
                    "GIF, or a strip PNG. The first and last frames are the two single runs; every frame is in the "
                    "library with the metadata that makes it again. Only generators that offer interpolation "
                    "(image.diffusers) can.")
    p.add_argument("generator_id", metavar="GENERATOR", help="e.g. image.diffusers (`studiolo plugins list`)")
    p.add_argument("--from-seed", type=int, default=None, metavar="N", help="the first frame's seed (default: random)")
    p.add_argument("--to-seed", type=int, default=None, metavar="N", help="the last frame's seed (default: random)")
    p.add_argument("--from-prompt", metavar="TEXT", help="the first frame's prompt (default: --param prompt=…)")
    p.add_argument("--to-prompt", metavar="TEXT", help="the last frame's prompt (default: the first frame's)")
    p.add_argument("--frames", "-n", type=int, default=8,
                   help=f"how many frames, both ends included ({MIN_FRAMES} to {MAX_FRAMES}; default 8)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of both ends (repeatable)")
    p.add_argument("--to-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the last frame only, over --param (repeatable; the generator refuses "
                        "what cannot be interpolated, such as another size)")
    p.add_argument("--model", metavar="REF", help="the model (default: the generator's)")
    p.add_argument("--output", "-o", type=Path, metavar="PATH", required=True,
                   help="where to write the frames: .webp or .gif (animated) or .png (a strip)")
    p.set_defaults(handler=interpolate)


def interpolate(args: argparse.Namespace) -> int:
    from desktop.api import ParamError
    from desktop.api.errors import PluginError, StudioloError
    from desktop.destinations import WriteError, check_destination
    from desktop.explore.interpolate import plan_frames
    from desktop.models.modelless import check_model_choice
    from desktop.plugins import PluginManager

    plugins = PluginManager().load()
    try:
        generator = plugins.generator(args.generator_id)
    except PluginError as exc:
        return _error(exc, EXIT_USAGE)
    try:  # everything that can be refused is refused before any job runs
        check_model_choice(generator, args.model)
        spec = _spec(generator, args)
        plan_frames(spec, generator)  # first: a generator that offers no interpolation is the thing to say
        _check_output(args.output, generator.kind)
        check_destination(args.output)
    except (ParamError, WriteError, StudioloError) as exc:
        return _error(exc, EXIT_USAGE)
    return _run(plugins, generator, spec, args)


def _spec(generator, args):
    """The interpolation the arguments ask for (params checked; :class:`ParamError` naming what is wrong)."""
    from dataclasses import replace

    from desktop.api import ParamError
    from desktop.api.params import parse_assignments, prompt_field, to_json, validate
    from desktop.explore.interpolate import InterpolationSpec

    start = parse_assignments(generator.Params, _checked_utf8(args.param))
    prompt = prompt_field(generator.Params)
    if (args.from_prompt is not None or args.to_prompt is not None) and prompt is None:
        raise ParamError("--to-prompt" if args.from_prompt is None else "--from-prompt", None,
                         f"{generator.id} has no prompt to interpolate", hint="Leave out --from-prompt/--to-prompt.")
    if args.from_prompt is not None:
        start = validate(replace(start, **{prompt: _checked_utf8([args.from_prompt])[0]}), generator.Params)
    end = parse_assignments(generator.Params, _checked_utf8(args.to_param), base=start)
    if args.to_prompt is not None:
        end = validate(replace(end, **{prompt: _checked_utf8([args.to_prompt])[0]}), generator.Params)
    return InterpolationSpec(generator.id, to_json(start), to_json(end), args.from_seed, args.to_seed, args.frames,
                             args.model)


def _check_output(target: Path, kind: str) -> None:
    from desktop.cli.output_copy import OutputFormatError
    from desktop.explore.strip import FORMATS

    if kind != "image":
        raise OutputFormatError(f"An interpolation of {kind} outputs cannot be saved as one file (only images can).")
    if target.suffix.lower() not in FORMATS:
        raise OutputFormatError(f"An interpolation is written as a .webp, .gif or .png file, not {target.name!r}.",
                                hint="Give --output a name ending in .webp or .gif (animated) or .png (a strip).")


def _run(plugins, generator, spec, args) -> int:
    from desktop.cli.explore_cmd import run_cells
    from desktop.explore.interpolate_run import InterpolationRun

    return run_cells(plugins, generator, "interpolation", lambda engine: InterpolationRun(engine, spec, generator),
                     lambda index: f"frame {index[0] + 1}", lambda run, pressed: _finish(run, generator, args, pressed))


def _finish(run, generator, args, cancelled: bool) -> int:
    from desktop.api.errors import StudioloError
    from desktop.destinations import write_file
    from desktop.explore.strip import strip_bytes

    if cancelled or run.cancelled:
        print(f"studiolo: interpolation cancelled ({len(run.results)} of {run.total} frames done and saved to the "
              "library; nothing written)", file=sys.stderr)
        return EXIT_CANCELLED
    images = {}
    for index, outputs in run.results.items():
        image = next((o.image for o in outputs if getattr(o, "image", None) is not None), None)
        if image is not None:
            images[index[0]] = image
    data = strip_bytes(args.output.suffix, generator.id, run.cells, images)
    try:
        write_file(args.output, data)
    except StudioloError as exc:
        return _error(exc, EXIT_FAILED)
    print(f"interpolation written to {args.output} ({len(run.results)} of {run.total} frames done)", file=sys.stderr)
    return 0 if not run.errors else EXIT_FAILED
