"""Tiny random-weight Stable Diffusion models with the real architectures, for tests and the offline demo.

The components are the real classes (``UNet2DConditionModel``, ``AutoencoderKL``, ``CLIPTextModel``,
``CLIPTextModelWithProjection``) built from the shipped full-size configs with narrow widths and few layers,
the real CLIP tokenizer, and the family's scheduler. They save either as a diffusers folder or as one
``.safetensors`` file in the original (LDM / A1111) key layout, so they go through the same loaders as real
checkpoints, and diffusers' ``infer_diffusers_model_type`` classifies them as the real family.

The sizes follow the rules the loader uses to read a checkpoint's shapes back into a config: attention heads
of width 64 (SD 2.x/SDXL UNets and all text encoders) and SD 1.x's fixed 8 UNet heads; GroupNorm with 32
groups everywhere, so every width is a multiple of 32. Weights are drawn from ``seed`` and rounded to
float16, and both on-disk forms store float16 (like most published checkpoints), so a file and a folder of
the same seed load to identical float32 weights.

Command line: ``python -m pipelines.tiny PATH [--arch sd1|sdxl] [--inpaint] [--seed N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Literal

import torch

from pipelines.config_folders import shipped_config_dir

logger = logging.getLogger(__name__)

TinyArch = Literal["sd1", "sdxl"]
STORAGE_DTYPE = torch.float16

# Sizes that differ from the shipped full-size configs; everything else is the real family's config.
_TEXT = {"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 1, "num_hidden_layers": 2}
_VAE = {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1}
_TINY: dict[str, dict[str, dict[str, Any]]] = {
    "sd1": {
        "unet": {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "cross_attention_dim": 64},
        "vae": _VAE,
        "text_encoder": _TEXT,
    },
    "sdxl": {
        "unet": {
            "block_out_channels": [32, 64, 64],
            "layers_per_block": 1,
            "attention_head_dim": [1, 1, 1],  # channels // 64 (at least 1), as in SDXL
            "transformer_layers_per_block": [1, 1, 2],
            "cross_attention_dim": 64 + 128,  # text_encoder hidden + text_encoder_2 hidden
            "addition_time_embed_dim": 32,
            "projection_class_embeddings_input_dim": 64 + 6 * 32,  # pooled text (projection) + 6 time ids
        },
        "vae": _VAE,
        "text_encoder": _TEXT,
        # Wider than text_encoder (diffusers tells SDXL's two text encoders apart by width, 768 vs 1280) and
        # >= 10 layers (diffusers recognises SDXL by conditioner.embedders.1.model.transformer.resblocks.9).
        "text_encoder_2": {
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_attention_heads": 2,
            "num_hidden_layers": 10,
            "projection_dim": 64,
        },
    },
}


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _round_to_storage_dtype(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(param.to(STORAGE_DTYPE).to(param.dtype))


def build_tiny_components(
    arch: TinyArch = "sd1", inpaint: bool = False, seed: int = 0, full_size: bool = False
) -> dict[str, object]:
    """Build the pipeline components of a tiny model: unet, vae, text_encoder, tokenizer, scheduler
    (and text_encoder_2, tokenizer_2 for SDXL). Same ``seed`` → same weights. ``full_size=True`` keeps the
    real family's sizes (random weights all the same), for speed and memory benchmarks on a GPU."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.schedulers import SchedulerMixin
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from pipelines.config_folders import load_clip_tokenizer

    if arch not in _TINY:
        raise ValueError(f"unknown tiny architecture {arch!r}; expected 'sd1' or 'sdxl'")
    sizes = {name: {} for name in _TINY[arch]} if full_size else _TINY[arch]
    config_dir = shipped_config_dir(arch, inpaint)
    components: dict[str, object] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet_config = {**UNet2DConditionModel.load_config(config_dir / "unet"), **sizes["unet"]}
        components["unet"] = UNet2DConditionModel.from_config(unet_config)
        vae_config = {**AutoencoderKL.load_config(config_dir / "vae"), **sizes["vae"]}
        components["vae"] = AutoencoderKL.from_config(vae_config)
        text_config = CLIPTextConfig.from_pretrained(config_dir / "text_encoder", **sizes["text_encoder"])
        components["text_encoder"] = CLIPTextModel(text_config)
        if arch == "sdxl":
            config_2 = CLIPTextConfig.from_pretrained(
                config_dir / "text_encoder_2", **sizes["text_encoder_2"]
            )
            components["text_encoder_2"] = CLIPTextModelWithProjection(config_2)
    for component in components.values():
        assert isinstance(component, torch.nn.Module)
        _round_to_storage_dtype(component)
        component.eval()

    components["tokenizer"] = load_clip_tokenizer("<|endoftext|>")
    if arch == "sdxl":
        components["tokenizer_2"] = load_clip_tokenizer("!")
    scheduler_config = _load_json(config_dir / "scheduler" / "scheduler_config.json")
    import diffusers

    scheduler_cls: type[SchedulerMixin] = getattr(diffusers, scheduler_config["_class_name"])
    components["scheduler"] = scheduler_cls.from_config(scheduler_config)
    return components


