"""solo-learn binding: the ``relic``, ``semppl``, ``suncet`` and ``paws`` methods and their registration."""
from solo_semppl.methods.paws import PAWS
from solo_semppl.methods.relic import ReLIC
from solo_semppl.methods.semppl import SemPPL
from solo_semppl.methods.suncet import SuNCEt

METHODS = {"relic": ReLIC, "semppl": SemPPL, "suncet": SuNCEt, "paws": PAWS}

__all__ = ["METHODS", "PAWS", "ReLIC", "SemPPL", "SuNCEt"]
