"""The floor every representation must clear: logistic regression on raw pixels of a run's
labelled images (grey, resized to ``size`` x ``size``; 8 x 8 gives back the digits' own 64
pixels), evaluated on the validation set. DATA.md: about 62 / 77 / 87 / 91 % on digits with
1 / 2 / 5 / 10 labels per class."""
from typing import Dict

import numpy as np
import torch
from torchvision import transforms

from solo_semppl.eval import data


def raw_pixel_floor(run, size: int = 8) -> Dict:
    from sklearn.linear_model import LogisticRegression

    pixels = transforms.Compose([transforms.Grayscale(), transforms.Resize((size, size)), transforms.ToTensor()])
    task = data.labelled_task(run, pixels)
    labelled = task.labelled
    x, y = data.features(torch.nn.Flatten(), data.loader(task.train, labelled, 256, False))
    val_x, val_y = data.features(torch.nn.Flatten(), data.loader(task.val, None, 256, False))
    model = LogisticRegression(max_iter=5000).fit(x.numpy(), y.numpy())
    top1 = 100.0 * float(np.mean(model.predict(val_x.numpy()) == val_y.numpy()))
    return {"size": size, "num_labelled": int(len(labelled)), "top1": top1}
