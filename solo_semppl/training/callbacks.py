"""Lightning callbacks of the binding layer."""
from typing import Optional, Sequence

from lightning.pytorch.callbacks import Callback

from solo_semppl.data.folder_check import save_lines
from solo_semppl.data.split import LabelledSplit, save_split


class RunFilesWriter(Callback):
    """Writes ``split.json`` (the labelled split, when there is one) and ``bad_images.txt`` (the
    files the pre-flight image check left out or did not load, when there are any) beside the
    checkpoints and args.json of a solo-learn ``Checkpointer``, atomically, for any method."""

    def __init__(self, checkpointer, split: Optional[LabelledSplit], bad_images: Sequence[str] = ()):
        self.checkpointer, self.split, self.bad_images = checkpointer, split, list(bad_images)

    def on_train_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        if self.split is not None:
            save_split(self.split, self.checkpointer.path / "split.json")
        if self.bad_images:
            save_lines(self.bad_images, self.checkpointer.path / "bad_images.txt")
