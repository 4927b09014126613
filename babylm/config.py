"""Command configuration: one dataclass per command, built from defaults < --config file < flags.

A field is declared with :func:`option`: its default, its ``--help`` text and, where they apply,
its allowed values (``choices``), its range (``ge``, ``gt``, ``le``, ``lt``) and the ``--help``
group it opens. The declaration stays a plain dataclass field, so a config is an ordinary
dataclass in Python and in tests.

Underneath, pydantic checks every value: :func:`build` turns a config class into a pydantic model
once (types from the annotations, choices as ``Literal``, ranges as field constraints) and
validates what the user gave. Fire stays the command line: the commands are wrapped with
``fire.decorators.SetParseFn(str)``, so each flag arrives as the text the user typed (Fire's own
guessing turns ``001`` into ``1``, ``a,b`` into a tuple and ``0x1F`` into ``31``), and a field
annotated ``str`` always gets that text. Three things stay here because pydantic has no notion of
them:

- the command line's own spellings, read before pydantic sees the value (:func:`_spelling`):
  ``a,b`` and ``[a, b]`` for a list, ``none`` for an optional option, ``1e6`` for a whole number,
  a YAML list given to a text option;
- the messages: one line that names the option as it is typed (``--lr``), the file and line a
  value came from, and the close name of an unknown option (pydantic's messages name a field of a
  model and span several lines);
- a config's ``validate()`` method, for what no single field's declaration says: relations
  between options (``--resume`` excludes ``--overwrite``), required options with the advice
  their message gives, and checks whose message must not echo the value (a URL with a password).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from babylm.credentials import redact_values
from babylm.errors import UsageError
from babylm.files import write_json

# Where named presets live (``--config small_gpt`` finds ``presets/small_gpt.yaml`` inside the
# package, so a wheel install has them too).
PRESET_DIR = Path(__file__).resolve().parent / "presets"
_RANGE_KEYS = ("ge", "gt", "le", "lt")


def option(default: Any, help: str, choices: tuple | None = None, *, ge: float | None = None,
           gt: float | None = None, le: float | None = None, lt: float | None = None,
           group: str | None = None) -> Any:
    """Declare a config field: default, ``--help`` text, allowed values, range and help group.

    ``ge``/``gt``/``le``/``lt`` bound a number (an optional one may still be ``None``); ``group``
    starts a ``--help`` section that the following fields join until one names another group.
    """
    meta = {"help": help, "choices": choices, "group": group, "ge": ge, "gt": gt, "le": le, "lt": lt}
    kw: dict[str, Any] = {"metadata": meta}
    if isinstance(default, (list, dict, set)):
        kw["default_factory"] = lambda: type(default)(default)
    else:
        kw["default"] = default
    return dataclasses.field(**kw)


# ---- the command line's spellings, before pydantic sees a value

_NONE = {"none", "null", ""}


def _split_list(value: Any) -> Any:
    """A CLI list spelling ('a,b', '[a, b]', 'a', '') as a list; a sequence as a list."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str):
        return value  # pydantic says what is wrong with it
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part.strip().strip("'\"") for part in text.split(",")] if text else []


def _not_a_bool(value: Any, kind: str) -> None:
    """pydantic takes True for 1 in a number field; on the command line it is a mistake."""
    if isinstance(value, bool):
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError(f"{kind}_type", "expected a number")


def _whole_number(value: Any) -> Any:
    """An integer may be spelled '1e6' or '1_000' (word counts); pydantic reads neither."""
    _not_a_bool(value, "int")
    if not isinstance(value, str):
        return value
    text = value.strip().replace("_", "")
    if "e" in text.lower():
        try:
            number = float(text)
        except ValueError:
            return value
        return int(number) if number.is_integer() else value
    return text


def _number(value: Any) -> Any:
    _not_a_bool(value, "float")
    return value.strip() if isinstance(value, str) else value


def _text(value: Any) -> Any:
    """A text option takes a YAML list as its comma spelling and a YAML scalar (yes, 12) or a path as written."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, (bool, int, float, os.PathLike)):
        return str(value)
    return value


def _spelling(annotation: Any):
    """The function that reads the command line's spelling of a value of ``annotation``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = _spelling(next(a for a in args if a is not type(None)))

        def optional(value: Any) -> Any:
            if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
                return None
            return inner(value)
        return optional
    if origin in (list, tuple):
        item = _spelling(args[0] if args else str)

        def listed(value: Any) -> Any:
            value = _split_list(value)
            return [item(v) for v in value] if isinstance(value, list) else value
        return listed
    return {int: _whole_number, float: _number, str: _text}.get(annotation, lambda value: value)


# ---- the schema: a pydantic model made from a config class's fields

