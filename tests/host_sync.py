"""``no_host_sync()``: a context in which every host sync and every data-dependent shape raises
``HostSync``. These are what cut an XLA step's graph (a device-to-host transfer) or make it
recompile (an output shape that depends on the data); a CPU test under this context shows that
a step has neither, without torch-xla."""
import contextlib

import torch

SYNCING_METHODS = {
    "item": "host sync", "tolist": "host sync", "cpu": "device-to-host copy", "numpy": "device-to-host copy",
    "__bool__": "Python branch on a tensor value", "__int__": "host sync", "__float__": "host sync",
    "__index__": "host sync", "nonzero": "data-dependent shape", "masked_select": "data-dependent shape",
    "unique": "data-dependent shape",
}
DATA_SHAPED_FUNCTIONS = ("nonzero", "masked_select", "unique", "argwhere")


class HostSync(RuntimeError):
    """A host sync or data-dependent shape inside a ``no_host_sync()`` block."""


def _raiser(name, why):
    def raise_(*args, **kwargs):
        raise HostSync(f"{name}: {why}")
    return raise_


def _has_bool_mask(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool and p.dim() > 0 for p in parts)


@contextlib.contextmanager
def no_host_sync():
    """Patches torch.Tensor / torch for the duration of the block (restored on exit)."""
    saved = []

    def patch(owner, name, replacement):
        saved.append((owner, name, owner.__dict__.get(name)))  # None: inherited, delete on exit
        setattr(owner, name, replacement)

    for name, why in SYNCING_METHODS.items():
        patch(torch.Tensor, name, _raiser(f"Tensor.{name}", why))
    for name in DATA_SHAPED_FUNCTIONS:
        patch(torch, name, _raiser(f"torch.{name}", "data-dependent shape"))
    getitem, setitem, where = torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.where

    def checked_getitem(self, index):
        if _has_bool_mask(index):
            raise HostSync("boolean-mask indexing: data-dependent shape")
        return getitem(self, index)

    def checked_setitem(self, index, value):
        if _has_bool_mask(index):
            raise HostSync("boolean-mask assignment: data-dependent shape")
        return setitem(self, index, value)

    def checked_where(*args, **kwargs):
        if len(args) + len(kwargs) == 1:
            raise HostSync("torch.where(condition): data-dependent shape")
        return where(*args, **kwargs)

    patch(torch.Tensor, "__getitem__", checked_getitem)
    patch(torch.Tensor, "__setitem__", checked_setitem)
    patch(torch, "where", checked_where)
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
