"""Command-line plumbing shared by ``python -m babylm`` and ``python -m eval_export``.

Each command is a plain function taking its config dataclass. :func:`main` hands Fire an
explicit dict of thin wrappers: each wrapper receives the raw flag strings (``SetParseFn(str)``),
builds and validates the config (:func:`babylm.config.build`), and calls the function.
``--help`` pages are generated from the config fields, and every :class:`KitError` becomes one
line on stderr with its exit code (2 for usage, 1 for bad input).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Callable

import fire

from babylm import config as config_lib
from babylm.errors import KitError, UsageError


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    config: type | None  # the command's config dataclass (None: the command takes no options)
    run: Callable[[Any], Any]
    summary: str  # first line is the one-line description in the command list
    positional: tuple[str, ...] = ()  # option names that may also be given as bare arguments, in order


def _wrap(cmd: Command) -> Callable[..., None]:
    @fire.decorators.SetParseFn(str)
    def fire_entry(**flags: Any) -> None:
        cfg = config_lib.build(cmd.config, flags, command=cmd.name) if cmd.config else None
        if cfg is None and flags:
            raise UsageError(f"{cmd.name} takes no options, got --{next(iter(flags))}")
        cmd.run(cfg)

    fire_entry.__name__ = cmd.name
    fire_entry.__doc__ = cmd.summary
    return fire_entry


def _overview(prog: str, commands: dict[str, Command]) -> str:
    width = max(len(n) for n in commands)
    lines = [f"usage: python -m {prog} <command> [--option value ...]", "", "commands:"]
    for name, cmd in commands.items():
        lines.append(f"  {name.ljust(width)}  {cmd.summary.strip().splitlines()[0]}")
    lines += ["", f"`python -m {prog} <command> --help` lists a command's options."]
    return "\n".join(lines)


def main(prog: str, commands: dict[str, Command], argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_overview(prog, commands))
        return 0
    name = argv[0].replace("_", "-")
    if name not in commands:
        print(f"error: unknown command {argv[0]!r}; commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    cmd = commands[name]
    if any(a in {"-h", "--help"} for a in argv[1:]):
        if cmd.config is None:
            print(cmd.summary.strip())
        else:
            print(config_lib.help_text(cmd.config, name, cmd.summary).replace("python -m babylm", f"python -m {prog}"))
        return 0
    try:
        args = _positionals_to_options(argv[1:], cmd)
        fire.Fire({name: _wrap(cmd)}, command=[name, *args], name=prog)
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
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
        code = main(prog, commands)
        sys.stdout.flush()
    except BrokenPipeError:  # `... --help | head`: the reader went away, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