def _declared(annotation: Any, choices: tuple | None) -> Any:
    """``annotation`` with its choices as a ``Literal`` (in lists and optionals too)."""
    if not choices:
        return annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _declared(next(a for a in args if a is not type(None)), choices) | None
    if origin in (list, tuple):
        return list[_declared(args[0], choices)]
    return typing.Literal[tuple(choices)]


@functools.cache
def _schema(cls: type):
    """The pydantic validator of the options of config class ``cls`` (built once).

    A TypedDict, not a BaseModel: option names such as ``json`` or ``model_name`` would clash
    with a model's own attributes.
    """
    import pydantic
    import typing_extensions  # pydantic needs its TypedDict on Python 3.11

    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        limits = {k: meta[k] for k in _RANGE_KEYS if meta.get(k) is not None}
        fields[f.name] = typing.Annotated[_declared(hints[f.name], meta.get("choices")), pydantic.Field(**limits),
                                          pydantic.BeforeValidator(_spelling(hints[f.name]))]
    options = typing_extensions.TypedDict(f"{cls.__name__}Options", fields, total=False)
    options.__pydantic_config__ = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)  # nan/inf mean nothing here
    return pydantic.TypeAdapter(options)


def _bound(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def range_text(meta: typing.Mapping[str, Any]) -> str:
    """'at least 1', 'in [0, 1)', 'positive' ... for a field's declared range ('' when none)."""
    ge, gt, le, lt = (meta.get(k) for k in _RANGE_KEYS)
    low = f"[{_bound(ge)}" if ge is not None else f"({_bound(gt)}" if gt is not None else None
    high = f"{_bound(le)}]" if le is not None else f"{_bound(lt)})" if lt is not None else None
    if low and high:
        return f"in {low}, {high}"
    if ge is not None:
        return f"at least {_bound(ge)}"
    if gt is not None:
        return "positive" if gt == 0 else f"greater than {_bound(gt)}"
    if le is not None:
        return f"at most {_bound(le)}"
    if lt is not None:
        return f"less than {_bound(lt)}"
    return ""


_EXPECTED = {"int": "expected an integer", "float": "expected a number", "bool": "expected true or false",
             "string": "expected text", "list": "expected a comma-separated list"}


def _problem(err: dict, meta: typing.Mapping[str, Any], name: str) -> str:
    """One pydantic error as the kit's one-line message about option ``name``."""
    kind, value = err["type"], err.get("input")
    shown = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else repr(value)
    if kind == "literal_error":
        return f"--{name}: {value!r} is not one of {', '.join(map(str, meta['choices']))}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"--{name} must be {range_text(meta)}, got {shown}"
    if kind == "finite_number":
        return f"--{name}: expected a finite number, got {shown}"
    expected = _EXPECTED.get(kind.split("_")[0], err.get("msg", kind).lower())
    return f"--{name}: {expected}, got {shown}"


def _validated(cls: type, values: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """``values`` checked and converted by the schema of ``cls``; a UsageError names the first problem."""
    import pydantic

    try:
        checked = _schema(cls).validate_python(values)
    except pydantic.ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = str(err["loc"][0])
        meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == name)
        message = _problem(err, meta, name)
        raise UsageError(f"{sources[name]}: {message}" if name in sources else message) from None
    return checked


# ---- config files

def _preset_path(path: str | Path) -> Path:
    candidates = [Path(path)]
    if not Path(path).suffix:
        candidates += [PRESET_DIR / f"{path}.yaml", PRESET_DIR / f"{path}.json"]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise UsageError(f"--config: no file {path!r}; give a YAML/JSON path or a preset name: "
                         f"{', '.join(preset_names()) or 'none'}")
    return found


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) if PRESET_DIR.is_dir() else []


