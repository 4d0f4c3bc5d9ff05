"""Config values read from a single-file checkpoint's tensor shapes, written over the shipped config folder.

The shipped configs (pipelines/configs/) describe the real sizes; these functions read the sizes that differ —
channel widths, layer counts, attention layout, cross-attention and text-encoder widths — from an LDM (A1111)
checkpoint's tensor shapes, as ComfyUI's model detection does, so a narrow test checkpoint and a full-size one
take the same path. A full-size checkpoint gets the shipped values back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.checkpoint_info import UNET_PREFIX, VAE_PREFIX, Family

logger = logging.getLogger(__name__)

HEAD_WIDTH = 64  # SD 2.x/SDXL UNets and every CLIP text encoder use 64-wide attention heads
SDXL_TIME_IDS = 6  # original size, crop top-left, target size

Overrides = dict[str, dict[str, Any]]


def _shape(shapes: Mapping[str, tuple[int, ...]], key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise KeyError(f"missing {key}")
    return shapes[key]


def _indices(shapes: Mapping[str, tuple[int, ...]], prefix: str) -> list[int]:
    """Sorted distinct integers N of keys ``prefix + "N." + ...``."""
    found = set()
    for key in shapes:
        if key.startswith(prefix):
            head = key[len(prefix) :].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def unet_overrides(shapes: Mapping[str, tuple[int, ...]], family: Family) -> dict[str, Any]:
    """UNet2DConditionModel config values read from an LDM UNet's tensor shapes."""
    p = UNET_PREFIX
    conv_in = _shape(shapes, p + "input_blocks.0.0.weight")
    input_ids = _indices(shapes, p + "input_blocks.")
    ops = [i for i in input_ids if p + f"input_blocks.{i}.0.op.weight" in shapes]
    n_levels = len(ops) + 1
    per_level = ops[0] - 1 if ops else len(input_ids) - 1
    if per_level < 1 or input_ids != list(range(n_levels * (per_level + 1))):
        raise ValueError("input blocks do not form levels of equal depth")
    channels, attention, depth = [], [], []
    for level in range(n_levels):
        block = f"{p}input_blocks.{1 + level * (per_level + 1)}."
        channels.append(_shape(shapes, block + "0.out_layers.3.weight")[0])
        attention.append(block + "1.proj_in.weight" in shapes)
        depth.append(len(_indices(shapes, block + "1.transformer_blocks.")) or 1)
    up_attention = [
        f"{p}output_blocks.{level * (per_level + 1)}.1.proj_in.weight" in shapes for level in range(n_levels)
    ]
    attn2 = [k for k in shapes if k.startswith(p) and k.endswith("attn2.to_k.weight")]
    if not attn2:
        raise ValueError("no cross-attention layers")
    proj_in = next(k for k in shapes if k.startswith(p) and k.endswith(".proj_in.weight"))
    config: dict[str, Any] = {
        "in_channels": conv_in[1],
        "out_channels": _shape(shapes, p + "out.2.weight")[0],
        "block_out_channels": channels,
        "layers_per_block": per_level,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in up_attention],
        "transformer_layers_per_block": depth,
        "cross_attention_dim": shapes[attn2[0]][1],
        "use_linear_projection": len(shapes[proj_in]) == 2,
    }
    if family != "sd1":  # SD 1.x has 8 heads at every level; SD 2.x and SDXL 64-wide heads
        config["attention_head_dim"] = [max(1, c // HEAD_WIDTH) for c in channels]
    if family == "sdxl":
        config["projection_class_embeddings_input_dim"] = _shape(shapes, p + "label_emb.0.0.weight")[1]
    return config


def vae_overrides(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """AutoencoderKL config values read from an LDM VAE's tensor shapes."""
    p = VAE_PREFIX
    levels = _indices(shapes, p + "encoder.down.")
    if not levels:
        raise ValueError("no VAE encoder blocks")
    return {
        "in_channels": _shape(shapes, p + "encoder.conv_in.weight")[1],
        "out_channels": _shape(shapes, p + "decoder.conv_out.weight")[0],
        "latent_channels": _shape(shapes, p + "decoder.conv_in.weight")[1],
        "block_out_channels": [
            _shape(shapes, f"{p}encoder.down.{i}.block.0.conv2.weight")[0] for i in levels
        ],
        "layers_per_block": len(_indices(shapes, p + "encoder.down.0.block.")),
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
    }


def clip_overrides(shapes: Mapping[str, tuple[int, ...]], prefix: str) -> dict[str, Any]:
    """CLIPTextConfig values of an OpenAI CLIP text model stored in transformers' layout under ``prefix``."""
    vocab, hidden = _shape(shapes, prefix + "embeddings.token_embedding.weight")
    return {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "max_position_embeddings": _shape(shapes, prefix + "embeddings.position_embedding.weight")[0],
        "intermediate_size": _shape(shapes, prefix + "encoder.layers.0.mlp.fc1.weight")[0],
        "num_hidden_layers": len(_indices(shapes, prefix + "encoder.layers.")),
        "num_attention_heads": max(1, hidden // HEAD_WIDTH),
    }


def open_clip_overrides(
    shapes: Mapping[str, tuple[int, ...]], prefix: str, drop_last: bool
) -> dict[str, Any]:
    """CLIPTextConfig values of an OpenCLIP text model stored under ``prefix`` (SD 2.x, SDXL's second).

    SD 2.x uses the penultimate layer, so its last block is not part of the text encoder (``drop_last``).
    """
    vocab, hidden = _shape(shapes, prefix + "token_embedding.weight")
    layers = len(_indices(shapes, prefix + "transformer.resblocks."))
    return {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "max_position_embeddings": _shape(shapes, prefix + "positional_embedding")[0],
        "intermediate_size": _shape(shapes, prefix + "transformer.resblocks.0.mlp.c_fc.weight")[0],
        "num_hidden_layers": layers - 1 if drop_last else layers,
        "num_attention_heads": max(1, hidden // HEAD_WIDTH),
    }


def derive_overrides(shapes: Mapping[str, tuple[int, ...]], family: Family) -> Overrides:
    """Config values per component (``unet``, ``vae``, ``text_encoder``, ``text_encoder_2``) read from shapes."""
    overrides: Overrides = {"unet": unet_overrides(shapes, family), "vae": vae_overrides(shapes)}
    if family == "sd1":
        overrides["text_encoder"] = clip_overrides(shapes, "cond_stage_model.transformer.text_model.")
    elif family == "sd2":
        overrides["text_encoder"] = open_clip_overrides(shapes, "cond_stage_model.model.", drop_last=True)
    else:
        overrides["text_encoder"] = clip_overrides(shapes, "conditioner.embedders.0.transformer.text_model.")
        prefix = "conditioner.embedders.1.model."
        text_2 = open_clip_overrides(shapes, prefix, drop_last=False)
        text_2["projection_dim"] = _shape(shapes, prefix + "text_projection")[1]
        overrides["text_encoder_2"] = text_2
        unet = overrides["unet"]
        time_width, remainder = divmod(
            unet["projection_class_embeddings_input_dim"] - text_2["projection_dim"], SDXL_TIME_IDS
        )
        if remainder or time_width <= 0:
            raise ValueError("the added (text, time) embedding does not match SDXL's 6 time ids")
        unet["addition_time_embed_dim"] = time_width
    return overrides


def _same(old: Any, new: Any, n_levels: int) -> bool:
    """Equal once a per-level value given as one int is expanded to a list."""
    if isinstance(old, int) and isinstance(new, list):
        old = [old] * n_levels
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        return list(old) == list(new)
    return old == new


def _class_defaults(component: str) -> dict[str, Any]:
    """Constructor defaults of a component's config class (what a key missing from config.json means)."""
    import inspect

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    cls = {"unet": UNet2DConditionModel, "vae": AutoencoderKL}.get(component, CLIPTextConfig)
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def apply_overrides(config_dir: Path, overrides: Overrides) -> None:
    """Write the values that differ from the shipped ones into ``config_dir/<component>/config.json``.

    Values equal to the shipped ones (a full-size checkpoint) leave the shipped file as it is.
    """
    import json

    for component, values in overrides.items():
        file = config_dir / component / "config.json"
        config = json.loads(file.read_text(encoding="utf-8"))
        current = {**_class_defaults(component), **config}
        n_levels = len(values.get("block_out_channels", config.get("block_out_channels", [])))
        changed = {k: v for k, v in values.items() if not _same(current.get(k), v, n_levels)}
        if changed:
            logger.debug("%s: config values read from the checkpoint: %s", component, changed)
            config.update(changed)
            file.write_text(json.dumps(config, indent=2), encoding="utf-8")
