"""solo-learn binding: the ``relic`` and ``semppl`` methods and their registration."""
from solo_semppl.methods.relic import ReLIC
from solo_semppl.methods.semppl import SemPPL

METHODS = {"relic": ReLIC, "semppl": SemPPL}

__all__ = ["METHODS", "ReLIC", "SemPPL"]
