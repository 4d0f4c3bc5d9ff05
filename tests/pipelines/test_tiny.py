"""Tiny random-weight models: real architectures, deterministic, saved in the original (A1111) key layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
    infer_diffusers_model_type,
)
from safetensors import safe_open
from safetensors.torch import load_file

from pipelines.tiny import build_tiny_components, main, save_tiny

VARIANTS = [("sd1", False), ("sd1", True), ("sdxl", False), ("sdxl", True)]
REAL_FAMILY_TYPE = {
    ("sd1", False): "v1",
    ("sd1", True): "inpainting",
    ("sdxl", False): "xl_base",
    ("sdxl", True): "xl_inpaint",
}
MAX_FILE_BYTES = 30 * 1024 * 1024


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        (arch, inpaint): save_tiny(
            root / f"{arch}{'-inpainting' if inpaint else ''}.safetensors", arch, inpaint
        )
        for arch, inpaint in VARIANTS
    }


@pytest.fixture(scope="module")
def sdxl_components() -> dict[str, object]:
    return build_tiny_components("sdxl", seed=0)


def state_dict_of(component: object) -> dict[str, torch.Tensor]:
    assert isinstance(component, torch.nn.Module)
    return component.state_dict()


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(actual[key].float(), value.float()), key


@pytest.mark.parametrize(("arch", "inpaint"), VARIANTS)
def test_classified_as_the_real_family(tiny_files: dict, arch: str, inpaint: bool) -> None:
    checkpoint = load_file(tiny_files[arch, inpaint])
    assert infer_diffusers_model_type(checkpoint) == REAL_FAMILY_TYPE[arch, inpaint]
    assert checkpoint["model.diffusion_model.input_blocks.0.0.weight"].shape[1] == (9 if inpaint else 4)


@pytest.mark.parametrize(("arch", "inpaint"), VARIANTS)
def test_file_size_and_storage_dtype(tiny_files: dict, arch: str, inpaint: bool) -> None:
    path = tiny_files[arch, inpaint]
    assert path.stat().st_size < MAX_FILE_BYTES
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        assert any(k.startswith("first_stage_model.") for k in keys)
        assert f.get_slice("model.diffusion_model.out.2.weight").get_dtype() == "F16"


def test_same_seed_same_weights_other_seed_differs() -> None:
    a, b, c = (build_tiny_components("sd1", seed=s) for s in (0, 0, 1))
    for name in ("unet", "vae", "text_encoder"):
        assert_same_tensors(state_dict_of(a[name]), state_dict_of(b[name]))
    ua, uc = state_dict_of(a["unet"]), state_dict_of(c["unet"])
    assert not torch.equal(ua["conv_in.weight"], uc["conv_in.weight"])


def test_build_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_components("sd1", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_components_are_the_real_classes(sdxl_components: dict) -> None:
    assert sdxl_components["unet"].__class__.__name__ == "UNet2DConditionModel"
    assert sdxl_components["vae"].__class__.__name__ == "AutoencoderKL"
    assert sdxl_components["text_encoder"].__class__.__name__ == "CLIPTextModel"
    assert sdxl_components["text_encoder_2"].__class__.__name__ == "CLIPTextModelWithProjection"
    assert sdxl_components["scheduler"].__class__.__name__ == "EulerDiscreteScheduler"
    vae = sdxl_components["vae"]
    assert 2 ** (len(vae.config.block_out_channels) - 1) == 8
    assert sdxl_components["tokenizer"].pad_token == "<|endoftext|>"
    assert sdxl_components["tokenizer_2"].pad_token == "!"
    for name in ("text_encoder", "text_encoder_2"):
        config = sdxl_components[name].config
        assert config.vocab_size == 49408 and config.max_position_embeddings == 77
        assert config.hidden_size // config.num_attention_heads == 64
    unet = sdxl_components["unet"].config
    assert unet.cross_attention_dim == 64 + 128
    proj = sdxl_components["text_encoder_2"].config.projection_dim
    assert unet.projection_class_embeddings_input_dim == proj + 6 * unet.addition_time_embed_dim


def test_sd1_original_layout_round_trips_through_diffusers_converters(tmp_path: Path) -> None:
    components = build_tiny_components("sd1", seed=3)
    checkpoint = load_file(save_tiny(tmp_path / "m.safetensors", "sd1", seed=3))
    unet, vae, text = components["unet"], components["vae"], components["text_encoder"]
    assert_same_tensors(convert_ldm_unet_checkpoint(checkpoint, dict(unet.config)), state_dict_of(unet))
    assert_same_tensors(convert_ldm_vae_checkpoint(checkpoint, dict(vae.config)), state_dict_of(vae))
    text_sd = {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(checkpoint).items()}
    text_sd.pop("embeddings.position_ids")  # stored like real files; a non-persistent buffer in transformers
    assert_same_tensors(text_sd, state_dict_of(text))
    # LDM's VAE attention is a 1x1 conv
    assert checkpoint["first_stage_model.decoder.mid.attn_1.q.weight"].ndim == 4
    assert checkpoint["first_stage_model.encoder.mid.attn_1.proj_out.weight"].ndim == 4


def test_sdxl_original_layout_round_trips(sdxl_components: dict, tmp_path: Path) -> None:
    checkpoint = load_file(save_tiny(tmp_path / "xl.safetensors", "sdxl", seed=0))
    unet, text_2 = sdxl_components["unet"], sdxl_components["text_encoder_2"]
    assert "model.diffusion_model.label_emb.0.0.weight" in checkpoint
    assert_same_tensors(convert_ldm_unet_checkpoint(checkpoint, dict(unet.config)), state_dict_of(unet))
    prefix = "conditioner.embedders.1.model."
    assert checkpoint[prefix + "transformer.resblocks.0.attn.in_proj_weight"].shape == (3 * 128, 128)
    assert checkpoint[prefix + "text_projection"].shape == (128, 64)  # OpenCLIP: [width, embed_dim]
    assert prefix + "transformer.resblocks.9.mlp.c_proj.bias" in checkpoint
    converted = convert_open_clip_checkpoint(text_2, checkpoint, prefix=prefix)
    assert_same_tensors(converted, state_dict_of(text_2))
    text_1 = {
        k.removeprefix("text_model."): v
        for k, v in convert_ldm_clip_checkpoint(checkpoint).items()
        if not k.endswith("position_ids")
    }
    assert_same_tensors(text_1, state_dict_of(sdxl_components["text_encoder"]))
    assert not any(k.startswith("cond_stage_model.") for k in checkpoint)


def test_folder_form(tmp_path: Path) -> None:
    folder = save_tiny(tmp_path / "tiny-xl-inpaint", "sdxl", inpaint=True)
    names = {p.name for p in folder.iterdir()}
    assert {
        "model_index.json",
        "unet",
        "vae",
        "text_encoder",
        "text_encoder_2",
        "tokenizer",
        "tokenizer_2",
    } <= names
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(folder.rglob("*.bin"))
    assert '"StableDiffusionXLInpaintPipeline"' in (folder / "model_index.json").read_text()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cli.safetensors"
    main([str(target), "--arch", "sd1", "--inpaint", "--seed", "7"])  # python -m pipelines.tiny PATH ...
    assert capsys.readouterr().out.strip() == str(target)
    checkpoint = load_file(target)
    assert infer_diffusers_model_type(checkpoint) == "inpainting"
    assert_same_tensors(
        load_file(save_tiny(tmp_path / "api.safetensors", "sd1", inpaint=True, seed=7)), checkpoint
    )


def test_unknown_arch_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown tiny architecture"):
        build_tiny_components("sd3")  # type: ignore[arg-type]
