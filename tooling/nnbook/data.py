"""Write the lesson's three datasets to CSV files (``make data``).

    python -m nnbook.data data

The files are what ``nnhelpers`` builds in memory, so the shipped CSVs and the
notebooks always agree; ``tests/test_data.py`` checks them byte for byte.
"""

import sys
from pathlib import Path

import pandas as pd

import nnhelpers as nh


def datasets() -> dict[str, pd.DataFrame]:
    """The book's data files, by file name."""
    X, Y = nh.circles_data()
    circles = pd.DataFrame({"X0": X[:, 0], "X1": X[:, 1], "Y": Y})
    XTR, XTS, YTR, YTS = nh.iris_split()
    iris_train = XTR.assign(species=YTR)
    iris_test = XTS.assign(species=YTS)
    regression, _ = nh.regression_data()
    return {"circles.csv": circles, "iris_train.csv": iris_train,
            "iris_test.csv": iris_test, "regression.csv": regression}


def csv_text(frame: pd.DataFrame) -> str:
    """CSV text with full float precision and Unix line endings."""
    index = frame.index.name is not None or not frame.index.equals(pd.RangeIndex(len(frame)))
    return frame.to_csv(index=index, index_label="row" if index else None, lineterminator="\n")


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in datasets().items():
        (out / name).write_text(csv_text(frame), encoding="utf-8")
        print(f"wrote {out / name} ({len(frame)} rows)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data")
