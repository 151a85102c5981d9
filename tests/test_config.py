"""StyleConfig: validation of every kind of bad value, serialisation, presets."""

from __future__ import annotations

import dataclasses
import json

import pytest

from painterly.config import (
    MAX_SIZE,
    PRESET_HELP,
    PRESETS,
    VGG_LAYERS,
    ConfigError,
    StyleConfig,
    fields,
    preset,
    preset_diff,
)


def test_every_field_has_help_and_a_frozen_default():
    for f in fields():
        assert f.metadata["help"].strip(), f.name
        assert not isinstance(f.default, (list, dict)), f.name
        assert type(f.default) in (int, float, str, bool, tuple), f.name
        if "choices" in f.metadata and isinstance(f.default, str):
            assert f.default in f.metadata["choices"]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"style_weight": -1.0}, "style_weight must be at least 0"),
        ({"content_weight": -0.1}, "content_weight must be at least 0"),
        ({"tv_weight": float("nan")}, "tv_weight must be a finite number"),
        ({"style_weight": float("inf")}, "style_weight must be a finite number"),
        ({"size": 8}, "size must be at least 16"),
        ({"size": MAX_SIZE + 1}, f"size must be at most {MAX_SIZE}"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"color_strength": 1.5}, "color_strength must be at most 1"),
        ({"content_layers": ("conv9_1",)}, "unknown VGG19 layer"),
        ({"style_layers": ("relu1_1", "fc7")}, "unknown VGG19 layer"),
        ({"optimizer": "sgd"}, "optimizer must be one of lbfgs, adam"),
        ({"color": "sepia"}, "color must be one of"),
        ({"pooling": "min"}, "pooling must be one of"),
        ({"size": "512"}, "size must be an integer"),
        ({"size": 512.0}, "size must be an integer"),
        ({"steps": True}, "steps must be an integer"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"clamp": 1}, "clamp must be true or false"),
        ({"content_layers": "relu4_2"}, "content_layers must be a list"),
        ({"style_blend": (1.0, -1.0)}, "style_blend must be non-negative numbers"),
        ({"style_layer_weights": (1.0, 2.0)}, "style_layer_weights has 2 values but there are 5 style layers"),
        ({"content_layers": (), "style_layers": ()}, "at least one content or style layer"),
        ({"size": 64, "scales": 4}, "smallest scale under 16 px"),
    ],
)
def test_bad_values_raise_config_error_naming_the_option(changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as info:
        StyleConfig(**changes)
    assert "\n" not in str(info.value)


def test_valid_edge_values():
    cfg = StyleConfig(size=16, scales=1, content_layers=(), style_layer_weights=(1, 2, 3, 4, 5), lr=0.0)
    assert cfg.style_layer_weights == (1, 2, 3, 4, 5)
    assert StyleConfig(content_layers=("pool5",)).last_layer == "pool5"


def test_frozen_and_replace_validates():
    cfg = StyleConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.size = 10  # type: ignore[misc]
    assert cfg.replace(size=256).size == 256 and cfg.size == 512
    with pytest.raises(ConfigError):
        cfg.replace(size=-1)


@pytest.mark.parametrize("name", list(PRESETS))
def test_dict_and_json_round_trip(name):
    cfg = PRESETS[name].replace(style_blend=(1.0, 2.0), seed=7)
    d = cfg.to_dict()
    assert all(not isinstance(v, tuple) for v in d.values())  # JSON-ready
    assert StyleConfig.from_dict(d) == cfg
    assert StyleConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_from_dict_refuses_unknown_keys_and_bad_values():
    with pytest.raises(ConfigError, match="unknown option.*colour"):
        StyleConfig.from_dict({"size": 256, "colour": "none"})
    with pytest.raises(ConfigError, match="steps must be at least 1"):
        StyleConfig.from_dict({"steps": -3})


def test_presets_and_diff():
    assert set(PRESETS) == set(PRESET_HELP) >= {"default", "draft", "quality", "classic"}
    assert preset("default") == StyleConfig() and preset_diff("default") == {}
    assert preset("draft", steps=5).steps == 5 and preset("draft", steps=5).size == PRESETS["draft"].size
    for name in PRESETS:
        diff = preset_diff(name)
        assert preset("default").replace(**diff) == PRESETS[name]
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        preset("fast")


def test_classic_is_the_original_recipe_field_by_field():
    c = PRESETS["classic"]
    recipe_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    # VGG_LAYERS is torchvision's vgg19.features order (conv, relu, ..., pool): the recipe's
    # indices 0, 5, 10, 19, 28 are these convolutions, read before their ReLU.
    assert len(VGG_LAYERS) == 37
    assert [VGG_LAYERS.index(n) for n in recipe_layers] == [0, 5, 10, 19, 28]
    assert c.content_layers == recipe_layers and c.style_layers == recipe_layers
    assert c.last_layer == "conv5_1" and VGG_LAYERS.index(c.last_layer) + 1 == 29  # features[:29]
    assert c.optimizer == "adam" and c.lr == 0.01
    assert c.content_weight == 1.0 and c.style_weight == 0.01  # alpha, beta
    assert c.steps == 1000 and c.scales == 1 and c.init == "content"
    assert c.content_reduction == "sum" and c.clamp is False and c.gram == "raw"
    assert c.tv_weight == 0.0 and c.pooling == "max" and c.style_layer_weights == () and c.color == "none"
    assert c.style_scale == 1.0 and c.preview_every == 100
    assert c.content_fine == 0.0  # its own content layers at every size (plan.content_weights)
