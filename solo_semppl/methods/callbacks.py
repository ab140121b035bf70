"""Lightning callbacks of the binding layer."""
from lightning.pytorch.callbacks import Callback

from solo_semppl.data.split import save_split


class SplitWriter(Callback):
    """Writes the labelled split as ``split.json`` beside the checkpoints and args.json of a
    solo-learn ``Checkpointer``, atomically, for any method."""

    def __init__(self, checkpointer, split):
        self.checkpointer, self.split = checkpointer, split

    def on_train_start(self, trainer, pl_module):
        if trainer.is_global_zero:
            save_split(self.split, self.checkpointer.path / "split.json")
