"""Lightning callbacks of the binding layer."""
import json
import os

from lightning.pytorch.callbacks import Callback


class SplitWriter(Callback):
    """Writes the labelled split (sorted dataset indices + sha256) as ``split.json`` beside the
    checkpoints and args.json of a solo-learn ``Checkpointer``, atomically."""

    def __init__(self, checkpointer):
        self.checkpointer = checkpointer

    def on_train_start(self, trainer, pl_module):
        mask = getattr(pl_module, "labelled_mask", None)
        if mask is None or not trainer.is_global_zero:
            return
        record = {"sha256": pl_module.cfg.semi_supervised.sha256, "labelled": mask.nonzero().flatten().tolist()}
        path = self.checkpointer.path / "split.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
