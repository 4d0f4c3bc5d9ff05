"""AUTOMATIC1111's settings (`GET/POST /sdapi/v1/options`) as data: every key its clients read, with its
default and type. Defined once here, validated, never evaluated.

`A1111Options` holds one full set. Unknown keys and values of the wrong type are refused (the error names
the key). Which keys change what Easel does, and which are kept only so that clients can read them back, is
said by `HONOURED`; keys that belong to the whole server (output folders, caches) by `SERVER_WIDE`, which
only admins may change.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SampleFormat = Literal["png", "jpg", "jpeg", "webp"]
MAX_ENSD = 2**32 - 1


class A1111Options(BaseModel):
    """A1111's option keys with A1111's defaults (modules/shared_options.py), grouped as its settings page."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

    # -- saving images
    samples_save: bool = True
    samples_format: SampleFormat = "png"
    samples_filename_pattern: str = ""
    save_images_add_number: bool = True
    save_images_replace_action: str = "Replace"
    grid_save: bool = True
    grid_format: SampleFormat = "png"
    grid_extended_filename: bool = False
    grid_only_if_multiple: bool = True
    grid_prevent_empty_spots: bool = False
    grid_zip_filename_pattern: str = ""
    n_rows: int = -1
    font: str = ""
    grid_text_active_color: str = "#000000"
    grid_text_inactive_color: str = "#999999"
    grid_background_color: str = "#ffffff"
    save_images_before_face_restoration: bool = False
    save_images_before_highres_fix: bool = False
    save_images_before_color_correction: bool = False
    save_mask: bool = False
    save_mask_composite: bool = False
    jpeg_quality: int = Field(80, ge=1, le=100)
    webp_lossless: bool = False
    export_for_4chan: bool = True
    img_downscale_threshold: float = 4.0
    target_side_length: int = 4000
    img_max_size_mp: int = 200
    use_original_name_batch: bool = True
    use_upscaler_name_as_suffix: bool = False
    save_selected_only: bool = True
    save_init_img: bool = False
    temp_dir: str = ""
    clean_temp_dir_at_start: bool = False
    save_incomplete_images: bool = False
    notification_audio: bool = True
    notification_volume: int = Field(100, ge=0, le=100)
    # -- paths for saving
    outdir_samples: str = ""
    outdir_txt2img_samples: str = "outputs/txt2img-images"
    outdir_img2img_samples: str = "outputs/img2img-images"
    outdir_extras_samples: str = "outputs/extras-images"
    outdir_grids: str = ""
    outdir_txt2img_grids: str = "outputs/txt2img-grids"
    outdir_img2img_grids: str = "outputs/img2img-grids"
    outdir_save: str = "log/images"
    outdir_init_images: str = "outputs/init-images"
    # -- saving to a directory
    save_to_dirs: bool = True
    grid_save_to_dirs: bool = True
    use_save_to_dirs_for_ui: bool = False
    directories_filename_pattern: str = "[date]"
    directories_max_prompt_words: int = 8
    # -- upscaling
    ESRGAN_tile: int = 192
    ESRGAN_tile_overlap: int = 8
    realesrgan_enabled_models: list[str] = Field(
        default_factory=lambda: ["R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B"]
    )
    upscaler_for_img2img: str | None = None
    set_scale_by_when_changing_upscaler: bool = False
    # -- face restoration
    face_restoration: bool = False
    face_restoration_model: str = "CodeFormer"
    code_former_weight: float = Field(0.5, ge=0.0, le=1.0)
    face_restoration_unload: bool = False
    # -- system
    auto_launch_browser: str = "Local"
    enable_console_prompts: bool = False
    show_warnings: bool = False
    show_gradio_deprecation_warnings: bool = True
    memmon_poll_rate: float = 8
    samples_log_stdout: bool = False
    multiple_tqdm: bool = True
    enable_upscale_progressbar: bool = True
    print_hypernet_extra: bool = False
    list_hidden_files: bool = True
    disable_mmap_load_safetensors: bool = False
    hide_ldm_prints: bool = True
    dump_stacks_on_signal: bool = False
    # -- API
    api_enable_requests: bool = True
    api_forbid_local_requests: bool = True
    api_useragent: str = ""
    # -- training
    unload_models_when_training: bool = False
    pin_memory: bool = False
    save_optimizer_state: bool = False
    save_training_settings_to_txt: bool = True
    dataset_filename_word_regex: str = ""
    dataset_filename_join_string: str = " "
    training_image_repeats_per_epoch: int = 1
    training_write_csv_every: int = 500
    training_xattention_optimizations: bool = False
    training_enable_tensorboard: bool = False
    training_tensorboard_save_images: bool = False
    training_tensorboard_flush_every: int = 120
    # -- Stable Diffusion
    sd_model_checkpoint: str | None = None
    sd_checkpoint_hash: str | None = None
    sd_checkpoints_limit: int = Field(1, ge=1, le=16)
    sd_checkpoints_keep_in_cpu: bool = True
    sd_checkpoint_cache: int = 0
    sd_unet: str = "Automatic"
    enable_quantization: bool = False
    emphasis: str = "Original"
    enable_batch_seeds: bool = True
    comma_padding_backtrack: int = Field(20, ge=0, le=74)
    sdxl_clip_l_skip: bool = False
    CLIP_stop_at_last_layers: int = Field(1, ge=1, le=12)
    upcast_attn: bool = False
    randn_source: str = "GPU"
    tiling: bool = False
    hires_fix_refiner_pass: str = "second pass"
    # -- SDXL
    sdxl_crop_top: int = 0
    sdxl_crop_left: int = 0
    sdxl_refiner_low_aesthetic_score: float = 2.5
    sdxl_refiner_high_aesthetic_score: float = 6.0
    # -- VAE
    sd_vae_checkpoint_cache: int = 0
    sd_vae: str = "Automatic"
    sd_vae_overrides_per_model_preferences: bool = True
    auto_vae_precision_bfloat16: bool = False
    auto_vae_precision: bool = True
    sd_vae_encode_method: str = "Full"
    sd_vae_decode_method: str = "Full"
    sd_vae_as_default: bool = True
    # -- img2img
    inpainting_mask_weight: float = Field(1.0, ge=0.0, le=1.0)
    initial_noise_multiplier: float = Field(1.0, ge=0.0, le=1.5)
    img2img_extra_noise: float = Field(0.0, ge=0.0, le=1.0)
    img2img_color_correction: bool = False
    img2img_fix_steps: bool = False
    img2img_background_color: str = "#ffffff"
    img2img_editor_height: int = 720
    img2img_sketch_default_brush_color: str = "#ffffff"
    img2img_inpaint_mask_brush_color: str = "#ffffff"
    img2img_inpaint_sketch_default_brush_color: str = "#ffffff"
    return_mask: bool = False
    return_mask_composite: bool = False
    img2img_batch_show_results_limit: int = 32
    overlay_inpaint: bool = True
    # -- optimizations
    cross_attention_optimization: str = "Automatic"
    s_min_uncond: float = 0.0
    token_merging_ratio: float = Field(0.0, ge=0.0, le=0.9)
    token_merging_ratio_img2img: float = Field(0.0, ge=0.0, le=0.9)
    token_merging_ratio_hr: float = Field(0.0, ge=0.0, le=0.9)
    pad_cond_uncond: bool = False
    pad_cond_uncond_v0: bool = False
    persistent_cond_cache: bool = True
    batch_cond_uncond: bool = True
    fp8_storage: str = "Disable"
    cache_fp16_weight: bool = False
    # -- compatibility
    auto_backcompat: bool = True
    use_old_emphasis_implementation: bool = False
    use_old_karras_scheduler_sigmas: bool = False
    no_dpmpp_sde_batch_determinism: bool = False
    use_old_hires_fix_width_height: bool = False
    dont_fix_second_order_samplers_schedule: bool = False
    hires_fix_use_firstpass_conds: bool = False
    use_old_scheduling: bool = False
    use_downcasted_alpha_bar: bool = False
    refiner_switch_by_sample_steps: bool = False
    # -- interrogate
    interrogate_keep_models_in_memory: bool = False
    interrogate_return_ranks: bool = False
    interrogate_clip_num_beams: int = Field(1, ge=1, le=16)
    interrogate_clip_min_length: int = Field(24, ge=1, le=128)
    interrogate_clip_max_length: int = Field(48, ge=1, le=256)
    interrogate_clip_dict_limit: int = 1500
    interrogate_clip_skip_categories: list[str] = Field(default_factory=list)
    interrogate_deepbooru_score_threshold: float = Field(0.5, ge=0.0, le=1.0)
    deepbooru_sort_alpha: bool = True
    deepbooru_use_spaces: bool = True
    deepbooru_escape: bool = True
    deepbooru_filter_tags: str = ""
    # -- extra networks
    extra_networks_show_hidden_directories: bool = True
    extra_networks_dir_button_function: bool = False
    extra_networks_hidden_models: str = "When searched"
    extra_networks_default_multiplier: float = 1.0
    extra_networks_card_width: int = 0
    extra_networks_card_height: int = 0
    extra_networks_card_text_scale: float = 1.0
    extra_networks_card_show_desc: bool = True
    extra_networks_card_description_is_html: bool = False
    extra_networks_card_order_field: str = "Path"
    extra_networks_card_order: str = "Ascending"
    extra_networks_tree_view_default_enabled: bool = True
    extra_networks_add_text_separator: str = " "
    ui_extra_networks_tab_reorder: str = ""
    textual_inversion_print_at_load: bool = False
    textual_inversion_add_hashes_to_infotext: bool = True
    sd_hypernetwork: str = "None"
    sd_lora: str = "None"
    lora_preferred_name: str = "Alias from file"
    lora_add_hashes_to_infotext: bool = True
    # -- user interface: prompt editing
    keyedit_precision_attention: float = 0.1
    keyedit_precision_extra: float = 0.05
    keyedit_delimiters: str = ".,\\/!?%^*;:{}=`~() "
    keyedit_delimiters_whitespace: list[str] = Field(
        default_factory=lambda: ["Tab", "Carriage Return", "Line Feed"]
    )
    keyedit_move: bool = True
    disable_token_counters: bool = False
    include_styles_into_token_counters: bool = True
    # -- user interface: gallery
    return_grid: bool = True
    do_not_show_images: bool = False
    js_modal_lightbox: bool = True
    js_modal_lightbox_initially_zoomed: bool = True
    js_modal_lightbox_gamepad: bool = False
    js_modal_lightbox_gamepad_repeat: float = 250
    sd_webui_modal_lightbox_icon_opacity: float = 1
    sd_webui_modal_lightbox_toolbar_opacity: float = 0.9
    gallery_height: str = ""
    open_dir_button_choice: str = "Subdirectory"
    # -- user interface: alternatives and the rest
    compact_prompt_box: bool = False
    samplers_in_dropdown: bool = True
    dimensions_and_batch_together: bool = True
    sd_checkpoint_dropdown_use_short: bool = False
    hires_fix_show_sampler: bool = False
    hires_fix_show_prompts: bool = False
    txt2img_settings_accordion: bool = False
    img2img_settings_accordion: bool = False
    interrupt_after_current: bool = True
    localization: str = "None"
    quicksettings_list: list[str] = Field(default_factory=lambda: ["sd_model_checkpoint"])
    ui_tab_order: list[str] = Field(default_factory=list)
    hidden_tabs: list[str] = Field(default_factory=list)
    ui_reorder_list: list[str] = Field(default_factory=list)
    gradio_theme: str = "Default"
    gradio_themes_cache: bool = True
    show_progress_in_title: bool = True
    send_seed: bool = True
    send_size: bool = True
    enable_reloading_ui_scripts: bool = False
    # -- infotext
    enable_pnginfo: bool = True
    save_txt: bool = False
    add_model_name_to_info: bool = True
    add_model_hash_to_info: bool = True
    add_vae_name_to_info: bool = True
    add_vae_hash_to_info: bool = True
    add_user_name_to_info: bool = False
    add_version_to_infotext: bool = True
    disable_weights_auto_swap: bool = True
    infotext_skip_pasting: list[str] = Field(default_factory=list)
    infotext_styles: str = "Apply if any"
    # -- live previews
    show_progressbar: bool = True
    live_previews_enable: bool = True
    live_previews_image_format: Literal["png", "jpeg", "webp"] = "png"
    show_progress_grid: bool = True
    show_progress_every_n_steps: int = Field(10, ge=-1, le=32)
    show_progress_type: str = "Approx NN"
    live_preview_allow_lowvram_full: bool = False
    live_preview_content: str = "Prompt"
    live_preview_refresh_period: float = 1000
    live_preview_fast_interrupt: bool = False
    js_live_preview_in_modal_lightbox: bool = False
    prevent_screen_sleep_during_generation: bool = True
    # -- sampler parameters
    hide_samplers: list[str] = Field(default_factory=list)
    eta_ddim: float = Field(0.0, ge=0.0, le=1.0)
    eta_ancestral: float = Field(1.0, ge=0.0, le=1.0)
    ddim_discretize: Literal["uniform", "quad"] = "uniform"
    s_churn: float = Field(0.0, ge=0.0, le=100.0)
    s_tmin: float = Field(0.0, ge=0.0, le=10.0)
    s_tmax: float = Field(0.0, ge=0.0, le=999.0)
    s_noise: float = Field(1.0, ge=0.0, le=1.1)
    sigma_min: float = 0.0
    sigma_max: float = 0.0
    rho: float = 0.0
    eta_noise_seed_delta: int = Field(0, ge=0, le=MAX_ENSD)
    always_discard_next_to_last_sigma: bool = False
    sgm_noise_multiplier: bool = False
    uni_pc_variant: Literal["bh1", "bh2", "vary_coeff"] = "bh1"
    uni_pc_skip_type: Literal["time_uniform", "time_quadratic", "logSNR"] = "time_uniform"
    uni_pc_order: int = Field(3, ge=1, le=50)
    uni_pc_lower_order_final: bool = True
    sd_noise_schedule: str = "Default"
    skip_early_cond: float = Field(0.0, ge=0.0, le=1.0)
    beta_dist_alpha: float = 0.6
    beta_dist_beta: float = 0.6
    # -- postprocessing
    postprocessing_enable_in_main_ui: list[str] = Field(default_factory=list)
    postprocessing_disable_in_extras: list[str] = Field(default_factory=list)
    postprocessing_operation_order: list[str] = Field(default_factory=list)
    upscaling_max_images_in_cache: int = 5
    postprocessing_existing_caption_action: str = "Ignore"
    # -- extensions
    disabled_extensions: list[str] = Field(default_factory=list)
    disable_all_extensions: str = "none"
    restore_config_state_file: str = ""


