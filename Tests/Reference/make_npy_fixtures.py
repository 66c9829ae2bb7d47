"""numpy's own .npy bytes for NPYTests: float32 arrays of shapes (3, 2, 2) and (1, 4, 4),
values 0.5 * arange - 1 (exact in float32).

    /work/venv/bin/python Tests/Reference/make_npy_fixtures.py
"""
from pathlib import Path

import numpy as np

out = Path(__file__).resolve().parent.parent / "PipelineTests" / "Fixtures"
out.mkdir(parents=True, exist_ok=True)
for shape in [(3, 2, 2), (1, 4, 4)]:
    a = (np.arange(int(np.prod(shape)), dtype=np.float32) * 0.5 - 1).reshape(shape)
    np.save(out / ("npy_%s.npy" % "x".join(map(str, shape))), a)
