"""solo-semppl: SemPPL and ReLICv2 for solo-learn.

The core (``solo_semppl.losses``, ``solo_semppl.semantic``, ``solo_semppl.data``) is plain
PyTorch; ``solo_semppl.methods`` needs solo-learn. ``register()`` adds the methods to
``solo.methods.METHODS`` so that solo-learn's own scripts accept ``method: semppl``.
"""
__version__ = "0.1.0"


def register() -> None:
    """Adds our methods (``relic``, ``semppl``, ``suncet``, ``paws``) to ``solo.methods.METHODS`` and the ``tiny_cnn`` backbone
    to solo-learn's backbone table, in place (idempotent).

    In place, because solo-learn's scripts hold a reference to that dict: rebinding the name
    would not reach them.
    """
    import solo.methods
    from solo.methods.base import BaseMethod

    from solo_semppl.backbones import BACKBONES
    from solo_semppl.methods import METHODS

    solo.methods.METHODS.update(METHODS)
    BaseMethod._BACKBONES.update(BACKBONES)
