"""``Generator``: the base class every generator plugin subclasses."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from desktop.api.models import AddonKind, LoadOptions, ModelSource, RecommendedModel

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from desktop.api.context import RunContext
    from desktop.api.outputs import EncodedOutput, Output
    from desktop.api.panel import PanelHost
    from desktop.api.remote import RemoteListing
    from desktop.api.training import TrainingContext, TrainingKind, TrainingResult
    from desktop.api.watermarks import WatermarkCheck

__all__ = ["Generator"]

GENERATOR_ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
"""Generator ids are stable, lowercase and dotted: ``image.diffusers``, ``text.markov``, ``acme.patterns.tiles``."""


class Generator:
    """A generator: one kind of job Studiolo can run. Subclass it, set the class attributes, implement
    :meth:`load` and :meth:`generate`, and register an instance from your plugin's ``register_generators`` hook.

    Class attributes:
        id: stable dotted id (``"image.diffusers"``). It names the generator in the CLI, in saved metadata and in
            settings, so never change it once released.
        name: human name shown in the UI.
        kind: ``"text"``, ``"image"``, ``"audio"`` or another short lowercase word; the UI groups by it.
        version: the generator's version (recorded with every output).
        description: one sentence for the UI.
        Params: the parameter schema, a frozen dataclass built with :func:`desktop.api.param`. The seed is *not*
            a param: the host owns it and hands it over as ``ctx.seed``.
        default_model: the model reference used when the user picks none (``"demo"``, a hub id), or None for a
            generator that needs no model. Such a generator (no default, no demo model, no recommended models)
            gets ``model_path=None`` in ``load``; the window shows no model chooser for it and a model given for
            it (``--model``) is refused. See "Generators without a model" in ``docs/plugins.md``.
        recommended_models: models to suggest in the model manager, small and fast first.
        model_sources: the reference forms accepted (:class:`ModelSource` values).
        model_file_patterns: (API 0.2.1) empty (the default): a model is a whole folder or hub repo. Otherwise a
            model is ONE file matching one of these fnmatch patterns (``("*.gguf",)``): the model manager lists a
            hub repo's matching files with their sizes and the user picks one (a GGUF repo's quantisation), a
            reference may name one file of a repo (``org/name/model-Q4_K_M.gguf``) and only that file is
            downloaded, imports take such a file, and each downloaded or imported file is its own installed model.
            ``load`` gets the file's path. Given a whole repo, the host picks the repo's one matching file (a repo
            with several is refused, listing them).
        devices: the devices it can run on, best first, from ``"cuda"``, ``"mps"``, ``"cpu"``. The host picks
            the first one this machine has (unless the user chose one) and passes it to ``load``. The default is
            CPU only, so the host never imports torch to probe for a GPU on behalf of a generator that has no use
            for one; a torch generator declares ``("cuda", "mps", "cpu")``.
        preload_modules: heavy modules ``load``/``generate`` will import (``("torch", "diffusers")``). When the
            generator's page is shown, the window starts its worker process and imports them there, with a visible
            "loading libraries" state, so that their one-time import cost lands then and not when someone first
            presses Generate.
        runs_in_process: False (the default): ``load`` and ``generate`` run in this generator's own worker process,
            so the window never waits for them, a crash or a hard cancel ends only that process, and unloading gives
            the memory back. True: they run on a thread of Studiolo's own process, for light code with no heavy
            imports that trusts itself (no process to start: the first job starts sooner). Either way ``Params``,
            panels and metadata stay in Studiolo's process, and the API is the same.
        input_modes: (API 0.2.1) the ways this generator can start from an existing output of its own ``kind``,
            mode → label (``{"img2img": "Image-to-image", "inpaint": "Inpaint"}``); empty (the default): none. The
            gallery offers "Use as input" with each on every item of that kind, and calls :meth:`params_for_input`;
            :meth:`input_file` tells the host which file a job starts from, so that its outputs record their parent
            (the gallery's "Derived from").
        addon_kinds: (API 0.2.2) the kinds of extra model its jobs use beside the loaded one (ControlNets,
            upscalers…), each an :class:`AddonKind` with its own list in the model manager; a job finds their files
            with :meth:`RunContext.addon_model`. Empty (the default): none.

    Remote generators (API 0.2.5): a generator that runs its jobs on an OpenAI-compatible server declares
    ``model_sources = frozenset({ModelSource.REMOTE})``, lists the servers' models in :meth:`remote_models`, and
    gets ``model_path=None`` and the ``remote://SERVER/MODEL-ID`` reference in ``options.model_ref`` in ``load``
    (see :mod:`desktop.api.remote`). Such a generator usually ``runs_in_process``: it only talks HTTP.

    Processes and threads: :meth:`load`, :meth:`generate`, :meth:`handle_size`, :meth:`unload` and
    :meth:`build_demo_model` run in the generator's worker process (see ``runs_in_process``), one job at a time;
    :meth:`create_panel` on the GUI thread; :meth:`encode_output` on the generator's worker thread in Studiolo's
    process; :meth:`params_from_file` on any thread; :meth:`describe_model` on a worker thread of Studiolo's
    process. Params, outputs and previews cross between the processes, so
    they must be picklable (images, arrays, text and JSON-ready metadata are). Import heavy libraries (torch,
    diffusers, transformers) inside ``load``/``generate``, never at module level: discovery must stay fast, and a broken
    CUDA install must fail one job, not the app's start.
    """

    id: ClassVar[str]
    name: ClassVar[str]
    kind: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = ""
    Params: ClassVar[type]
    default_model: ClassVar[str | None] = None
    recommended_models: ClassVar[Sequence[RecommendedModel]] = ()
    model_sources: ClassVar[frozenset[str]] = ModelSource.ALL
    model_file_patterns: ClassVar[tuple[str, ...]] = ()
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    preload_modules: ClassVar[tuple[str, ...]] = ()
    runs_in_process: ClassVar[bool] = False
    input_modes: ClassVar[Mapping[str, str]] = {}
    addon_kinds: ClassVar[tuple[AddonKind, ...]] = ()
    training_kinds: ClassVar[tuple[TrainingKind, ...]] = ()

    # -- models ------------------------------------------------------------------------------------------

    def build_demo_model(self, dest: Path) -> None:
        """Optional: write a tiny model with random weights into the empty folder ``dest``, offline, in seconds.

        It is what ``--model demo`` resolves to: the app works on a machine with no downloads, and tests run
        through the real loading code. The host builds it in a temporary folder and moves it into place, so a
        failure leaves nothing half-built.
        """
        raise NotImplementedError

    @property
    def has_demo_model(self) -> bool:
        """True when the subclass implements :meth:`build_demo_model`."""
        return type(self).build_demo_model is not Generator.build_demo_model

    def build_addon_demo(self, kind: str, dest: Path) -> None:
        """Optional (API 0.2.2): write a tiny demo model of the add-on kind ``kind`` (one whose
        :attr:`AddonKind.has_demo` is true) into the empty folder ``dest``, offline, in seconds, as
        :meth:`build_demo_model` does for the main model. For a kind whose models are single files
        (``model_file_patterns``) write one matching file into ``dest``. Runs in the worker process."""
        raise NotImplementedError

    def describe_model(self, path: Path) -> dict[str, str]:
        """Optional (API 0.2.1): a few short facts about the installed model at ``path`` for the model manager and
        ``studiolo models list``, label → value, e.g. ``{"architecture": "qwen2", "quantisation": "Q4_K_M",
        "context": "32768 tokens"}``. The default is ``{}`` (nothing shown).

        Called in Studiolo's own process (not the worker process), off the GUI thread, for every installed model
        each time the list is shown: read a header, never load weights, and import nothing heavy (no torch). Never
        raise: return ``{}`` for a model you cannot describe (the host also ignores anything that goes wrong).
        """
        return {}

    def remote_models(self) -> RemoteListing:
        """Optional (API 0.2.5), for a generator whose ``model_sources`` include ``ModelSource.REMOTE``: the models
        the configured servers (:func:`~desktop.api.remote_servers`) offer that it can run, for the model chooser,
        the model manager and ``studiolo models list``. Called in Studiolo's own process off the GUI thread, each
        time such a list is shown; it may ask the servers (keep timeouts short: seconds) and must not raise — a
        server that cannot be asked is one line of :attr:`RemoteListing.problems`. With no server configured,
        contact nothing and return an empty listing (the default)."""
        from desktop.api.remote import RemoteListing

        return RemoteListing()

    def load(self, model_path: Path | None, device: str, options: LoadOptions) -> Any:
        """Load the model at ``model_path`` (already resolved to local files; None when ``default_model`` is None)
        onto ``device`` and return a handle: anything ``generate`` needs. The host caches handles.

        Raise :class:`~desktop.api.ModelFormatError` for files that cannot be used, naming the file.
        """
        raise NotImplementedError

    def handle_size(self, handle: Any) -> int | None:
        """Optional: the bytes of memory ``handle`` holds, for the model cache's budget. None: let the host
        measure it."""
        return None

    def unload(self, handle: Any) -> None:
        """Optional: release what the handle holds beyond dropping references (the host drops references, runs
        the garbage collector and empties the device cache itself)."""

    # -- jobs ----------------------------------------------------------------------------------------------

    def generate(self, handle: Any, params: Any, ctx: RunContext) -> Sequence[Output]:
        """Run one job with validated ``params`` and return its outputs.

        Report through ``ctx``: ``ctx.progress(done, total)``, ``ctx.preview(obj)``; check ``ctx.cancelled`` (or
        call ``ctx.raise_if_cancelled(partial)``) every step. Seed everything from ``ctx.seed``; wrap calls into
        libraries that use global RNG state in ``with ctx.hold_global_rng():``. Raise
        :class:`~desktop.api.StudioloError` subclasses with messages a person can act on.
        """
        raise NotImplementedError

    # -- optional training ---------------------------------------------------------------------------------

    def train(self, model_path: Path | None, device: str, kind: str, params: Any,
              ctx: TrainingContext) -> TrainingResult:
        """Optional (API 0.2.4): fine-tune the model at ``model_path`` on ``device`` — the
        :class:`~desktop.api.TrainingKind` ``kind`` of :attr:`training_kinds`, with its validated ``params`` — and
        return the trained model (a file or folder in ``ctx.work_dir``). Runs in the worker process as a job: load
        your own copy of the base model (the host unloads this generator's models first), report every step with
        ``ctx.step_done``, write checkpoints with ``ctx.save_checkpoint`` when ``ctx.checkpoint_due``, start from
        ``ctx.resume_from`` when it is set, call ``ctx.check_fit`` after a short warm-up, and end at
        ``ctx.raise_if_stopping``. See :class:`~desktop.api.TrainingContext` for the loop and docs/plugins.md
        ("Training") for what the host does with the result."""
        raise NotImplementedError

    # -- optional UI and metadata ----------------------------------------------------------------------------

    def create_panel(self, host: PanelHost) -> QWidget | None:
        """Optional: build this generator's own panel (GUI thread). Return None (the default) for a form built
        from ``Params``. Import Qt inside this method."""
        return None

    def encode_output(self, output: Output, metadata: dict[str, Any]) -> EncodedOutput | None:
        """Optional: encode an output as a file with ``metadata`` (JSON-ready: generator, model, params, seed…)
        embedded, e.g. A1111-style PNG text chunks or FLAC comments. Return None (the default) for the host's
        writer, which records ``metadata`` with every kind: PNG with a ``studiolo`` JSON text chunk for images,
        16-bit WAV with a ``stdo`` JSON chunk and short ``INFO`` tags for audio, UTF-8 ``.txt`` with a JSON
        sidecar for text. Runs on a thread of Studiolo's process, not in the generator's worker process."""
        return None

    def params_for_input(self, params: Any, path: Path, mode: str) -> Any:
        """Needed when :attr:`input_modes` is set (API 0.2.1): ``params`` (a ``Params`` instance: those that made
        the file when this generator made it, else the defaults) changed to start from the file at ``path`` in
        ``mode``, one of :attr:`input_modes`. Runs on the GUI thread: set fields, read no file (the job reads it).
        The host shows the result in the generator's page (through ``params_applied`` for a custom panel)."""
        raise NotImplementedError

    def input_file(self, params: Any) -> Path | None:
        """Optional (API 0.2.1): the file a job with these validated ``params`` starts from (an init image), or None
        (the default): none. The host records the library item that file is (found by its path, or by its bytes
        for a copy) as the parent of the job's outputs, in their metadata (``parent``) and in the library. Called
        in Studiolo's process on the generator's worker thread: cheap, and never raising."""
        return None

    def params_from_file(self, path: Path) -> Any | None:
        """Optional: read the params back from a file this generator (or another tool) made, for "reuse
        parameters". Return None when the file holds none. Must never raise, whatever the file holds."""
        return None

    def detect_watermark(self, path: Path, metadata: Mapping[str, Any] | None,
                         model_path: Path | None = None) -> WatermarkCheck | None:
        """Optional (API 0.2.3): look for the invisible watermark this generator puts into its outputs when
        :attr:`RunContext.watermark` is on, in the file at ``path`` (an output of this generator's :attr:`kind`,
        perhaps re-encoded, cropped or stripped of its metadata). ``metadata``: the Studiolo metadata the file still
        carries (``metadata["output"]["watermark"]``, your output's own record, says how it was marked), or None when
        it carries none. ``model_path``: the
        local files of the model the metadata names, when they are on this machine (a text watermark needs the
        model's tokenizer). Return None (the default) when this generator marks nothing of that kind, or cannot
        tell without what is missing.

        Called by ``studiolo verify`` in its own process, not the GUI's: import what you need (torch) inside. Never
        raise for a bad file: return a check with ``detected=False`` and the reason in ``detail``."""
        return None

    # -- optional exploration --------------------------------------------------------------------------------

    def interpolation_frames(self, start: Any, end: Any, start_seed: int, end_seed: int,
                             frames: int) -> list[tuple[Any, int]] | None:
        """Optional (API 0.2.1): the jobs of an interpolation from ``start`` (params, run with ``start_seed``) to
        ``end`` (with ``end_seed``) in ``frames`` frames (2 or more), as ``(params, seed)`` per frame, first to
        last. Each frame is an ordinary job, which the host runs through its queue and saves with its own metadata:
        the params must say everything that makes the frame (the image generator: a variation seed and strength
        for the seeds, a second prompt and a mix for the prompts), so that a frame's file reproduces it. The first
        frame should be the plain ``start`` job and the last the plain ``end`` job.

        Runs in Studiolo's process (GUI or CLI thread): set fields, load nothing. Raise
        :class:`~desktop.api.ParamError` naming the field for params that cannot be interpolated (different
        sizes). The host refuses different models itself. None (the default): this generator offers no
        interpolation (see :attr:`offers_interpolation`)."""
        return None

    @property
    def offers_interpolation(self) -> bool:
        """True when the subclass implements :meth:`interpolation_frames` (API 0.2.1)."""
        return type(self).interpolation_frames is not Generator.interpolation_frames

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'id', '?')}>"
