"""The one build command: a plugin module into a WebAssembly component.

    python -m switchyard_sdk.build plugins/route-by-field-py/route_by_field.py -o out.wasm

Runs componentize-py (pinned to 0.25 in ``requirements.txt``; it works
offline once installed) against the contract's WIT with the SDK and the
plugin's folder on the Python path. The module must assign
``Handler = export(MyPlugin)``.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parent.parent
#: The contract, from the repository (sdk-guest/python -> schemas/wit).
DEFAULT_WIT = SDK_DIR.parent.parent / "schemas" / "wit"


def componentize_py():
    """The componentize-py next to this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "componentize-py"
    if beside.exists():
        return str(beside)
    found = shutil.which("componentize-py")
    if found:
        return found
    sys.exit(
        "componentize-py is not installed: "
        f"{sys.executable} -m pip install -r {SDK_DIR / 'requirements.txt'}"
    )


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m switchyard_sdk.build", description=__doc__.split("\n")[0])
    p.add_argument("module", type=Path, help="the plugin's .py file (it assigns Handler = export(...))")
    p.add_argument("-o", "--output", type=Path, required=True, help="the .wasm component to write")
    p.add_argument("--wit", type=Path, default=DEFAULT_WIT, help=f"the contract's WIT folder (default {DEFAULT_WIT})")
    args = p.parse_args(argv)
    module = args.module.resolve()
    if module.suffix != ".py" or not module.is_file():
        sys.exit(f"{args.module}: not a .py file")
    if not (args.wit / "plugin.wit").is_file():
        sys.exit(f"{args.wit}: no plugin.wit there; pass --wit schemas/wit")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        componentize_py(),
        "-d", str(args.wit),
        "-w", "switchyard:plugin/plugin@0.3.0",
        "componentize",
        "-p", str(module.parent),
        "-p", str(SDK_DIR),
        module.stem,
        "-o", str(args.output),
    ]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(cmd, env=env)
    if done.returncode != 0:
        sys.exit(f"componentize-py failed (exit {done.returncode}): {' '.join(cmd)}")
    print(f"{args.output}: {args.output.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
