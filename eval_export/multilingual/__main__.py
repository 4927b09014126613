from babylm.cli import entry
from eval_export.multilingual.commands import COMMANDS


def main() -> None:
    """``python -m eval_export.multilingual``."""
    entry("eval_export.multilingual", COMMANDS)


if __name__ == "__main__":
    main()