def tiny_pipeline_class(arch: TinyArch, inpaint: bool) -> type:
    import diffusers

    name = {
        ("sd1", False): "StableDiffusionPipeline",
        ("sd1", True): "StableDiffusionInpaintPipeline",
        ("sdxl", False): "StableDiffusionXLPipeline",
        ("sdxl", True): "StableDiffusionXLInpaintPipeline",
    }[(arch, inpaint)]
    return getattr(diffusers, name)


def save_tiny(
    path: str | Path, arch: TinyArch = "sd1", inpaint: bool = False, seed: int = 0, full_size: bool = False
) -> Path:
    """Write a tiny model: one ``.safetensors`` file in the original (A1111) layout if ``path`` ends with
    ``.safetensors``, otherwise a diffusers folder. Returns the path written. ``full_size``: as for
    `build_tiny_components`."""
    path = Path(path)
    components = build_tiny_components(arch, inpaint=inpaint, seed=seed, full_size=full_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        state_dict = to_original_state_dict(components)
        metadata = {
            "format": "pt",
            "easel.tiny": json.dumps({"arch": arch, "inpaint": inpaint, "seed": seed}),
        }
        save_file(state_dict, str(path), metadata=metadata)
    else:
        kwargs: dict[str, object] = {}
        if arch == "sd1":
            kwargs = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
        elif inpaint:
            kwargs = {"requires_aesthetics_score": False, "add_watermarker": False}
        else:
            kwargs = {"add_watermarker": False}
        for component in components.values():
            if isinstance(component, torch.nn.Module):
                component.half()
        pipe = tiny_pipeline_class(arch, inpaint)(**components, **kwargs)
        pipe.save_pretrained(path, safe_serialization=True)
    logger.info("wrote tiny %s%s model (seed %d) to %s", arch, " inpaint" if inpaint else "", seed, path)
    return path


# --- diffusers → original (LDM) key layout ---------------------------------------------------------------

_UNET_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_VAE_ATTENTION = (
    ("group_norm", "norm"),
    ("to_q", "q"),
    ("to_k", "k"),
    ("to_v", "v"),
    ("to_out.0", "proj_out"),
)


def _rename_prefix(
    source: dict[str, torch.Tensor], old: str, new: str, renames: tuple[tuple[str, str], ...] = ()
) -> dict[str, torch.Tensor]:
    """``old.<rest>`` → ``new.<rest>`` for every key under ``old.``, renaming the first part of ``<rest>``."""
    out = {}
    for key, value in source.items():
        if not key.startswith(old + "."):
            continue
        rest = key[len(old) + 1 :]
        for a, b in renames:
            if rest.startswith(a + "."):
                rest = b + rest[len(a) :]
                break
        out[f"{new}.{rest}"] = value
    return out


def unet_to_original(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A diffusers ``UNet2DConditionModel`` state dict in LDM's ``openaimodel`` layout (without prefix)."""
    sd = unet.state_dict()
    config = unet.config
    n_levels = len(config.block_out_channels)
    per_level = config.layers_per_block
    out: dict[str, torch.Tensor] = {}
    out.update(_rename_prefix(sd, "conv_in", "input_blocks.0.0"))
    out.update(_rename_prefix(sd, "time_embedding.linear_1", "time_embed.0"))
    out.update(_rename_prefix(sd, "time_embedding.linear_2", "time_embed.2"))
    out.update(_rename_prefix(sd, "add_embedding.linear_1", "label_emb.0.0"))
    out.update(_rename_prefix(sd, "add_embedding.linear_2", "label_emb.0.2"))
    out.update(_rename_prefix(sd, "conv_norm_out", "out.0"))
    out.update(_rename_prefix(sd, "conv_out", "out.2"))
    for level in range(n_levels):
        for j in range(per_level):
            index = 1 + level * (per_level + 1) + j
            out.update(
                _rename_prefix(
                    sd, f"down_blocks.{level}.resnets.{j}", f"input_blocks.{index}.0", _UNET_RESNET
                )
            )
            out.update(_rename_prefix(sd, f"down_blocks.{level}.attentions.{j}", f"input_blocks.{index}.1"))
        if level < n_levels - 1:
            index = 1 + level * (per_level + 1) + per_level
            out.update(
                _rename_prefix(sd, f"down_blocks.{level}.downsamplers.0.conv", f"input_blocks.{index}.0.op")
            )
    out.update(_rename_prefix(sd, "mid_block.resnets.0", "middle_block.0", _UNET_RESNET))
    out.update(_rename_prefix(sd, "mid_block.attentions.0", "middle_block.1"))
    out.update(_rename_prefix(sd, "mid_block.resnets.1", "middle_block.2", _UNET_RESNET))
    for level in range(n_levels):
        has_attention = any(k.startswith(f"up_blocks.{level}.attentions.") for k in sd)
        for j in range(per_level + 1):
            index = level * (per_level + 1) + j
            out.update(
                _rename_prefix(sd, f"up_blocks.{level}.resnets.{j}", f"output_blocks.{index}.0", _UNET_RESNET)
            )
            out.update(_rename_prefix(sd, f"up_blocks.{level}.attentions.{j}", f"output_blocks.{index}.1"))
        if level < n_levels - 1:
            index = level * (per_level + 1) + per_level
            slot = 2 if has_attention else 1
            out.update(
                _rename_prefix(
                    sd, f"up_blocks.{level}.upsamplers.0.conv", f"output_blocks.{index}.{slot}.conv"
                )
            )
    _check_all_converted(sd, out, "UNet")
    return out


def vae_to_original(vae: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A diffusers ``AutoencoderKL`` state dict in LDM's layout (without prefix); attention as 1x1 convs."""
    sd = vae.state_dict()
    n_levels = len(vae.config.block_out_channels)
    resnet = (("conv_shortcut", "nin_shortcut"),)
    out: dict[str, torch.Tensor] = {}
    for side in ("encoder", "decoder"):
        out.update(_rename_prefix(sd, f"{side}.conv_in", f"{side}.conv_in"))
        out.update(_rename_prefix(sd, f"{side}.conv_out", f"{side}.conv_out"))
        out.update(_rename_prefix(sd, f"{side}.conv_norm_out", f"{side}.norm_out"))
        out.update(_rename_prefix(sd, f"{side}.mid_block.resnets.0", f"{side}.mid.block_1", resnet))
        out.update(_rename_prefix(sd, f"{side}.mid_block.resnets.1", f"{side}.mid.block_2", resnet))
        attention = _rename_prefix(sd, f"{side}.mid_block.attentions.0", f"{side}.mid.attn_1", _VAE_ATTENTION)
        for key, value in attention.items():
            out[key] = value[:, :, None, None] if value.ndim == 2 else value
    for level in range(n_levels):
        out.update(
            _rename_prefix(sd, f"encoder.down_blocks.{level}.resnets", f"encoder.down.{level}.block", resnet)
        )
        out.update(
            _rename_prefix(
                sd,
                f"encoder.down_blocks.{level}.downsamplers.0.conv",
                f"encoder.down.{level}.downsample.conv",
            )
        )
        ldm_level = n_levels - 1 - level
        out.update(
            _rename_prefix(sd, f"decoder.up_blocks.{level}.resnets", f"decoder.up.{ldm_level}.block", resnet)
        )
        out.update(
            _rename_prefix(
                sd, f"decoder.up_blocks.{level}.upsamplers.0.conv", f"decoder.up.{ldm_level}.upsample.conv"
            )
        )
    for name in ("quant_conv", "post_quant_conv"):
        out.update(_rename_prefix(sd, name, name))
    _check_all_converted(sd, out, "VAE")
    return out


def _text_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Keys as ``text_model.*`` (+ ``text_projection.weight``), whatever transformers' wrapping."""
    sd = model.state_dict()
    if not any(k.startswith("text_model.") for k in sd):
        sd = {f"text_model.{k}": v for k, v in sd.items()}
    return sd


def clip_to_original(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """OpenAI CLIP text model as stored by LDM under ``<prefix>.transformer.`` (HF transformers layout)."""
    out = dict(_text_state_dict(model))
    n_positions = model.config.max_position_embeddings
    out["text_model.embeddings.position_ids"] = torch.arange(n_positions, dtype=torch.int64)[None]
    return out


def open_clip_to_original(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A ``CLIPTextModelWithProjection`` in OpenCLIP's layout (fused in_proj, [width, dim] projection)."""
    sd = _text_state_dict(model)
    out: dict[str, torch.Tensor] = {
        "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": sd["text_model.final_layer_norm.weight"],
        "ln_final.bias": sd["text_model.final_layer_norm.bias"],
        "text_projection": sd["text_projection.weight"].T.contiguous(),
    }
    renames = {
        "layer_norm1": "ln_1",
        "layer_norm2": "ln_2",
        "mlp.fc1": "mlp.c_fc",
        "mlp.fc2": "mlp.c_proj",
        "self_attn.out_proj": "attn.out_proj",
    }
    for layer in range(model.config.num_hidden_layers):
        src, dst = f"text_model.encoder.layers.{layer}.", f"transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):
            qkv = [sd[f"{src}self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")]
            out[f"{dst}attn.in_proj_{kind}"] = torch.cat(qkv, dim=0)
            for a, b in renames.items():
                out[f"{dst}{b}.{kind}"] = sd[f"{src}{a}.{kind}"]
    return out


def _check_all_converted(
    source: dict[str, torch.Tensor], converted: dict[str, torch.Tensor], what: str
) -> None:
    n_source = sum(v.numel() for v in source.values())
    n_converted = sum(v.numel() for v in converted.values())
    if len(source) != len(converted) or n_source != n_converted:
        raise RuntimeError(
            f"{what} conversion to the original layout lost tensors ({len(source)} → {len(converted)})"
        )


def to_original_state_dict(components: dict[str, object]) -> dict[str, torch.Tensor]:
    """All components as one A1111-style state dict (float16), ready for ``safetensors.torch.save_file``."""
    unet, vae, text_encoder = components["unet"], components["vae"], components["text_encoder"]
    assert isinstance(unet, torch.nn.Module) and isinstance(vae, torch.nn.Module)
    assert isinstance(text_encoder, torch.nn.Module)
    parts = {
        "model.diffusion_model.": unet_to_original(unet),
        "first_stage_model.": vae_to_original(vae),
    }
    text_encoder_2 = components.get("text_encoder_2")
    if text_encoder_2 is None:
        parts["cond_stage_model.transformer."] = clip_to_original(text_encoder)
    else:
        assert isinstance(text_encoder_2, torch.nn.Module)
        parts["conditioner.embedders.0.transformer."] = clip_to_original(text_encoder)
        parts["conditioner.embedders.1.model."] = open_clip_to_original(text_encoder_2)
    state_dict: dict[str, torch.Tensor] = {}
    for prefix, part in parts.items():
        for key, value in part.items():
            value = value.detach().to("cpu")
            state_dict[prefix + key] = value.to(STORAGE_DTYPE) if value.is_floating_point() else value
    return {k: v.contiguous() for k, v in state_dict.items()}


_UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
_TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def _random_lora_state_dict(model: torch.nn.Module, targets: list[str], rank: int) -> dict[str, torch.Tensor]:
    """A LoRA for a copy of ``model`` with random (not zero) up and down weights, in diffusers' key layout."""
    import copy

    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    target = copy.deepcopy(model)
    # init_lora_weights=False keeps nn.Linear's random init for both matrices (peft's default zeroes "up")
    target.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=False)  # type: ignore[operator]
    )
    state_dict = get_peft_model_state_dict(target)
    return {
        k: v.detach().to(torch.float32).contiguous()
        for k, v in convert_state_dict_to_diffusers(state_dict).items()
    }


def save_tiny_lora(
    path: str | Path, components_or_pipe: object, rank: int = 4, seed: int = 0, text_encoder: bool = False
) -> Path:
    """Write a random low-rank LoRA for a tiny model's UNet (and text encoders with ``text_encoder=True``) as
    one ``.safetensors`` file in the diffusers/peft LoRA layout, the layout ``load_lora_weights`` reads.
    Same ``seed`` → same file. The model passed in is not changed."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"a LoRA file must end with .safetensors, not {path.name!r}")
    parts = components_or_pipe if isinstance(components_or_pipe, dict) else components_or_pipe.components  # type: ignore[attr-defined]
    unet = parts["unet"]
    assert isinstance(unet, torch.nn.Module)
    sdxl = parts.get("text_encoder_2") is not None
    layers: dict[str, dict[str, torch.Tensor]] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers["unet_lora_layers"] = _random_lora_state_dict(unet, _UNET_LORA_TARGETS, rank)
        if text_encoder:
            names = ["text_encoder", "text_encoder_2"] if sdxl else ["text_encoder"]
            for name in names:
                encoder = parts[name]
                assert isinstance(encoder, torch.nn.Module)
                layers[f"{name}_lora_layers"] = _random_lora_state_dict(encoder, _TEXT_LORA_TARGETS, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    pipeline_cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    pipeline_cls.save_lora_weights(path.parent, weight_name=path.name, safe_serialization=True, **layers)
    logger.info("wrote tiny %s LoRA (rank %d, seed %d) to %s", "sdxl" if sdxl else "sd1", rank, seed, path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.tiny",
        description="Write a tiny random-weight Stable Diffusion checkpoint (a test model, not a real one).",
    )
    parser.add_argument(
        "path", type=Path, help="*.safetensors for one A1111-style file, else a diffusers folder"
    )
    parser.add_argument("--arch", choices=sorted(_TINY), default="sd1")
    parser.add_argument("--inpaint", action="store_true", help="9-channel inpainting UNet")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    written = save_tiny(args.path, arch=args.arch, inpaint=args.inpaint, seed=args.seed)
    print(written)  # noqa: T201 - CLI output


if __name__ == "__main__":
    main()
