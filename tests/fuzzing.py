"""The command line shared by the long file-fuzzing scripts (tests/data_fuzz.py, tests/deploy_fuzz.py)."""
import argparse
import sys
import tempfile
import time


def main(run, doc: str, wrong: str) -> None:
    """``--cases N --seed S``: ``run(cases, seed, folder)`` -> (counts, failures) in a temporary folder; print
    the count of failures (exceptions other than the reader's own, or ``wrong`` results) and exit 1 if any."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    with tempfile.TemporaryDirectory() as folder:
        _, failures = run(args.cases, args.seed, folder)
    print(f"{args.cases} files in {time.time() - start:.0f} s; other exceptions or {wrong}: {len(failures)}")
    sys.exit(1 if failures else 0)
