"""Regenerates savvi_values.json: Lindon & Malek's Bayes factor as the reference package ``savvi`` computes it.

savvi pulls cvxpy, matplotlib and numpy<2 (about 500 MB), too much for the test suite's environment, so its
answers on fixed inputs are recorded here and tests/engine/test_stats.py checks canaryflow's statistics against
them. Run it in a separate virtualenv: ``pip install savvi matplotlib && python make_savvi_values.py``.
"""

import json
from pathlib import Path

import numpy as np
from savvi.multinomial import Multinomial

#: (canary events, primary events, theta0, k)
CASES = [
    (0, 5, 0.2, 10.0),
    (3, 10, 0.1, 10.0),
    (7, 1, 0.5, 10.0),
    (20, 40, 0.1, 10.0),
    (100, 900, 0.1, 10.0),
    (12, 88, 0.05, 10.0),
    (5, 500, 0.05, 40.0),
    (250, 2250, 0.1, 100.0),
    (40, 60, 0.3, 2.0),
]


def main() -> None:
    rows = []
    for c, b, theta0, k in CASES:
        test = Multinomial(0.05, np.array([theta0, 1 - theta0]), k=k)
        test.update(np.array([c, b]))
        rows.append({"canary": c, "primary": b, "theta0": theta0, "k": k, "log_bf": float(np.log(test.odds))})
    out = Path(__file__).with_name("savvi_values.json")
    out.write_text(json.dumps({"savvi": "0.3.1", "cases": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
