from babylm.cli import entry
from eval_export.commands import COMMANDS


def main() -> None:
    """The console script (``babylm-eval``), the same as ``python -m eval_export``."""
    entry("eval_export", COMMANDS)


if __name__ == "__main__":
    main()
