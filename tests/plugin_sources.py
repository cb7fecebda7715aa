"""Source code of the small plugins the tests install by entry point: one that works, and one for each way a
plugin can fail."""

from __future__ import annotations

GENERATOR_TEMPLATE = '''
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

@dataclass(frozen=True)
class Params:
    text: str = param("hi", prompt=True)

class {cls}(Generator):
    id = {gid!r}
    name = "Echo"
    kind = "text"
    Params = Params
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.text)]
'''


def echo(gid: str = "test.echo", cls: str = "Echo", register: str = "register(Echo())") -> str:
    return GENERATOR_TEMPLATE.format(gid=gid, cls=cls) + f"""
@hookimpl
def register_generators(register):
    {register.replace("Echo", cls)}
"""


BROKEN = {
    # name: (module source, requires, the error the listing must show)
    "import_error": ("import studiolo_no_such_module_xyz\n", [], "import failed: ModuleNotFoundError"),
    "exits_at_import": ("raise SystemExit(3)\n", [], "import failed: SystemExit: 3"),
    "incompatible": (echo("test.incompatible"), ["studiolo>=9,<10"],
                     "incompatible: it requires studiolo<10,>=9, but this is Studiolo"),
    "bad_id": (echo("Bad Id"), [], "id 'Bad Id' is not a dotted lowercase id"),
    "missing_method": (echo("test.missing").replace("    def generate", "    def not_generate"), [],
                       "does not implement generate"),
    "class_registered": (echo("test.klass", register="register(Echo)"), [], "registered as a class"),
    "not_a_generator": (echo("test.notgen", register="register(object())"), [], "is not a desktop.api.Generator"),
    "raising_hook": (echo("test.raises", register="raise RuntimeError('boom in hook')"), [],
                     "register_generators failed: RuntimeError: boom in hook"),
    # plugins load built-ins first, then by name: this one comes after `markov`, whose generator id it reuses
    "shadows_markov": (echo("text.markov"), [],
                       "generator id 'text.markov' is already registered by plugin 'markov'"),
    "twice": (echo("test.twice", register="register(Echo()); register(Echo())"), [], "registered twice"),
    "bad_schema": (echo("test.schema").replace('param("hi", prompt=True)', 'param(5, prompt=True)'), [],
                   "ParamSchemaError"),
    "unknown_hook": ("from desktop.api import hookimpl\n@hookimpl\ndef register_generator(register):\n    pass\n",
                     [], "implements unknown hook(s) register_generator; Studiolo's hooks are: register_generators"),
    "bad_hook_args": ("from desktop.api import hookimpl\n@hookimpl\ndef register_generators(register, extra):\n"
                      "    pass\n", [], "could not be registered: PluginValidationError"),
    "no_hooks": ("X = 1\n", [], "implements no hooks"),
}


def install_broken(site, names=None) -> None:
    """Install every broken plugin (or those named), each as its own distribution."""
    for name, (source, requires, _) in BROKEN.items():
        if names is None or name in names:
            site.install(f"studiolo-{name.replace('_', '-')}", modules={f"broken_{name}": source},
                         entry_points={name: f"broken_{name}"}, requires=requires)


# A generator that stops after its first step until the test opens the gate: makes "the first update is
# delivered at once" observable without timing.
GATE = '''
import threading
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

GATE = threading.Event()

@dataclass(frozen=True)
class Params:
    steps: int = param(100, min=1)

class Gate(Generator):
    id, name, kind, Params = "test.gate", "Gate", "text", Params
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        ctx.progress(1, params.steps)
        if not GATE.wait(timeout=60):
            raise RuntimeError("the first progress report was not delivered")
        for step in range(2, params.steps + 1):
            ctx.progress(step, params.steps)
            ctx.preview(f"w{step} ")
            ctx.preview(("frame", step))
        return [TextOutput(text="".join(f"w{i} " for i in range(2, params.steps + 1)))]

@hookimpl
def register_generators(register):
    register(Gate())
'''