OPTION_KEYS: frozenset[str] = frozenset(A1111Options.model_fields)

# Keys that change what Easel does (the README's table says how); the others are kept and returned only.
HONOURED: dict[str, str] = {
    "sd_model_checkpoint": "the caller's model for requests that name none",
    "sd_checkpoint_hash": "read only: the short hash of the caller's model (once a job has used it)",
    "sd_vae": "the VAE decoding (and encoding) the caller's pictures: a name from /sd-vae, Automatic or None",
    "CLIP_stop_at_last_layers": "clip skip: the text encoder stops this many layers before its last",
    "eta_noise_seed_delta": "added to the seed of ancestral samplers' step noise (ENSD)",
    "samples_format": "the format of the pictures the API answers with (png, jpg or webp)",
    "jpeg_quality": "quality of jpg and lossy webp answers",
    "webp_lossless": "webp answers are lossless",
    "enable_pnginfo": "false: answers carry no generation parameters",
}

# Keys that belong to the server, not one person: only admins may change them.
SERVER_WIDE: frozenset[str] = frozenset(
    {
        *(key for key in OPTION_KEYS if key.startswith(("outdir_", "api_", "training_"))),
        "samples_filename_pattern",
        "save_to_dirs",
        "grid_save_to_dirs",
        "use_save_to_dirs_for_ui",
        "directories_filename_pattern",
        "directories_max_prompt_words",
        "temp_dir",
        "clean_temp_dir_at_start",
        "sd_checkpoints_limit",
        "sd_checkpoints_keep_in_cpu",
        "sd_checkpoint_cache",
        "sd_vae_checkpoint_cache",
        "memmon_poll_rate",
        "samples_log_stdout",
        "multiple_tqdm",
        "enable_console_prompts",
        "auto_launch_browser",
        "disable_mmap_load_safetensors",
        "dump_stacks_on_signal",
        "unload_models_when_training",
        "pin_memory",
        "cross_attention_optimization",
        "fp8_storage",
        "cache_fp16_weight",
        "upcast_attn",
        "enable_quantization",
        "disabled_extensions",
        "disable_all_extensions",
        "restore_config_state_file",
        "localization",
        "gradio_theme",
        "gradio_themes_cache",
    }
)

# Derived from other state; a client may send them back (as read) and nothing changes.
READ_ONLY: frozenset[str] = frozenset({"sd_checkpoint_hash"})

DEFAULTS: dict[str, Any] = A1111Options().model_dump()


def unknown_keys(values: dict[str, Any]) -> list[str]:
    """The keys of `values` that are not A1111 options, sorted."""
    return sorted(set(values) - OPTION_KEYS)
