"""The training loop shared by fine-tuning, the linear probe (SPEC 10) and distillation: SGD
Nesterov 0.9, no weight decay, cosine decay to 0 over ``epochs``; the loss is cross-entropy
unless ``objective(model, x, y)`` gives another."""
from typing import Callable, Dict, Iterable, Optional

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def train(model: torch.nn.Module, data: Iterable, epochs: int, lr: float, device="cpu", desc: str = "train",
          progress: bool = True, objective: Optional[Callable[..., torch.Tensor]] = None) -> None:
    objective = objective or (lambda net, x, y: F.cross_entropy(net(x), y))
    model.to(device).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9, nesterov=True)
    steps = max(1, epochs * len(data))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in tqdm(range(epochs), desc=desc, leave=False, unit="epoch", disable=not progress):
        for x, y in data:
            loss = objective(model, x.to(device), torch.as_tensor(y).to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: Iterable, device="cpu") -> Dict[str, float]:
    """top-1 / top-5 (%) of ``model`` on ``data``."""
    model.to(device).eval()
    hits1 = hits5 = total = 0
    for x, y in data:
        logits = model(x.to(device))
        y = torch.as_tensor(y).to(device)
        top = logits.topk(min(5, logits.size(1)), dim=1).indices
        hits1 += int((top[:, 0] == y).sum())
        hits5 += int((top == y[:, None]).any(1).sum())
        total += y.numel()
    return {"top1": 100.0 * hits1 / max(total, 1), "top5": 100.0 * hits5 / max(total, 1)}
