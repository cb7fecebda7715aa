"""Turn a failed pip run's log into a few lines a person can act on.

pip explains a failure in dozens of lines (a resolver conflict, a build traceback, retries against an index that
cannot be reached). :func:`explain_failure` finds the lines that matter and says them in Studiolo's words:
which installed package stands in the way and at which version, that a package does not exist, that the machine
is offline, that a wheel was made for another computer, what a failed build printed last.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from desktop.install.specs import InstallRequest

NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
DEPENDS = re.compile(rf"^\s*(?P<who>{NAME}) (?P<version>\S+) depends on (?P<req>.+?)\s*$")
USER_REQUESTED = re.compile(r"^\s*The user requested (?P<constraint>\(constraint\) )?(?P<req>.+?)\s*$")
NOT_FOUND = re.compile(r"Could not find a version that satisfies the requirement (?P<req>.+?)"
                       r"(?: \(from (?P<parent>[^()]*)\))? \(from versions: (?P<versions>[^)]*)\)")
NO_DISTRIBUTION = re.compile(r"No matching distribution found for (?P<req>\S+)")
UNSUPPORTED_WHEEL = re.compile(r"(?P<file>\S+\.whl) is not a supported wheel on this platform")
BUILD_STEP = re.compile(r"×\s+(?P<step>.+?) did not run successfully")
OFFLINE_SIGNS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                 "Name or service not known", "nodename nor servname", "Network is unreachable", "ConnectTimeout",
                 "Max retries exceeded", "ProxyError", "Could not fetch URL", "connection broken by",
                 "Connection refused", "SSLError")
KEEP_AS_IS = "Studiolo does not change packages that are already installed, so that the app keeps working"
OFFLINE = "offline: could not reach the package index; install from a file instead"


@dataclass
class Explanation:
    reasons: list[str]
    hint: str | None = None


def explain_failure(lines: Sequence[str], *, request: InstallRequest, installed: Mapping[str, str],
                    used_index: bool = True) -> Explanation:
    """Why pip failed, in a few short sentences (never the whole log)."""
    text = "\n".join(lines)
    for explain in (_unsupported_wheel, _build_failure, _conflict):
        found = explain(lines, text, request, installed)
        if found is not None:
            return found
    found = _not_found(text, request, used_index)
    if found is not None:
        return found
    if "Permission denied" in text or "[Errno 13]" in text:
        return Explanation(["pip has no permission to change the Python environment Studiolo runs from."],
                           "Install as the user who installed Studiolo.")
    if "No space left on device" in text or "[Errno 28]" in text:
        return Explanation(["The disk is full: pip could not write the plugin's files."],
                           "Free some disk space and try again.")
    if "no such option: --dry-run" in text or "no such option: --report" in text:
        return Explanation(["The pip in Studiolo's Python environment is too old to check an install first (it "
                            "needs pip 22.2 or newer)."], "Update pip there (python -m pip install -U pip).")
    if "No module named pip" in text:
        return Explanation(["pip is not installed in the Python environment Studiolo runs from."],
                           "Install pip there (python -m ensurepip) and try again.")
    if "is not installable" in text or "does not appear to be a Python project" in text:
        return Explanation([f"{request.describe()} is not an installable Python project."],
                           "Choose the plugin's folder (the one with pyproject.toml), a wheel or an archive.")
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    tail = errors[-3:] or [line.strip() for line in lines if line.strip()][-3:]
    return Explanation(["pip could not install it: " + " ".join(tail) if tail else "pip failed without a message."])


def is_offline(text: str) -> bool:
    return any(sign in text for sign in OFFLINE_SIGNS)


def _unsupported_wheel(lines: Sequence[str], text: str, request: InstallRequest,
                       installed: Mapping[str, str]) -> Explanation | None:
    match = UNSUPPORTED_WHEEL.search(text)
    if match is None:
        return None
    name = match.group("file").rsplit("/", 1)[-1]
    made_for = ""
    try:
        tags = parse_wheel_filename(name)[3]
        platforms = sorted({t.platform for t in tags})
        pythons = sorted({t.interpreter for t in tags})
        made_for = f" (it is made for {', '.join(pythons)} on {', '.join(platforms)})"
    except InvalidWheelFilename:
        pass
    return Explanation([f"{name} is a wheel for another platform or Python{made_for}; it cannot be installed on "
                        "this computer."],
                       "Get the wheel made for this computer and Python version, or install the plugin's source.")


def _build_failure(lines: Sequence[str], text: str, request: InstallRequest,
                   installed: Mapping[str, str]) -> Explanation | None:
    step = BUILD_STEP.search(text)
    if step is None:
        return None
    last = _last_output_line(lines)
    what = request.name or request.describe()
    where = "preparing its metadata" if "metadata" in step.group("step") or "egg_info" in step.group("step") \
        else "building it"
    reason = f"{what[0].upper()}{what[1:]} could not be built (pip failed while {where})"
    reason += f": {last.rstrip('.')}." if last else "."
    hint = "This is a problem of the plugin's package, or of a build tool it needs."
    if "ModuleNotFoundError" in (last or "") or "BackendUnavailable" in text:
        hint = ("The build tool the plugin needs is not installed here; install from a wheel, or without "
                "--no-build-isolation while online.")
    return Explanation([reason], hint)


def _last_output_line(lines: Sequence[str]) -> str | None:
    """The last line a failed build printed (inside pip's ``[N lines of output] … [end of output]`` box)."""
    for i, line in enumerate(lines):
        if line.strip() == "[end of output]":
            for prev in reversed(lines[:i]):
                if prev.strip() and not re.match(r"^\s*\^+\s*$", prev):
                    return prev.strip()
    return None


def _conflict(lines: Sequence[str], text: str, request: InstallRequest,
              installed: Mapping[str, str]) -> Explanation | None:
    if "The conflict is caused by:" not in text and "ResolutionImpossible" not in text:
        return None
    block: list[str] = []
    for i, line in enumerate(lines):
        if line.strip() == "The conflict is caused by:":
            for item in lines[i + 1:]:
                if not item.strip():
                    break
                block.append(item.strip())
    reasons: list[str] = []
    for item in block:
        reason = _conflict_reason(item, installed)
        if reason and reason not in reasons:
            reasons.append(reason)
    if not reasons:
        reasons = block[:6] or [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")][:2]
    studiolo = any("Studiolo" in r for r in reasons)
    hint = ("Install a version of the plugin made for this Studiolo, or update Studiolo." if studiolo
            else f"{KEEP_AS_IS}. Look for a version of the plugin that works with these versions.")
    return Explanation(reasons, hint)


def _conflict_reason(item: str, installed: Mapping[str, str]) -> str | None:
    depends = DEPENDS.match(item)
    if depends is not None:
        name, spec = _split_requirement(depends.group("req"))
        key = canonicalize_name(name)
        who = f"{depends.group('who')} {depends.group('version')}"
        if key == "studiolo":
            current = installed.get("studiolo", "?")
            return f"{who} is made for Studiolo {spec or '(any)'}, but this is Studiolo {current}."
        if key in installed:
            return f"{who} needs {name}{spec}, but {name} {installed[key]} is installed."
        return f"{who} needs {name}{spec}, which conflicts with another requirement."
    requested = USER_REQUESTED.match(item)
    if requested is not None and not requested.group("constraint"):
        name, spec = _split_requirement(requested.group("req"))
        key = canonicalize_name(name)
        if key in installed:
            return f"You asked for {name}{spec}, but {name} {installed[key]} is installed."
    return None


def _split_requirement(req: str) -> tuple[str, str]:
    """``"studiolo<10 and >=9"`` → ``("studiolo", ">=9,<10")``."""
    match = re.match(rf"\s*({NAME})(\[[^\]]*\])?\s*(.*)$", req)
    if match is None:
        return req, ""
    rest = match.group(3).split(";", 1)[0]
    parts = [p.strip() for p in re.split(r"\s+and\s+|,", rest) if p.strip()]
    parts.sort(key=lambda p: 0 if p.startswith((">", "~", "=")) else 1)
    return match.group(1), ",".join(parts)


def _not_found(text: str, request: InstallRequest, used_index: bool) -> Explanation | None:
    missing = NOT_FOUND.search(text)
    if missing is None and NO_DISTRIBUTION.search(text) is None:
        return None
    if used_index and is_offline(text):
        return Explanation([OFFLINE], "Connect to the internet, or download the plugin's wheel and install the file.")
    req = missing.group("req") if missing else NO_DISTRIBUTION.search(text).group("req")  # type: ignore[union-attr]
    name, spec = _split_requirement(req)
    versions = [v.strip() for v in (missing.group("versions") if missing else "none").split(",")]
    versions = [v for v in versions if v and v != "none"]
    parent = missing.group("parent") if missing else None
    where = "on the package index" if used_index else "in the folders searched"
    if versions:
        shown = ", ".join(versions[-8:])
        reason = f"No version of {name} matches {spec or 'the request'}; available: {shown}."
    else:
        reason = f"No package named {name} was found {where}."
    if parent:
        reason = f"{parent.split('==')[0]} needs {name}{spec}: " + reason[0].lower() + reason[1:]
    hint = "Check the name (`studiolo plugins install` takes the package's name, a wheel or a folder)."
    if not used_index:
        hint = "Check the name, or add the folder that holds its wheel with --find-links."
    return Explanation([reason], hint)
