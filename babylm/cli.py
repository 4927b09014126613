"""Command-line plumbing shared by ``python -m babylm`` and ``python -m eval_export`` (and their
console scripts ``babylm`` and ``babylm-eval``).

Each command is a plain function taking its config dataclass. :func:`main` reads the options every
command takes (``--log_level``, ``-q``; :mod:`babylm.logs`), then hands Fire an explicit dict of
thin wrappers: each wrapper receives the raw flag strings (``SetParseFn(str)``), builds and
validates the config (:func:`babylm.config.build`), and calls the function. ``--help`` pages are
generated from the config fields (``--config NAME --help`` shows a preset's values), and every
:class:`KitError` becomes one line on stderr with its exit code (2 for usage, 1 for bad input);
Ctrl-C says how to continue where the command has a way (``train``: ``--resume true``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import fire

from babylm import config as config_lib
from babylm import logs
from babylm.errors import INTERRUPTED, KitError, UsageError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    config: type | None  # the command's config dataclass (None: the command takes no options)
    run: Callable[[Any], Any]
    summary: str  # first line is the one-line description in the command list
    positional: tuple[str, ...] = ()  # option names that may also be given as bare arguments, in order
    # what to do after Ctrl-C, from the command's config (None: nothing to add to "interrupted")
    interrupted: Callable[[Any], str] | None = None


def _wrap(cmd: Command, built: dict[str, Any]) -> Callable[..., None]:
    @fire.decorators.SetParseFn(str)
    def fire_entry(**flags: Any) -> None:
        cfg = config_lib.build(cmd.config, flags, command=cmd.name) if cmd.config else None
        if cfg is None and flags:
            raise UsageError(f"{cmd.name} takes no options, got --{next(iter(flags))}")
        built["cfg"] = cfg
        if getattr(cfg, "progress", True) is False:
            logs.quiet_progress()  # the libraries' bars go with the kit's own
        cmd.run(cfg)

    fire_entry.__name__ = cmd.name
    fire_entry.__doc__ = cmd.summary
    return fire_entry


def _usage(prog: str) -> str:
    """How the user called us: ``python -m babylm`` or a console script's name (``babylm``)."""
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return script if script and not script.endswith(".py") and not script.startswith("-") else f"python -m {prog}"


def _overview(usage: str, commands: dict[str, Command]) -> str:
    width = max(len(n) for n in commands)
    lines = [f"usage: {usage} <command> [--option value ...]", "", "commands:"]
    for name, cmd in commands.items():
        lines.append(f"  {name.ljust(width)}  {cmd.summary.strip().splitlines()[0]}")
    lines += ["", f"`{usage} <command> --help` lists a command's options (`--config PRESET --help`: with its values).",
              "Every command also takes --log_level debug|info|warning|error and -q (warnings and errors only)."]
    return "\n".join(lines)


def _common_options(argv: list[str]) -> tuple[list[str], str | None]:
    """Take ``-q``/``--quiet`` and ``--log_level LEVEL`` out of ``argv`` (anywhere in it)."""
    rest, level = [], None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in ("-q", "--quiet"):
            level = "warning"
        elif token == "--log_level" or token == "--log-level":
            if i + 1 >= len(argv):
                raise UsageError("--log_level needs a value: debug, info, warning or error")
            level, i = argv[i + 1], i + 1
        elif token.startswith(("--log_level=", "--log-level=")):
            level = token.split("=", 1)[1]
        else:
            rest.append(token)
        i += 1
    return rest, level


def _flag_value(args: list[str], name: str) -> str | None:
    for i, token in enumerate(args):
        if token == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
        if token.startswith(f"--{name}="):
            return token.split("=", 1)[1]
    return None


def _unknown_command(word: str, commands: dict[str, Command]) -> UsageError:
    import difflib

    close = difflib.get_close_matches(word.replace("_", "-"), list(commands), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return UsageError(f"unknown command {word!r}; {hint}commands: {', '.join(commands)}")


def main(prog: str, commands: dict[str, Command], argv: list[str] | None = None, usage: str | None = None) -> int:
    """Run one command line (``argv``, default ``sys.argv[1:]``); returns the exit code.

    ``usage``: how the help pages spell the program (default ``python -m <prog>``)."""
    logs.configure(logging.INFO)  # until --log_level is read, so that its own error is seen
    built: dict[str, Any] = {}
    cmd = None
    try:
        argv, level = _common_options(list(sys.argv[1:] if argv is None else argv))
        logs.configure(logs.level_of(level))
        usage = usage or f"python -m {prog}"
        if not argv or argv[0] in {"-h", "--help", "help"}:
            print(_overview(usage, commands))
            return 0
        name = argv[0].replace("_", "-")
        if name not in commands:
            raise _unknown_command(argv[0], commands)
        cmd = commands[name]
        if any(a in {"-h", "--help"} for a in argv[1:]):
            if cmd.config is None:
                print(cmd.summary.strip())
            else:
                print(config_lib.help_text(cmd.config, name, cmd.summary, preset=_flag_value(argv[1:], "config"),
                                           usage=usage))
            return 0
        args = _positionals_to_options(argv[1:], cmd)
        fire.Fire({name: _wrap(cmd, built)}, command=[name, *args], name=prog)
    except KitError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        then = cmd.interrupted(built["cfg"]) if cmd and cmd.interrupted and "cfg" in built else ""
        log.error("%s%s", INTERRUPTED, f"; {then}" if then else "")
        return 130
    except fire.core.FireExit as exc:  # Fire's own usage errors (e.g. a stray positional argument)
        return int(exc.code or 0)
    return 0


def _positionals_to_options(args: list[str], cmd: Command) -> list[str]:
    """Rewrite bare arguments as ``--<positional name> value``; any other bare argument is an error.

    Every other argument must be ``--option value``, ``--option=value`` or a bare ``--flag``.
    """
    out: list[str] = []
    slots = list(cmd.positional)
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-"):
            if not slots:
                raise UsageError(f"{cmd.name}: unexpected argument {token!r}; options are written --name value")
            out += [f"--{slots.pop(0)}", token]
            i += 1
            continue
        out.append(token)
        if "=" not in token and i + 1 < len(args) and not args[i + 1].startswith("--"):
            out.append(args[i + 1])  # the option's value
            i += 1
        i += 1
    return out


def entry(prog: str, commands: dict[str, Command]) -> None:
    # Quieter, deterministic defaults for everything the CLI starts.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        code = main(prog, commands, usage=_usage(prog))
        sys.stdout.flush()
    except BrokenPipeError:  # `... --help | head`: the reader went away, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
