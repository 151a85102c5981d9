"""VGG19: named layers and shapes, partial building, pooling, preprocessing, and weights
(bundled file checksum, dequantisation, torchvision .pth files, unsafe files refused)."""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from painterly import plan, vgg
from painterly.config import VGG_LAYERS
from painterly.vgg import VGG19, WeightsError, get_vgg, load_weights

TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def expected_shapes(h: int, w: int) -> dict[str, tuple[int, int, int, int]]:
    """Every layer's output shape, from the architecture (Simonyan & Zisserman, config E)."""
    shapes, channels = {}, 3
    for name in VGG_LAYERS:
        block = int(name[-3] if name.startswith(("conv", "relu")) else name[-1])
        if name.startswith("conv"):
            channels = (64, 128, 256, 512, 512)[block - 1]
        if name.startswith("pool"):
            h, w = h // 2, w // 2
        shapes[name] = (1, channels, h, w)
    return shapes


def test_layer_names_and_output_shapes():
    net = get_vgg("pool5")
    assert net.names == VGG_LAYERS and len(net.layers) == 37
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        out = net(x, VGG_LAYERS)
    assert list(out) == list(VGG_LAYERS)
    want = expected_shapes(64, 96)
    assert {k: tuple(v.shape) for k, v in out.items()} == want
    assert want["pool5"] == (1, 512, 2, 3) and want["relu4_2"] == (1, 512, 8, 12)


def test_built_only_up_to_the_last_layer():
    weights, pre = load_weights()
    net = VGG19(weights, pre, last_layer="relu3_1")
    assert net.names[-1] == "relu3_1" and len(net.layers) == VGG_LAYERS.index("relu3_1") + 1
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.layers) == 5
    with pytest.raises(ValueError, match="built to relu3_1"):
        net(torch.rand(1, 3, 16, 16), ["conv4_1"])
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        VGG19(weights, pre, last_layer="fc7")
    assert get_vgg("conv5_1") is get_vgg("conv5_1")  # built once, shared
    assert len(get_vgg("conv5_1").layers) == 29  # torchvision's features[:29]


