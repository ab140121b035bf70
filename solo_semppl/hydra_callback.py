"""Hydra callback that registers the methods, for configs run by upstream ``main_pretrain.py``.

Add to a config::

    hydra:
      callbacks:
        solo_semppl:
          _target_: solo_semppl.hydra_callback.RegisterMethods

hydra-core 1.3 instantiates callbacks before the task and calls ``on_job_start`` right before
it. Registration happens in ``__init__`` too, because hydra turns an exception raised in
``on_job_start`` into a warning.
"""
from typing import Any

from hydra.experimental.callback import Callback

from solo_semppl import register


class RegisterMethods(Callback):
    def __init__(self, **_: Any) -> None:
        register()

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        register()
