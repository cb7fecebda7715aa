"""OpenAI requests → a generator's ``Params`` (and the job's seed).

Each endpoint maps the OpenAI fields it knows onto the generator's own fields: chat and completions onto the text
generators' shared fields (``prompt``, ``mode``, ``system_prompt``, ``history``, ``max_new_tokens``, ``temperature``,
``top_p``, ``stop``), images and speech onto the generator's prompt field (:func:`desktop.api.prompt_field`) and,
where the generator has them, ``width``/``height``/``batch_size``. A mapped field the generator lacks is left out
(OpenAI's clients send ``temperature`` to anything). Any other field of the request whose name is one of the
generator's ``Params`` fields passes through (``steps``, ``negative_prompt``, ``top_k``…); a name that is neither
OpenAI's nor the generator's is refused naming it, and every value is checked by the params' own validation
(:func:`desktop.api.from_json`): a :class:`~desktop.api.ParamError` becomes a 400 naming the field as the request
named it.

Files stay the server's business: a client cannot name a file on the server. Path fields are refused (the edits
endpoint fills ``init_image``/``mask_image`` from the uploads), and so is a value that looks like a path (a ``/``,
a ``\\``, a leading ``~`` or ``.``) in a text field that names things rather than describing them (one-line, no
fixed choices: LoRAs, upscalers, adapters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from desktop.api import Generator, ParamError, from_json, prompt_field, schema
from desktop.api.params import ParamField, parse_value
from desktop.serve.openai_shapes import bad_request, from_param_error

CHAT_FIELDS = {"model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens",
               "max_completion_tokens", "stop", "seed", "n"}
COMPLETION_FIELDS = {"model", "prompt", "stream", "stream_options", "temperature", "top_p", "max_tokens", "stop",
                     "seed", "n"}
IMAGE_FIELDS = {"model", "prompt", "n", "size", "response_format", "seed", "stream"}
EDIT_FIELDS = IMAGE_FIELDS | {"image", "mask"}
SPEECH_FIELDS = {"model", "input", "voice", "response_format", "seed"}
IGNORED = {"user", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "echo",
           "best_of", "suffix", "response_format", "parallel_tool_calls", "tool_choice", "service_tier", "store",
           "metadata", "modalities", "reasoning_effort", "prediction", "verbosity", "safety_identifier",
           "prompt_cache_key", "quality", "style", "background", "moderation", "output_compression",
           "output_format", "input_fidelity", "instructions", "speed", "stream_format", "partial_images", "complexity",
           "frame_count", "frame_duration_ms", "markup", "svg"}
"""OpenAI fields Studiolo has no use for; a request carrying them is still answered (a client's defaults)."""
TEXT_NAMES = {"max_new_tokens": "max_tokens", "prompt": "prompt", "history": "messages",
              "system_prompt": "messages"}
SUPPORTED_AUDIO = ("wav", "flac")


# -- shared ------------------------------------------------------------------------------------------------------

def seed_of(value: Any) -> int | None:
    """The request's ``seed``: a whole number, or None/-1 for a random one (the engine checks its range)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():  # a form field
        return int(value.strip())
    raise bad_request(f"Invalid value for 'seed': {value!r} — must be a whole number.", param="seed",
                      code="invalid_value")


def count_of(value: Any, *, most: int, what: str) -> int:
    """The request's ``n`` (1 when absent), at most ``most``."""
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_request(f"Invalid value for 'n': {value!r} — must be a whole number from 1.", param="n",
                          code="invalid_value")
    if value > most:
        raise bad_request(f"'n' must be at most {most} here ({what}); ask again for more.", param="n",
                          code="unsupported_value")
    return value


def _fields(generator: Generator) -> dict[str, ParamField]:
    return {f.name: f for f in schema(generator.Params)}


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith(("~", "."))


def _guard(generator: Generator, extras: Mapping[str, Any]) -> None:
    """Refuse the passed-through fields that would make the server read a file a client names."""
    fields = _fields(generator)
    for name, value in extras.items():
        field = fields.get(name)
        if field is None:
            continue  # refused by name below, with the known names
        if field.kind == "path" or field.item_kind == "path":
            raise bad_request(f"'{name}' names a file on the server, which a client cannot choose. Send an image "
                              "as an upload to /v1/images/edits instead.", param=name, code="server_file_refused")
        if field.spec.multiline or field.spec.choices or "str" not in (field.kind, field.item_kind):
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and _looks_like_path(item):
                raise bad_request(f"'{name}' may not name a file on the server ({item!r}); give the name of a "
                                  "model installed in Studiolo instead.", param=name, code="server_file_refused")


def extras_of(body: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    """The request's fields that are neither the endpoint's own nor ignored: the generator's params to pass on."""
    return {k: v for k, v in body.items() if k not in known and k not in IGNORED}


def build_params(generator: Generator, mapped: Mapping[str, Any], extras: Mapping[str, Any],
                 names: Mapping[str, str] | None = None, *, from_text: bool = False) -> Any:
    """The generator's ``Params`` from the fields the endpoint ``mapped`` (left out where the generator lacks them;
    they win over ``extras``) and the passed-through ``extras`` (form fields' text when ``from_text``). Raises a
    400 :class:`ApiError` naming the field as the request named it (``names``)."""
    _guard(generator, extras)
    fields = _fields(generator)
    try:
        values = dict(extras)
        if from_text:
            from_json(generator.Params, {k: None for k in values if k not in fields}, strict=True)  # unknown names
            values = {k: parse_value(fields[k], v) if isinstance(v, str) else v for k, v in values.items()}
        values.update({k: v for k, v in mapped.items() if k in fields})
        return from_json(generator.Params, values, strict=True)
    except ParamError as exc:
        raise from_param_error(exc, names) from None


def with_values(params: Any, **values: Any) -> Any:
    """``params`` with some fields replaced (those it has)."""
    names = {f.name for f in schema(type(params))}
    return dataclasses.replace(params, **{k: v for k, v in values.items() if k in names})


def _required_prompt(generator: Generator) -> str:
    name = prompt_field(generator.Params)
    if name is None:
        raise bad_request(f"{generator.name} ({generator.id}) takes no prompt, so it cannot answer this request; "
                          "use POST /v1/studiolo/jobs with its params.", param="model", code="no_prompt")
    return name


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"'{param}' must be text.", param=param, code="invalid_type")
    return value


# -- text --------------------------------------------------------------------------------------------------------

def _content(message: Mapping[str, Any], index: int) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_request(f"messages[{index}]: only text content is understood here.",
                                  param=f"messages[{index}].content", code="unsupported_content")
            texts.append(part["text"])
        return "".join(texts)
    raise bad_request(f"messages[{index}].content must be text or a list of text parts.",
                      param=f"messages[{index}].content", code="invalid_type")


def chat_turns(messages: Any) -> tuple[str, list[str], str]:
    """``(system_prompt, history, prompt)`` from OpenAI messages: system (and developer) messages joined, the
    earlier user/assistant turns alternating user first (consecutive messages of one role joined, an empty user
    turn put before a leading assistant one), and the last user message."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of messages.", param="messages",
                          code="invalid_value")
    system: list[str] = []
    turns: list[tuple[str, str]] = []  # (role, text), roles alternating
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise bad_request(f"messages[{index}] must be an object.", param=f"messages[{index}]",
                              code="invalid_type")
        role, text = message.get("role"), _content(message, index)
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant"):
            if turns and turns[-1][0] == role:
                turns[-1] = (role, f"{turns[-1][1]}\n\n{text}")
            else:
                turns.append((role, text))
        else:
            raise bad_request(f"messages[{index}]: the role {role!r} is not understood here (system, developer, "
                              "user and assistant are).", param=f"messages[{index}].role", code="unsupported_role")
    if not turns or turns[-1][0] != "user":
        raise bad_request("The last message (after any system messages) must be the user's.", param="messages",
                          code="invalid_value")
    if turns[0][0] == "assistant":
        turns.insert(0, ("user", ""))
    return "\n\n".join(system), [text for _role, text in turns[:-1]], turns[-1][1]


def _stops(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise bad_request("'stop' must be text or a list of texts.", param="stop", code="invalid_type")


def _sampling(body: Mapping[str, Any]) -> dict[str, Any]:
    mapped: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            mapped[name] = body[name]
    most = body.get("max_completion_tokens", body.get("max_tokens"))
    if most is not None:
        mapped["max_new_tokens"] = most
    stops = _stops(body.get("stop"))
    if stops is not None:
        mapped["stop"] = stops
    return mapped


def _mode_field(generator: Generator, mode: str) -> bool:
    field = _fields(generator).get("mode")
    return field is not None and field.spec.choices is not None and mode in field.spec.choices


def chat_params(generator: Generator, body: Mapping[str, Any]) -> Any:
    """A text generator's params for ``POST /v1/chat/completions`` (mode ``chat``)."""
    if body.get("tools") or body.get("functions"):
        raise bad_request("Tools and functions are not supported by Studiolo's text generators.", param="tools",
                          code="unsupported_parameter")
    count_of(body.get("n"), most=1, what="one answer per request")
    if not _mode_field(generator, "chat"):
        raise bad_request(f"{generator.name} ({generator.id}) does not chat; use /v1/completions.", param="model",
                          code="no_chat")
    system, history, prompt = chat_turns(body.get("messages"))
    fields = _fields(generator)
    if system and "system_prompt" not in fields or history and "history" not in fields:
        raise bad_request(f"{generator.name} ({generator.id}) takes only one message.", param="messages",
                          code="unsupported_value")
    mapped = {_required_prompt(generator): prompt, "mode": "chat", "system_prompt": system, "history": history,
              **_sampling(body)}
    names = {**TEXT_NAMES, "max_new_tokens": "max_completion_tokens" if "max_completion_tokens" in body
             else "max_tokens"}
    return build_params(generator, mapped, extras_of(body, CHAT_FIELDS | {"tools", "functions"}), names)


def completion_params(generator: Generator, body: Mapping[str, Any]) -> Any:
    """A text generator's params for ``POST /v1/completions`` (mode ``continue``)."""
    count_of(body.get("n"), most=1, what="one answer per request")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad_request("'prompt' must be one text (lists of prompts and token arrays are not supported).",
                          param="prompt", code="invalid_type")
    mapped = {_required_prompt(generator): prompt, **_sampling(body)}
    if _mode_field(generator, "continue"):
        mapped["mode"] = "continue"
    return build_params(generator, mapped, extras_of(body, COMPLETION_FIELDS), TEXT_NAMES)


# -- images ------------------------------------------------------------------------------------------------------

def size_of(value: Any) -> dict[str, int]:
    """``width``/``height`` from OpenAI's ``size`` (``"WxH"``; absent or ``"auto"``: the generator's defaults)."""
    if value is None or value == "auto":
        return {}
    if isinstance(value, str):
        width, x, height = value.strip().lower().partition("x")
        if x and width.isdigit() and height.isdigit():
            return {"width": int(width), "height": int(height)}
    raise bad_request(f"Invalid value for 'size': {value!r} — expected WIDTHxHEIGHT, e.g. 512x512.", param="size",
                      code="invalid_value")


def _check_b64(value: Any) -> None:
    if value not in (None, "b64_json"):
        raise bad_request("Only response_format \"b64_json\" is served (Studiolo keeps no public file URLs).",
                          param="response_format", code="unsupported_value")


IMAGE_NAMES = {"width": "size", "height": "size", "batch_size": "n"}


def image_params(generator: Generator, body: Mapping[str, Any]) -> Any:
    """An image generator's params for ``POST /v1/images/generations``: ``n`` images made together."""
    _check_b64(body.get("response_format"))
    mapped = {_required_prompt(generator): _text(body.get("prompt"), "prompt"), **size_of(body.get("size"))}
    if body.get("n") is not None:
        mapped["batch_size"] = count_of(body.get("n"), most=16, what="images made together")
    return build_params(generator, mapped, extras_of(body, IMAGE_FIELDS), IMAGE_NAMES)


def edit_params(generator: Generator, form: Mapping[str, Any], image: Path, mask: Path | None) -> Any:
    """An image generator's params for ``POST /v1/images/edits`` (form fields as text): image-to-image from the
    uploaded ``image`` (saved at that path), or inpainting when a ``mask`` came too — through the generator's own
    ``params_for_input`` (its ``input_modes``)."""
    mode = "inpaint" if mask is not None else "img2img"
    if mode not in generator.input_modes:
        raise bad_request(f"{generator.name} ({generator.id}) cannot start from an image ({mode}).", param="model",
                          code="unsupported_mode")
    _check_b64(form.get("response_format"))
    mapped = {_required_prompt(generator): _text(form.get("prompt", ""), "prompt"), **size_of(form.get("size"))}
    if form.get("n") is not None:
        mapped["batch_size"] = count_of(form.get("n"), most=16, what="images made together")
    params = build_params(generator, mapped, extras_of(form, EDIT_FIELDS), IMAGE_NAMES, from_text=True)
    params = generator.params_for_input(params, image, mode)
    if mask is not None:
        if "mask_image" not in _fields(generator):
            raise bad_request(f"{generator.name} ({generator.id}) takes no mask.", param="mask",
                              code="unsupported_parameter")
        params = with_values(params, mask_image=mask)
    try:
        from desktop.api import validate

        return validate(params, generator.Params)
    except ParamError as exc:
        raise from_param_error(exc, IMAGE_NAMES) from None


# -- audio -------------------------------------------------------------------------------------------------------

def speech_format(body: Mapping[str, Any]) -> str:
    value = body.get("response_format") or "wav"
    if value not in SUPPORTED_AUDIO:
        raise bad_request(f"response_format {value!r} is not served; ask for wav or flac.",
                          param="response_format", code="unsupported_value")
    return value


def speech_params(generator: Generator, body: Mapping[str, Any]) -> Any:
    """An audio generator's params for ``POST /v1/audio/speech``: ``input`` into its prompt field; ``voice`` into
    its ``voice`` field when it has one (ignored otherwise, as OpenAI's voices mean nothing here)."""
    mapped = {_required_prompt(generator): _text(body.get("input"), "input")}
    if body.get("voice") is not None:
        mapped["voice"] = body["voice"]
    return build_params(generator, mapped, extras_of(body, SPEECH_FIELDS), {"voice": "voice"})


# -- Studiolo's own jobs -----------------------------------------------------------------------------------------

def job_params(generator: Generator, params: Any) -> Any:
    """A generator's params from ``POST /v1/studiolo/jobs``'s ``params`` object (every field passed through)."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise bad_request("'params' must be an object of the generator's parameters.", param="params",
                          code="invalid_type")
    return build_params(generator, {}, params)
