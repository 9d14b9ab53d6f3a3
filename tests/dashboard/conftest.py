import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:      # the app imports `config`, `warehouse`, `dashboard` from the repo root
    sys.path.insert(0, str(ROOT))