def test_conv_uses_the_named_weights_and_preprocessing():
    weights, pre = load_weights()
    assert pre == "caffe"
    net = VGG19(weights, pre, last_layer="conv1_1")
    x = torch.rand(1, 3, 5, 6)
    # Caffe VGG input: BGR, 0..255, minus the ImageNet mean pixel (B, G, R order).
    bgr = torch.stack([x[:, 2], x[:, 1], x[:, 0]], 1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(net.normalize(x), bgr)
    w, b = weights["conv1_1"]
    with torch.no_grad():
        torch.testing.assert_close(net(x, ["conv1_1"])["conv1_1"], F.conv2d(bgr, w, b, padding=1), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("pooling, pool", [("max", F.max_pool2d), ("avg", F.avg_pool2d)])
def test_pooling(pooling, pool):
    weights, pre = load_weights()
    net = VGG19(weights, pre, last_layer="pool1", pooling=pooling)
    with torch.no_grad():
        out = net(torch.rand(1, 3, 8, 10), ["relu1_2", "pool1"])
    torch.testing.assert_close(out["pool1"], pool(out["relu1_2"], 2, 2))
    assert out["pool1"].shape == (1, 64, 4, 5)


def test_forward_is_stateless_and_frozen():
    net = get_vgg("relu2_1")
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        a = net(x, ["relu2_1"])["relu2_1"]
        net(torch.rand(1, 3, 24, 24), ["relu1_1"])
        torch.testing.assert_close(net(x, ["relu2_1"])["relu2_1"], a)


# --- the bundled weights -----------------------------------------------------------------------------


def test_bundled_weights_pass_their_checksum():
    path = vgg.bundled_weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == vgg.WEIGHTS_SHA256


def test_tampered_or_missing_weights_are_refused(tmp_path, monkeypatch):
    bad = tmp_path / vgg.WEIGHTS_FILE
    shutil.copyfile(vgg.bundled_weights_path(), bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the codes
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(vgg, "bundled_weights_path", lambda: bad)
    load = load_weights.__wrapped__  # past the per-process cache
    with pytest.raises(WeightsError, match="checksum"):
        load("")
    bad.unlink()
    with pytest.raises(WeightsError, match="not found"):
        load("")


def test_dequantised_weights_match_a_slow_lookup():
    q = torch.load(vgg.bundled_weights_path(), map_location="cpu", weights_only=True)
    weights, _ = load_weights()
    rng = random.Random(0)
    for name, cin, cout in vgg._CONVS:
        key = "block{}_conv{}".format(*name[4:].split("_"))
        codes, table = q[key + "_W_q"], q[key + "_W_table"].tolist()
        w, b = weights[name]
        assert tuple(w.shape) == (cout, cin, 3, 3) and w.dtype == torch.float32
        torch.testing.assert_close(b, q[key + "_b"].float())
        n = codes.numel()
        flat_codes, flat_w = codes.reshape(-1).tolist(), w.reshape(-1)
        picks = range(n) if name == "conv1_1" else rng.sample(range(n), 300)  # every weight of conv1_1
        for i in picks:
            assert float(flat_w[i]) == table[flat_codes[i]], (name, i)


# --- a user's own torchvision weights ------------------------------------------------------------------


def _torchvision_state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    sd = {}
    for (_name, cin, cout), idx in zip(vgg._CONVS, TORCHVISION_CONV_INDICES):
        sd[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        sd[f"features.{idx}.bias"] = torch.randn(cout, generator=g) * 0.01
    sd["classifier.6.bias"] = torch.zeros(1000)  # real files carry the classifier too; it is ignored
    return sd


def test_torchvision_state_dict_loads_with_torchvision_normalisation(tmp_path):
    sd = _torchvision_state_dict()
    path = tmp_path / "vgg19-mine.pth"
    torch.save(sd, path)
    weights, pre = load_weights.__wrapped__(str(path))
    assert pre == "torchvision"
    torch.testing.assert_close(weights["conv3_2"][0], sd["features.12.weight"])
    net = VGG19(weights, pre, last_layer="conv1_1")
    x = torch.rand(1, 3, 4, 5)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(net.normalize(x), (x - mean) / std)  # RGB order kept, no 255 scale
    with torch.no_grad():
        got = net(x, ["conv1_1"])["conv1_1"]
    torch.testing.assert_close(
        got, F.conv2d((x - mean) / std, sd["features.0.weight"], sd["features.0.bias"], padding=1)
    )  # noqa: E501
    # A checkpoint wrapped as {"state_dict": ...} is accepted too.
    torch.save({"state_dict": sd}, tmp_path / "wrapped.pth")
    assert load_weights.__wrapped__(str(tmp_path / "wrapped.pth"))[1] == "torchvision"


class _RunsCode:
    """Unpickling this calls open(marker, "w"): proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_unsafe_or_wrong_files_are_refused(tmp_path):
    load = load_weights.__wrapped__
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _RunsCode(marker)}, evil)
    with pytest.raises(WeightsError, match="cannot|safely"):
        load(str(evil))
    assert not marker.exists()  # weights_only=True: the pickled call never ran

    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="not a torchvision vgg19 state dict"):
        load(str(tmp_path / "list.pth"))
    sd = _torchvision_state_dict()
    sd["features.5.weight"] = torch.zeros(128, 64, 1, 1)
    torch.save(sd, tmp_path / "shape.pth")
    with pytest.raises(WeightsError, match=r"features.5.weight has shape \(128, 64, 1, 1\)"):
        load(str(tmp_path / "shape.pth"))
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(WeightsError, match="safely"):
        load(str(tmp_path / "text.pth"))
    with pytest.raises(WeightsError, match="does not exist"):
        load(str(tmp_path / "missing.pth"))


def test_large_inputs_recompute_block_one_with_identical_gradients(monkeypatch):
    """Above plan.CHECKPOINT_PIXELS the forward recomputes conv1_2..pool1 and conv2_2..pool2 in
    backward (to fit 2048 px in memory); the losses and the image gradient must not change."""
    net = get_vgg("relu5_1")
    layers = ("relu1_1", "relu2_1", "relu4_2", "relu5_1")
    x0 = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(3))
    calls = []
    real = vgg.checkpoint
    monkeypatch.setattr(vgg, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))

    def loss_and_grad(limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        monkeypatch.setattr(plan, "CHECKPOINT_PIXELS", limit)
        x = x0.clone().requires_grad_(True)
        out = net(x, layers)
        loss = sum((v.double() ** 2).mean() for v in out.values())
        loss.backward()
        return loss.detach(), x.grad

    plain_loss, plain_grad = loss_and_grad(10**9)
    assert calls == []
    ckpt_loss, ckpt_grad = loss_and_grad(100)
    assert calls == [1, 1]
    assert torch.equal(plain_loss, ckpt_loss)
    torch.testing.assert_close(ckpt_grad, plain_grad, rtol=1e-5, atol=0)
    # Never on target extraction (no graph) or when a recomputed layer is itself wanted.
    monkeypatch.setattr(plan, "CHECKPOINT_PIXELS", 100)
    with torch.no_grad():
        net(x0, layers)
    net(x0.clone().requires_grad_(True), ("relu1_2", "relu3_1"))
    assert calls == [1, 1, 1]  # only the second run: relu1_2 is wanted


def test_max_pool_before_the_relu_it_follows_changes_nothing():
    """A ReLU nobody reads runs after the max pool that follows it, on a quarter of the values
    (VGG19._advance): the features and the image's gradient are those of the layers run one by
    one in VGG's own order, bit for bit; a ReLU that is read runs before its pool as usual."""
    net = get_vgg("relu5_1")
    x0 = torch.rand(1, 3, 36, 44, generator=torch.Generator().manual_seed(5))
    for layers in (("relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1"), ("relu1_2", "pool1", "relu3_1")):
        x = x0.clone().requires_grad_(True)
        out = net(x, layers)
        sum((v.double() ** 3).mean() for v in out.values()).backward()

        x_ref = x0.clone().requires_grad_(True)
        y, ref = net.normalize(x_ref).contiguous(memory_format=net.memory_format), {}
        for name, layer in zip(net.names, net.layers):
            y = ref[name] = F.relu(y) if name.startswith("relu") else layer(y)
        sum((ref[k].double() ** 3).mean() for k in layers).backward()
        for name in layers:
            assert torch.equal(out[name], ref[name]), name
        assert x.grad is not None and x_ref.grad is not None and x_ref.grad.abs().sum() > 0
        assert torch.equal(x.grad, x_ref.grad)