def install_gate(site):
    site.install("studiolo-test-gate", modules={"studiolo_test_gate": GATE},
                 entry_points={"gate": "studiolo_test_gate"})


# Custom panels: one that raises while being built, one that works (a label and its own generate()).
PANELS = '''
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

@dataclass(frozen=True)
class Params:
    text: str = param("hi", prompt=True)

class BadPanel(Generator):
    id, name, kind, Params = "test.badpanel", "Bad panel", "text", Params
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.text)]
    def create_panel(self, host):
        raise RuntimeError("the panel exploded")

class GoodPanel(BadPanel):
    id, name = "test.goodpanel", "Good panel"
    def create_panel(self, host):
        from PySide6.QtWidgets import QLabel

        class Panel(QLabel):
            def generate(self):
                return host.submit(Params(text="from the custom panel"))

        panel = Panel("custom panel")
        panel.setObjectName("custom_panel")
        return panel

@hookimpl
def register_generators(register):
    register(BadPanel())
    register(GoodPanel())
'''


def install_panels(site):
    site.install("studiolo-test-panels", modules={"studiolo_test_panels": PANELS},
                 entry_points={"panels": "studiolo_test_panels"})


# A third-party panel built from the public panel API only: the host's form for some of its params
# (desktop.api.widgets.ParamsForm) and a JobFollower for its own jobs; it records what the follower tells it.
FORM_PANEL = '''
from dataclasses import dataclass
from desktop.api import Generator, ParamError, TextOutput, hookimpl, param

@dataclass(frozen=True)
class Params:
    text: str = param("hi", prompt=True)
    times: int = param(1, min=1, max=5, help="How many times to say it.")
    shout: bool = param(False, help="Not in the panel's form: reused params carry it.")

class Repeat(Generator):
    id, name, kind, Params = "test.formpanel", "Form panel", "text", Params
    runs_in_process = True
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        ctx.progress(1, 2, "halfway")
        text = " ".join([params.text] * params.times)
        return [TextOutput(text=text.upper() if params.shout else text)]
    def create_panel(self, host):
        from PySide6.QtCore import Slot
        from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget
        from desktop.api.widgets import JobFollower, ParamsForm

        class Panel(QWidget):
            def __init__(self):
                super().__init__()
                self.setObjectName("form_panel")
                self.form = ParamsForm(Params, self, fields=("text", "times"))
                self.result = QLabel(self)
                self.result.setObjectName("result")
                layout = QVBoxLayout(self)
                layout.addWidget(self.form)
                layout.addWidget(self.result)
                self.events = []
                self.jobs = JobFollower(host, self)
                self.jobs.queued.connect(self.on_queued)
                self.jobs.progressed.connect(self.on_progressed)
                self.jobs.finished.connect(self.on_finished)
                self.jobs.running_changed.connect(self.on_running)
                host.params_applied.connect(self.apply_params)

            def generate(self):
                return self.jobs.submit(self.form.params())

            @Slot(object)
            def apply_params(self, params):
                try:
                    self.form.set_params(params)
                except ParamError as exc:
                    host.show_message(str(exc), error=True)

            @Slot(str)
            def on_queued(self, job_id):
                self.events.append(("queued", job_id))

            @Slot(str, int, int, str)
            def on_progressed(self, job_id, done, total, message):
                self.events.append(("progressed", job_id, message))

            @Slot(str, object)
            def on_finished(self, job_id, outputs):
                self.events.append(("finished", job_id, outputs[0].text))
                self.result.setText(outputs[0].text)

            @Slot(bool)
            def on_running(self, running):
                self.events.append(("running", running))

        return Panel()

@hookimpl
def register_generators(register):
    register(Repeat())
'''


def install_form_panel(site):
    site.install("studiolo-test-form-panel", modules={"studiolo_test_form_panel": FORM_PANEL},
                 entry_points={"formpanel": "studiolo_test_form_panel"})
