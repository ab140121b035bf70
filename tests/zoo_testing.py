"""Test helpers for the zoo tests: haiku trees named as in the official release (SPEC 11),
solo-learn style checkpoints, a local HTTP file server and a fixture that turns oneDNN off."""
from __future__ import annotations

import functools
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, Tuple

import numpy as np
import pytest
import torch
import torchvision

SEP = "/~/"


def haiku_tree(blocks, width, make, root="res_net50"):
    """(params, state) with haiku's names; ``make(shape, kind)`` makes each leaf."""
    params, state = {}, {}

    def conv(name, k, c_in, c_out):
        params[f"{root}{SEP}{name}"] = {"w": make((k, k, c_in, c_out), "conv")}

    def bn(name, c):
        module = f"{root}{SEP}{name}"
        params[module] = {"scale": make((1, 1, 1, c), "scale"), "offset": make((1, 1, 1, c), "offset")}
        for ema in ("mean_ema", "var_ema"):
            state[f"{module}{SEP}{ema}"] = {"counter": make((), "counter"), "hidden": make((1, 1, 1, c), "hidden"),
                                            "average": make((1, 1, 1, c), ema)}

    conv("initial_conv", 7, 3, 64 * width)
    bn("initial_batchnorm", 64 * width)
    c_in = 64 * width
    for g, n_blocks in enumerate(blocks):
        c_out = 256 * width * 2**g
        for b in range(n_blocks):
            prefix = f"block_group_{g}{SEP}block_{b}{SEP}"
            if b == 0:
                conv(prefix + "shortcut_conv", 1, c_in, c_out)
                bn(prefix + "shortcut_batchnorm", c_out)
            for k, (size, ci, co) in enumerate(((1, c_in, c_out // 4), (3, c_out // 4, c_out // 4), (1, c_out // 4, c_out))):
                conv(prefix + f"conv_{k}", size, ci, co)
                bn(prefix + f"batchnorm_{k}", co)
            c_in = c_out
    params["projector/~/linear"] = {"w": make((4, 4), "offset"), "b": make((4,), "offset")}
    return params, state


def random_maker(seed):
    """A leaf maker for ``haiku_tree``: He-scaled convs, BN statistics and scales near 1,
    random counters, and ``hidden`` EMA values far from ``average`` (so using them shows)."""
    rng = np.random.default_rng(seed)

    def make(shape, kind):
        if kind == "conv":
            return rng.normal(0, np.sqrt(2.0 / np.prod(shape[:3])), shape).astype(np.float32)
        if kind == "counter":
            return np.int32(rng.integers(1, 1000))
        if kind in ("scale", "var_ema"):
            return rng.uniform(0.5, 1.5, shape).astype(np.float32)
        return rng.normal(0, 0.2 if kind != "hidden" else 5.0, shape).astype(np.float32)
    return make


@functools.lru_cache(maxsize=4)
def solo_backbone_state(arch: str = "resnet18", cifar: bool = True, seed: int = 0) -> Dict[str, torch.Tensor]:
    """A backbone state dict built the way solo-learn builds its ResNets (independently of the zoo code).

    Cached: copy the dict before changing it."""
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    model.fc = torch.nn.Identity()
    if cifar:
        model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
        model.maxpool = torch.nn.Identity()
    for name, buffer in model.named_buffers():  # non-trivial BN statistics
        if name.endswith("running_mean") or name.endswith("running_var"):
            buffer.copy_(torch.rand_like(buffer) + 0.5)
    return model.state_dict()


def make_solo_checkpoint(folder: Path, dataset: str = "cifar10", name: str = "semppl-r18-test") -> Path:
    """Write ``folder/<name>-ep=3.ckpt`` and ``folder/args.json`` like solo-learn's Checkpointer."""
    folder.mkdir(parents=True, exist_ok=True)
    backbone = solo_backbone_state(cifar=dataset in ("cifar10", "cifar100"))
    state = {f"backbone.{k}": v for k, v in backbone.items()}
    state["projector.0.weight"] = torch.randn(8, 512)
    state["classifier.weight"] = torch.randn(10, 512)
    path = folder / f"{name}-ep=3.ckpt"
    torch.save({"epoch": 3, "global_step": 30, "state_dict": state}, path)
    args = {
        "name": name, "method": "semppl", "backbone": {"name": "resnet18", "kwargs": {}},
        "data": {"dataset": dataset, "train_path": "./datasets"},
        "optimizer": {"name": "lars", "batch_size": 64, "lr": 0.3, "weight_decay": 1e-6},
        "max_epochs": 4, "devices": "1", "num_nodes": 1,
        "method_kwargs": {"num_semantic_positives": 3, "knn_k": 1},
    }
    (folder / "args.json").write_text(json.dumps(args))
    return path


class FileServer:
    """Serve byte strings on 127.0.0.1 in a thread, each path with a behaviour.

    Behaviours (``routes[path] = (mode, body)``): ``good``; ``corrupt`` (one byte flipped, same
    length); ``truncated`` (announces the full length, sends half, closes); ``flaky:<n>``
    (HTTP 503 for the first n requests, then good); ``missing`` (404).
    ``counts[path]`` counts requests.
    """

    def __init__(self, routes: Dict[str, Tuple[str, bytes]]):
        self.routes, self.counts = routes, {path: 0 for path in routes}
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a stuck connection cannot hang a test

            def log_message(self, *args):
                pass

            def do_GET(self):
                mode, body = server.routes.get(self.path, ("missing", b""))
                server.counts[self.path] = server.counts.get(self.path, 0) + 1
                if mode == "missing" or (mode.startswith("flaky:") and server.counts[self.path] <= int(mode[6:])):
                    self.send_error(404 if mode == "missing" else 503)
                    return
                if mode == "corrupt":
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if mode == "truncated" else body)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@contextmanager
def serving(routes: Dict[str, Tuple[str, bytes]]) -> Iterator[FileServer]:
    """Run a ``FileServer`` for the duration of the block (stopped and joined, bounded)."""
    server = FileServer(routes)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_onednn(monkeypatch):
    """Use PyTorch's plain CPU convolution: oneDNN compiles a kernel per new conv shape (about
    2 s for a first ResNet forward on this machine), which dominates these tiny tests.
    Import this fixture into a test module to apply it there."""
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
