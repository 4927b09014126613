from babylm.cli import entry
from babylm.commands import COMMANDS


def main() -> None:
    """The console script (``babylm``), the same as ``python -m babylm``."""
    entry("babylm", COMMANDS)


if __name__ == "__main__":
    main()
