# The SDK is not installed as a package: tests import it from the repository.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk-guest" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
