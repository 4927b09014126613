"""Config building: Fire's raw strings coerced to declared types, precedence, one-line errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from babylm import config as config_lib
from babylm.config import option
from babylm.errors import UsageError
from tests.conftest import run_cli


@dataclasses.dataclass
class Demo:
    name: str = option("x", "a name")
    count: int = option(3, "a count")
    rate: float = option(0.5, "a rate")
    flag: bool = option(False, "a switch")
    files: list[str] = option([], "some files")
    kind: str = option("bpe", "a choice", choices=("bpe", "wordpiece"))
    limit: int | None = option(None, "optional limit")


# (flag, raw value as Fire hands it over, expected coerced value). Fire's own parser would turn
# "001" into 1, "a,b" into a tuple, "0x1F" into 31 and "{x}" into a set; we keep the user's text.
COERCION_TABLE = [
    ("name", "001", "001"),
    ("name", "a,b", "a,b"),
    ("name", "0x1F", "0x1F"),
    ("name", "{x}", "{x}"),
    ("name", "True", "True"),
    ("name", 12, "12"),
    ("count", "001", 1),
    ("count", "1e6", 1000000),
    ("count", "10_000", 10000),
    ("count", 7, 7),
    ("rate", "3e-4", 3e-4),
    ("rate", "1", 1.0),
    ("flag", "True", True),
    ("flag", "false", False),
    ("flag", "1", True),
    ("flag", "no", False),
    ("files", "a,b", ["a", "b"]),
    ("files", "[a, b]", ["a", "b"]),
    ("files", "a.train", ["a.train"]),
    ("files", ("a", "b"), ["a", "b"]),
    ("files", "", []),
    ("kind", "wordpiece", "wordpiece"),
    ("limit", "None", None),
    ("limit", "5", 5),
]


@pytest.mark.parametrize("key,raw,expected", COERCION_TABLE)
def test_coercion_table(key, raw, expected):
    cfg = config_lib.build(Demo, {key: raw})
    assert getattr(cfg, key) == expected
    assert type(getattr(cfg, key)) is type(expected)


@pytest.mark.parametrize("key,raw,needle", [
    ("count", "abc", "--count: expected an integer"),
    ("count", "1.5", "--count: expected an integer"),
    ("rate", "fast", "--rate: expected a number"),
    ("flag", "maybe", "--flag: expected true or false"),
    ("kind", "sentencepiece", "--kind: 'sentencepiece' is not one of bpe, wordpiece"),
    ("colour", "red", "unknown option --colour"),
])
def test_bad_values_name_the_option(key, raw, needle):
    with pytest.raises(UsageError) as err:
        config_lib.build(Demo, {key: raw})
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_precedence_defaults_file_flags(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("name: from-file\ncount: 9\n")
    cfg = config_lib.build(Demo, {"config": str(preset), "count": "11"})
    assert (cfg.name, cfg.count, cfg.rate) == ("from-file", 11, 0.5)
    # a section named after the command is used on its own
    preset.write_text("demo:\n  rate: 0.25\nother:\n  rate: 0.75\n")
    cfg = config_lib.build(Demo, {"config": str(preset)}, command="demo")
    assert (cfg.name, cfg.count, cfg.rate) == ("x", 3, 0.25)
    # a sectioned preset without a section for this command leaves the defaults
    cfg = config_lib.build(Demo, {"config": str(preset)}, command="third")
    assert cfg == Demo()


def test_missing_and_broken_config_file(tmp_path):
    with pytest.raises(UsageError, match="--config: no file"):
        config_lib.build(Demo, {"config": str(tmp_path / "nope.yaml")})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UsageError, match="bad.yaml"):
        config_lib.build(Demo, {"config": str(bad)})


def test_saved_config_round_trips(tmp_path):
    cfg = config_lib.build(Demo, {"files": "a,b", "count": "4"})
    path = config_lib.save(cfg, tmp_path, "demo")
    saved = json.loads(path.read_text())["config"]
    assert config_lib.build(Demo, saved) == cfg


def test_cli_help_lists_commands_and_options():
    out = run_cli("babylm", "--help")
    assert out.returncode == 0 and "env" in out.stdout
    out = run_cli("babylm", "env", "--help")
    assert out.returncode == 0 and "--json" in out.stdout


@pytest.mark.parametrize("args,needle", [
    (["env", "--jsn"], "unknown option --jsn"),
    (["env", "--json", "maybe"], "--json: expected true or false"),
    (["env", "stray"], "unexpected argument 'stray'"),
    (["nosuchcommand"], "unknown command"),
])
def test_cli_usage_errors_exit_2_with_one_line(args, needle):
    out = run_cli("babylm", *args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