def _key_lines(text: str, section: str | None) -> dict[str, int]:
    """Line (1-based) of each top-level key of a YAML mapping, or of the keys of ``section`` in it."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    lines = {str(k.value): (k.start_mark.line + 1, v) for k, v in node.value}
    if section in lines and isinstance(lines[section][1], yaml.MappingNode):
        return {str(k.value): k.start_mark.line + 1 for k, _ in lines[section][1].value}
    return {key: line for key, (line, _) in lines.items()}


def _read(path: str | Path, section: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """A config file's options (for ``section``), and where each came from as ``file:line``."""
    found = _preset_path(path)
    try:
        text = found.read_bytes().decode("utf-8")
        data = yaml.safe_load(text) or {}
    except UnicodeDecodeError as exc:
        raise UsageError(f"--config: {found} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f"{found}:{line + 1}" if line is not None else str(found)
        raise UsageError(f"--config: {where} is not valid YAML/JSON ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config: {found} must hold a mapping of option: value")
    if section and isinstance(data.get(section), dict):
        data = data[section]
    elif section and data and all(isinstance(v, dict) for v in data.values()):
        data = {}  # a preset made of sections for other commands: nothing for this one
    lines = _key_lines(text, section)
    return data, {key: f"{found}:{lines[key]}" if key in lines else str(found) for key in data}


def load_file(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """Read a YAML or JSON config file; a name without suffix is looked up among the presets.

    A file may hold one section per command (``tokenizer:``, ``train:`` ...); when ``section``
    is one of its top-level keys only that part is used, and a file made only of sections that
    has none for ``section`` gives nothing (so one preset can be passed to every command).
    """
    return _read(path, section)[0]


# ---- building a config

def _unknown(key: str, names: list[str], command: str, where: str | None) -> UsageError:
    """An unknown option, with the close name when there is one (``--warmup``: ``--warmup_steps``)."""
    import difflib

    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6) or [n for n in names if n.startswith(key)][:1]
    spelled = f"--{key}" if where is None else repr(key)
    message = f"unknown option {spelled} for {command}"
    if close:
        message += f"; did you mean {'--' if where is None else ''}{close[0]}?"
    elif len(names) <= 12:
        message += f"; allowed: {', '.join(f'--{n}' for n in names)}"
    else:
        message += f"; `{command} --help` lists the options"
    return UsageError(f"{where}: {message}" if where else message)


def build(cls: type, flags: dict[str, Any], command: str | None = None):
    """Build config ``cls`` from ``flags`` (plus ``config=FILE``): defaults < file < flags.

    Every value is checked against its field's declared type, choices and range (pydantic);
    an unknown option or a bad value is a one-line UsageError naming the option, and the file and
    line when it came from a config file. Then the config's own ``validate()`` runs.
    """
    flags = dict(flags)
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_file = flags.pop("config", None)
    if config_file not in (None, "", "None"):
        merged, sources = _read(str(config_file), command)
    for key, value in flags.items():
        merged[key] = value
        sources.pop(key, None)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in merged.items():
        name = str(key).replace("-", "_")
        if name not in names:
            raise _unknown(str(key), names, command or cls.__name__, sources.get(key))
        values[name] = value
        if key in sources:
            sources[name] = sources[key]
    cfg = cls(**_validated(cls, values, sources))
    check = getattr(cfg, "validate", None)
    if check is not None:
        check()
    return cfg


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save(cfg, out_dir: str | Path, name: str) -> Path:
    """Write the resolved config as ``<out_dir>/<name>_config.json`` (atomically; credentials in URLs hidden)."""
    path = Path(out_dir) / f"{name}_config.json"
    write_json(path, {"command": name, "config": redact_values(to_dict(cfg))})
    return path


# ---- --help

# Options every command takes (read by babylm.cli before the command's own).
COMMON_HELP = [
    ("--config", "path or preset name", "YAML/JSON file of option: value (a section named after the command is "
     "used if present); precedence: defaults < config file < flags. With --help: the preset's values are shown"),
    ("--log_level", "debug, info, warning or error; default: info, or env BABYLM_LOG_LEVEL",
     "how much the kit says: info adds progress lines to warnings and errors; debug adds details"),
    ("-q, --quiet", "switch", "warnings and errors only (= --log_level warning); results are still printed"),
]


def _type_name(annotation: Any) -> str:
    name = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return name or str(annotation).replace("typing.", "")


def _wrapped(text: str, indent: int = 6, width: int = 110) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=" " * indent, subsequent_indent=" " * indent) or [""]


def help_text(cls: type, command: str, summary: str, preset: str | None = None, usage: str | None = None) -> str:
    """The ``--help`` page of one command: summary, then its options by group with type, range,
    default (and the value of ``preset`` where it sets one), help and choices."""
    hints = typing.get_type_hints(cls)
    usage = usage or f"python -m {cls.__module__.split('.')[0]}"
    lines = [f"usage: {usage} {command} [--option value ...]", "", summary.strip()]
    values = _read(preset, command)[0] if preset else {}
    if preset:
        lines += ["", f"Values of --config {preset} ({_preset_path(preset)}) are shown as '{Path(str(preset)).stem}: value'."]
    groups: dict[str, list[str]] = {}
    group = "options"
    for f in dataclasses.fields(cls):
        group = f.metadata.get("group") or group
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        kind = _type_name(hints[f.name])
        bound = range_text(f.metadata)
        head = f"  --{f.name} ({kind}{', ' + bound if bound else ''}, default: {default!r}"
        if f.name in values:
            head += f"; {Path(str(preset)).stem}: {values[f.name]!r}"
        entry = [head + ")", *_wrapped(f.metadata.get("help", ""))]
        if f.metadata.get("choices"):
            entry += _wrapped(f"choices: {', '.join(map(str, f.metadata['choices']))}")
        groups.setdefault(group, []).extend(entry)
    for name, entry in groups.items():
        lines += ["", f"{name}:", *entry]
    lines += ["", "every command:"]
    for flag, kind, text in COMMON_HELP:
        lines += [f"  {flag} ({kind})", *_wrapped(text)]
    return "\n".join(lines)
