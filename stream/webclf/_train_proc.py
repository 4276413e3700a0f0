"""Child process entry point: train a fastText model from a prepared file and save it.

Run as ``python -m codekiln.stream.webclf._train_proc TRAIN_FILE MODEL_OUT PARAMS_JSON``.
Training runs in a fresh interpreter because fastText 0.9.3 training is corrupted by unrelated
state of the calling process: after ``import esprima`` (which codekiln's JavaScript filter
loaded before it moved to tree-sitter) every training in that process aborted with "Encountered
NaN" here (10 of 10), while a fresh process trained the same file 40 of 40 times. Loading and
predicting are unaffected.
"""

from __future__ import annotations

import json
import sys

#: Another seed usually trains when fastText reports NaN on a small dataset.
NAN_RETRIES = 3


def main(argv: list[str]) -> int:
    import fasttext

    train_file, model_out, params_json = argv
    params = json.loads(params_json)
    last = ""
    for attempt in range(NAN_RETRIES):
        try:
            model = fasttext.train_supervised(
                input=train_file,
                dim=params["dim"],
                epoch=params["epoch"],
                lr=params["lr"],
                wordNgrams=params["word_ngrams"],
                minCount=params["min_count"],
                bucket=params["bucket"],
                thread=params["threads"],
                seed=params["seed"] + attempt,
                loss="softmax",
                verbose=0,
            )
        except RuntimeError as exc:
            last = str(exc)
            continue
        model.save_model(model_out)
        return 0
    print(f"fastText training failed {NAN_RETRIES} times: {last}", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
