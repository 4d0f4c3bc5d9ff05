"""The shipped config folders describe the real, full-size models: parameter counts match published ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from pipelines.config_folders import CONFIGS_DIR, materialize_config, shipped_config_dir

FOLDERS = ["sd1", "sd1-inpaint", "sd2", "sd2-inpaint", "sdxl", "sdxl-inpaint"]

# Published parameter counts (diffusers/transformers models of the hub repos).
UNET_PARAMS = {"sd1": 859.52e6, "sd2": 865.91e6, "sdxl": 2.567e9}
VAE_PARAMS = 83.65e6
TEXT_PARAMS = {
    "sd1/text_encoder": 123.06e6,  # CLIP ViT-L/14
    "sd2/text_encoder": 340.39e6,  # OpenCLIP ViT-H/14, the 23 layers SD 2.x uses
    "sdxl/text_encoder": 123.06e6,  # CLIP ViT-L/14
    "sdxl/text_encoder_2": 694.66e6,  # OpenCLIP ViT-bigG/14 with projection
}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_close(actual: int, published: float) -> None:
    assert abs(actual - published) / published < 1e-3, f"{actual:,} vs published {published:,.0f}"


def family_of(folder: str) -> str:
    return folder.removesuffix("-inpaint")


@pytest.mark.parametrize("folder", FOLDERS)
def test_unet_matches_published_size(folder: str) -> None:
    config = UNet2DConditionModel.load_config(CONFIGS_DIR / folder / "unet")
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    in_channels = 9 if folder.endswith("-inpaint") else 4
    assert unet.conv_in.weight.shape[1] == in_channels
    assert unet.conv_out.weight.shape[0] == 4
    extra = (in_channels - 4) * unet.conv_in.weight.shape[0] * 9  # the inpaint conv_in's 5 extra channels
    assert_close(n_params(unet) - extra, UNET_PARAMS[family_of(folder)])


@pytest.mark.parametrize("folder", FOLDERS)
def test_vae_matches_published_size(folder: str) -> None:
    config = AutoencoderKL.load_config(CONFIGS_DIR / folder / "vae")
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(config)
    assert_close(n_params(vae), VAE_PARAMS)
    assert len(config["block_out_channels"]) == 4  # scale factor 8
    expected_scaling = 0.13025 if folder.startswith("sdxl") else 0.18215
    assert vae.config.scaling_factor == expected_scaling
    if folder.startswith("sdxl"):
        assert vae.config.force_upcast is True


@pytest.mark.parametrize("component", sorted(TEXT_PARAMS))
def test_text_encoder_matches_published_size(component: str) -> None:
    config = CLIPTextConfig.from_pretrained(CONFIGS_DIR / component)
    cls = CLIPTextModelWithProjection if component.endswith("_2") else CLIPTextModel
    with torch.device("meta"):
        model = cls(config)
    assert_close(n_params(model), TEXT_PARAMS[component])
    assert config.vocab_size == 49408
    assert config.max_position_embeddings == 77
    assert config.hidden_size // config.num_attention_heads == 64


def test_inpaint_text_encoders_equal_base() -> None:
    for base in ("sd1", "sd2", "sdxl"):
        for sub in ("text_encoder", "text_encoder_2", "vae"):
            a = CONFIGS_DIR / base / sub / "config.json"
            b = CONFIGS_DIR / f"{base}-inpaint" / sub / "config.json"
            if a.exists():
                if sub == "vae":
                    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
                    ja.pop("sample_size"), jb.pop("sample_size")
                    assert ja == jb
                else:
                    assert a.read_text() == b.read_text()


def test_family_specific_values() -> None:
    def load(folder: str, name: str) -> dict:
        return json.loads((CONFIGS_DIR / folder / name).read_text())

    sd2_unet = load("sd2", "unet/config.json")
    assert sd2_unet["use_linear_projection"] is True
    assert sd2_unet["attention_head_dim"] == [5, 10, 20, 20]
    assert load("sd2", "scheduler/scheduler_config.json")["prediction_type"] == "v_prediction"
    assert load("sd2", "text_encoder/config.json")["num_hidden_layers"] == 23

    xl_unet = load("sdxl", "unet/config.json")
    assert xl_unet["transformer_layers_per_block"] == [1, 2, 10]
    assert xl_unet["addition_embed_type"] == "text_time"
    # text_embeds (bigG projection, 1280) + 6 time ids * 256
    assert xl_unet["projection_class_embeddings_input_dim"] == 1280 + 6 * xl_unet["addition_time_embed_dim"]
    assert xl_unet["cross_attention_dim"] == 768 + 1280
    assert load("sdxl", "tokenizer_2/special_tokens_map.json")["pad_token"] == "!"
    assert load("sdxl", "tokenizer/special_tokens_map.json")["pad_token"] == "<|endoftext|>"

    for folder in ("sd1", "sd1-inpaint", "sd2", "sd2-inpaint"):
        index = load(folder, "model_index.json")
        assert index["safety_checker"] == [None, None]
        assert index["feature_extractor"] == [None, None]
        assert index["requires_safety_checker"] is False


@pytest.mark.parametrize("folder", FOLDERS)
def test_materialized_folder_is_complete(folder: str, tmp_path: Path) -> None:
    family, inpaint = family_of(folder), folder.endswith("-inpaint")
    dest = materialize_config(family, inpaint, tmp_path / "cfg")  # type: ignore[arg-type]
    index = json.loads((dest / "model_index.json").read_text())
    components = [k for k, v in index.items() if isinstance(v, list) and v[0] is not None]
    for name in components:
        files = {p.name for p in (dest / name).iterdir()}
        if name.startswith("tokenizer"):
            assert {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"} <= files
        elif name == "scheduler":
            assert "scheduler_config.json" in files
        else:
            assert files == {"config.json"}, f"{name}: a config folder carries no weights"
    assert shipped_config_dir(family, inpaint) != dest  # type: ignore[arg-type]


def test_unknown_family_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown model family"):
        shipped_config_dir("sd3")  # type: ignore[arg-type]
