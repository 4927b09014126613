from babylm.cli import entry
from babylm.commands import COMMANDS

if __name__ == "__main__":
    entry("babylm", COMMANDS)
