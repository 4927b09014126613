"""Command configuration: one dataclass per command, built from defaults < --config file < flags.

Fire hands every flag over as the raw string the user typed (the commands are wrapped with
``fire.decorators.SetParseFn(str)``), because Fire's own guessing turns ``001`` into ``1``,
``a,b`` into a tuple and ``0x1F`` into ``31``. This module coerces each value to the type
declared on the dataclass field instead, so a field annotated ``str`` always gets the text the
user wrote. Values coming from a YAML/JSON config file or from Python are coerced the same way.

A field is declared with :func:`option`, whose ``help`` text feeds ``--help`` and whose
``choices`` are checked here, so an unknown value fails with a one-line message that lists the
allowed ones.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from babylm.errors import UsageError

# Where named presets live (``--config small_gpt`` finds ``presets/small_gpt.yaml`` inside the
# package, so a wheel install has them too).
PRESET_DIR = Path(__file__).resolve().parent / "presets"


def option(default: Any, help: str, choices: tuple | None = None) -> Any:
    """Declare a config field with its ``--help`` text and, optionally, its allowed values."""
    kw: dict[str, Any] = {"metadata": {"help": help, "choices": choices}}
    if isinstance(default, (list, dict, set)):
        kw["default_factory"] = lambda: type(default)(default)
    else:
        kw["default"] = default
    return dataclasses.field(**kw)


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _split_list(value: Any) -> list:
    """Turn a CLI list spelling ('a,b', '[a, b]', 'a') or a sequence into a Python list."""
    if isinstance(value, (list, tuple)):
        return list(value)
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        return []
    return [part.strip().strip("'\"") for part in text.split(",")]


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` to ``annotation`` or raise a one-line UsageError naming the option."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # Optional[X] / X | None
        if value is None or (isinstance(value, str) and value.strip().lower() in {"none", "null", ""}):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return coerce(name, value, inner[0])
    if origin in (list, tuple):
        item_type = args[0] if args else str
        return [coerce(name, v, item_type) for v in _split_list(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise UsageError(f"--{name}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise UsageError(f"--{name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        text = str(value).strip().replace("_", "")
        try:
            # Accept 1e6 / 10M-free scientific spellings only when they are whole numbers.
            number = float(text) if any(c in text.lower() for c in ".e") else int(text, 10)
        except ValueError:
            raise UsageError(f"--{name}: expected an integer, got {value!r}") from None
        if float(number) != int(number):
            raise UsageError(f"--{name}: expected an integer, got {value!r}")
        return int(number)
    if annotation is float:
        if isinstance(value, bool):
            raise UsageError(f"--{name}: expected a number, got {value!r}")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise UsageError(f"--{name}: expected a number, got {value!r}") from None
        if not math.isfinite(number):  # no option of the kit means anything at nan or inf
            raise UsageError(f"--{name}: expected a finite number, got {value!r}")
        return number
    if annotation is str:
        if isinstance(value, (list, tuple)):  # a list given in a YAML file for a str field
            return ",".join(str(v) for v in value)
        return str(value)
    if annotation is dict or origin is dict:
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except (TypeError, json.JSONDecodeError):
            raise UsageError(f"--{name}: expected a JSON object, got {value!r}") from None
        if not isinstance(parsed, dict):
            raise UsageError(f"--{name}: expected a JSON object, got {value!r}")
        return parsed
    return value


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def load_file(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """Read a YAML or JSON config file; a name without suffix is looked up among the presets.

    A file may hold one section per command (``tokenizer:``, ``train:`` ...); when ``section``
    is one of its top-level keys only that part is used, and a file made only of sections that
    has none for ``section`` gives nothing (so one preset can be passed to every command).
    """
    candidates = [Path(path)]
    if not Path(path).suffix:
        candidates += [PRESET_DIR / f"{path}.yaml", PRESET_DIR / f"{path}.json"]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        presets = sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) if PRESET_DIR.is_dir() else []
        raise UsageError(f"--config: no file {path!r}; give a YAML/JSON path or a preset name: {', '.join(presets) or 'none'}")
    try:
        data = yaml.safe_load(found.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise UsageError(f"--config: {found} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f"{found}:{line + 1}" if line is not None else str(found)
        raise UsageError(f"--config: {where} is not valid YAML/JSON ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config: {found} must hold a mapping of option: value")
    if section and isinstance(data.get(section), dict):
        return data[section]
    if section and data and all(isinstance(v, dict) for v in data.values()):
        return {}  # a preset made of sections for other commands: nothing for this one
    return data


def build(cls: type, flags: dict[str, Any], command: str | None = None):
    """Build config ``cls`` from ``flags`` (plus ``config=FILE``): defaults < file < flags.

    Every value is coerced to the field's declared type and checked against its choices;
    unknown options raise a UsageError that lists the known ones.
    """
    flags = dict(flags)
    merged: dict[str, Any] = {}
    config_file = flags.pop("config", None)
    if config_file not in (None, "", "None"):
        merged.update(load_file(str(config_file), section=command))
    merged.update(flags)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types_ = _field_types(cls)
    values = {}
    for key, value in merged.items():
        name = key.replace("-", "_")
        if name not in fields:
            allowed = ", ".join(f"--{n}" for n in fields)
            raise UsageError(f"unknown option --{key} for {command or cls.__name__}; allowed: {allowed}")
        coerced = coerce(name, value, types_[name])
        choices = fields[name].metadata.get("choices")
        if choices:
            items = coerced if isinstance(coerced, list) else [coerced]
            for item in items:
                if item not in choices:
                    raise UsageError(f"--{name}: {item!r} is not one of {', '.join(map(str, choices))}")
        values[name] = coerced
    cfg = cls(**values)
    check = getattr(cfg, "validate", None)
    if check is not None:
        check()
    return cfg


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save(cfg, out_dir: str | Path, name: str) -> Path:
    """Write the resolved config as ``<out_dir>/<name>_config.json`` (atomically)."""
    from babylm.files import write_json

    path = Path(out_dir) / f"{name}_config.json"
    write_json(path, {"command": name, "config": to_dict(cfg)})
    return path


def help_text(cls: type, command: str, summary: str) -> str:
    """The ``--help`` page of one command: summary, then every option with type, default, help."""
    lines = [f"python -m {cls.__module__.split('.')[0]} {command} [--option value ...]", "", summary.strip(), "", "Options:"]
    types_ = _field_types(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        tname = getattr(types_[f.name], "__name__", str(types_[f.name])).replace("typing.", "")
        lines.append(f"  --{f.name} ({tname}, default: {default!r})")
        lines.append(f"      {f.metadata.get('help', '')}")
        if f.metadata.get("choices"):
            lines.append(f"      choices: {', '.join(map(str, f.metadata['choices']))}")
    lines.append("  --config (path or preset name)")
    lines.append("      YAML/JSON file of option: value (a section named after the command is used if present);")
    lines.append("      precedence: defaults < config file < flags.")
    return "\n".join(lines)
