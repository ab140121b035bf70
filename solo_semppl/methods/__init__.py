"""solo-learn binding: the ``relic``, ``semppl`` and ``suncet`` methods and their registration."""
from solo_semppl.methods.relic import ReLIC
from solo_semppl.methods.semppl import SemPPL
from solo_semppl.methods.suncet import SuNCEt

METHODS = {"relic": ReLIC, "semppl": SemPPL, "suncet": SuNCEt}

__all__ = ["METHODS", "ReLIC", "SemPPL", "SuNCEt"]
