"""Lightning callbacks of the binding layer."""
import json
import os

from lightning.pytorch.callbacks import Callback


class SplitWriter(Callback):
    """Writes the labelled split (``LabelledSplit.to_json``) as ``split.json`` beside the
    checkpoints and args.json of a solo-learn ``Checkpointer``, atomically, for any method."""

    def __init__(self, checkpointer, split):
        self.checkpointer, self.split = checkpointer, split

    def on_train_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        record = {"sha256": self.split.sha256(), **self.split.to_json()}
        path = self.checkpointer.path / "split.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
