"""Run one driver against several proxies in one interpreter (its imports paid once):
``python _run.py DRIVER.py URL [URL...]`` prints ``{URL: cells}``."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cells

driver, urls = sys.argv[1], sys.argv[2:]
out = {}
for url in urls:
    _cells.URL, _cells.CELLS, _cells.SECONDS, _cells.COLLECT = url, {}, {}, []
    sys.argv = [driver, url]
    runpy.run_path(driver, run_name="__main__")
    out[url] = _cells.COLLECT[-1]
print(json.dumps(out, default=str))
