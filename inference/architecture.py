"""The model's module tree as tensor names and shapes, without torch.

This is the contract between the checkpoint, the PyTorch model (``torch_model``, whose
``state_dict()`` has exactly these names and shapes - a test checks it) and the NumPy engine,
which mirrors the same modules name for name. ``checkpoint.load_checkpoint`` uses it to reject
files whose tensors do not fit their config.

Module tree (``P`` = part in face/upper/hands/lower, ``K`` codebook size, ``D`` code dim,
``d`` = d_model, ``di`` = expand * d, ``N`` = d_state, ``R`` = dt_rank, ``F`` = feature dim,
``r`` = frames per code, ``L`` = look-ahead in frames, ``h`` = vq_hidden).
All sequences are (batch, time, channels); every convolution is causal (left zero padding of
kernel-1 frames, so frame t sees frames <= t only); LeakyReLU slope 0.2.

    vq.P  PartVQVAE                    (stage 1; one per part, input width PART_DIMS[P])
      encoder  ConvStack(PART_DIMS[P] -> h -> h)      at 30 fps
      down     Conv1d(h, D, k=r, stride=r)            r frames -> one latent
      codebook.weight (K, D)           nearest neighbour (squared L2), ties to the lowest index
      up       ConvTranspose1d(D, h, k=r, stride=r)   one code -> r frames (weight (D, h, r))
      plan_in  Linear(1, h)                           (config.plan_decoders, P in PLAN_DECODER_PARTS only)
                                                      frames = up(codes) + plan_in(a_t): the stroke plan
                                                      a (below) of each frame, 0 where none is given
      decoder  ConvStack(h -> h -> PART_DIMS[P])      its output at frame t + l is frame t, where l =
                                                      config.decoder_lookahead[P] (0 to r frames)
    gmp   GlobalMotionPredictor        (stage 1; lower rot6d 54 + contacts 4 -> lower[54:57])
      net      ConvStack(58 -> gmp_hidden -> 3)
    ConvStack(in -> h -> out), L = layers:
      proj_in   Conv1d(in, h, k=3)                 x = proj_in(x)
      blocks.i  conv Conv1d(h,h,3), res_a Conv1d(h,h,3), res_b Conv1d(h,h,1)
                x = lrelu(conv(x)); x = x + res_b(lrelu(res_a(lrelu(x))))
      proj_out  Conv1d(h, out, k=1)                y = proj_out(x)
    generator  Generator               (stage 2, the span generator)
      audio_in        Linear(F, d)                 s = audio_in(features)          causal, per audio frame
      speech.i        MambaBlock(d)                s = speech.i(s)
      speech_norm     RMSNorm(d)                   s = speech_norm(s)
      speech_window.i BiMambaBlock(d)              w = speech_window(s over a window)  codes' frames + L
      (frame pairs)                                p_t = concat(w[t], w[t + L])    the instant and 1 s later
      style.weight    (num_styles, d)              e = style[style_id] (the mean for no style)
      apex            Linear(3d, 1)                stroke-apex logit of motion frame t = apex(concat(p_t, e))
      (stroke plan)                                a = bumps at the apex logits' peaks above apex_threshold, or
                                                   lower for an unsure voice (apex_rates, StrokeRate)
                                                   (training: at the corpus's apexes; stroke_plan.py)
      code_in         Linear(r (2d + 1), d)        c_k = code_in(p of frames rk .. rk+r, a of them)
      mask_latent     (4, D)                       the latent of an unknown code
      part_in.P       Linear(D, d)                 x_P = part_in.P(latent of P's known code)
      global_blocks.i BiMambaBlock(d)              g = global_blocks(c + e' + sum_P x_P)   over the span;
                                                   e' = mean + style strength (e - mean) in generation
      global_norm     RMSNorm(d)
      local.P.i       BiMambaBlock(d)              y = local.P(global_norm(g) + x_P)
      out_norm.P      RMSNorm(d)
      logits.P        Linear(d, K)                 code logits of part P at each code of the span
      planner         StrokePlanner                (config.stroke_planner only) audio_in, speech.i,
                                                   speech_norm, speech_window.i, style, apex as above, its
                                                   own: its apex logits make the plan in place of apex's;
                                                   its audio_in Linear(F + 2, d) with config.planner_pitch
                                                   (voicing and pitch after the F speech features)
    MambaBlock(d): x = x + mixer(norm(x)); if mlp: x = x + mlp(norm2(x))
    BiMambaBlock(d): h = norm(x); x = x + mixer(h) + flip(mixer_back(flip(h))); then the MLP as above
    GranularBiMambaBlock(d) (in place of a scan's BiMambaBlocks where config.granularities gives
      that scan - window, global or local - pooling factors f_1..f_G other than (1,)):
      h = norm(x); w = 2 sigmoid(fuse(h))   fuse Linear(d, G)
      x = x + sum_i w_i * unpool_fi(scales.i.mixer(p_i) + flip(scales.i.mixer_back(flip(p_i))))
      where p_i = pool_fi(h): means of groups of f_i steps from the sequence's first step (the last
      group may be shorter), unpool repeats each group's value on its steps; the scales' mixers
      have di / G inner channels; then the MLP as above
      norm, norm2     RMSNorm(d): x * weight / sqrt(mean(x^2) + 1e-5)
      mixer, mixer_back  Mamba (mamba-ssm v1 names):
        in_proj Linear(d, 2di, no bias) -> u, z
        conv1d  depthwise Conv1d(di, di, d_conv, groups=di) causal, bias; u = silu(conv1d(u))
        x_proj  Linear(di, R + 2N, no bias) -> dt_low, B, C
        dt_proj Linear(R, di); dt = softplus(dt_proj(dt_low))
        A_log (di, N), A = -exp(A_log); D (di,)
        h_t = exp(dt_t A) * h_{t-1} + dt_t B_t u_t ;  y_t = C_t . h_t + D u_t
        out_proj Linear(di, d, no bias)(y * silu(z))
      mlp             gated MLP: fc1 Linear(d, 2h, no bias) -> a, b; fc2 Linear(h, d, no bias)(silu(a) * b)

    generator  DiffusionGenerator      (stage 2 of the "dim-gestor" family, in place of the above;
                                       C = 4 D, the parts' latents side by side; torch_model/diffusion.py)
      audio_in        Linear(F, d)                 s = audio_in(features of a window's frames + L)
      speech.i        SpeechBlock(d)               s = s + mixer(norm(s)) + flip(mixer_back(flip(norm(s))));
                                                   s = s + mlp(norm2(s))      (Mamba2 mixers, RMSNorm)
      speech_norm     RMSNorm(d)
      cond_in         Linear(r 2d, d)              c_k = cond_in(s of code k's r frames and of the r frames L later)
                      (Linear(r (2d + 1), d)       and, with config.stroke_planner, the stroke plan at its r frames)
      planner         StrokePlanner                (config.stroke_planner only) as the vq-mamba generator's
      voice_style     Linear(d, d)                 v = voice_style(mean of s over the window)
      style.weight    (num_styles, d)              e = v + style[id] (v alone when no style is asked for)
      time_in, time_out  Linear(128, d), Linear(d, d)   tau = time_out(silu(time_in(sinusoids of 1000 t)))
      x_in            Linear(2C + 4, d)            h = x_in(concat(x_t, known * mask, per-part mask))
                                                   (+ sinusoidal positions for attention blocks)
      blocks.i        AdaLNBlock(d)                per token a = c_k + tau + e;
                      ada Linear(d, 6d)            shift1, scale1, gate1, shift2, scale2, gate2 = ada(silu(a))
                      mixer, mixer_back Mamba2     h = h + gate1 * mix(LN(h) (1 + scale1) + shift1)
                      (or attn: qkv Linear(d, 3d), out Linear(d, d), attention_heads heads)
                      mlp (gated, as below)        h = h + gate2 * mlp(LN(h) (1 + scale2) + shift2)
                                                   LN: LayerNorm without parameters (eps 1e-6)
      final_ada       Linear(d, 2d)                shift, scale = final_ada(silu(a))
      x_out           Linear(d, C)                 x0 = x_out(LN(h) (1 + scale) + shift): the clean latents
      latent_mean, latent_std (C,)                 what normalises the latents (measured on the training data)
    Mamba2 (mamba-ssm's Mamba2 names; di = expand d, H = di / headdim, N = mamba2_d_state, one group):
      in_proj Linear(d, 2di + 2N + H, no bias) -> z, xBC, dt; conv1d depthwise causal over xBC
      (di + 2N channels, d_conv, bias), silu; dt = softplus(dt + dt_bias (H,)); A = -exp(A_log (H,));
      D (H,); y = SSD scan (per head scalar decay); norm.weight (di,): rmsnorm(y silu(z)) * weight;
      out_proj Linear(di, d, no bias)

Linear weights are (out, in) as in torch; Conv1d weights are (out, in/groups, kernel).
The latent of code k of part P is ``vq.P.codebook.weight[k]``; unknown codes (still to be
generated, or of parts that are switched off) read ``mask_latent[part index]``.
"""
from __future__ import annotations

from ..rigs.skeleton import PART_DIMS, PARTS
from .diffusion import TIME_FEATURES

PLAN_DECODER_PARTS = ("upper", "hands")  # the decoders that read the stroke plan (config.plan_decoders)
GMP_INPUT = 58  # lower-body rot6d (54) + 4 foot contacts
GMP_OUTPUT = 3  # lower[54:57]: root x velocity, height, z velocity (normalised)
CONV_KERNEL = 3
LEAKY_SLOPE = 0.2
NORM_EPS = 1e-5
ADALN_EPS = 1e-6  # DiT's parameter-free LayerNorm before adaLN's shift and scale


def conv_stack_shapes(prefix: str, in_dim: int, hidden: int, out_dim: int, layers: int) -> dict:
    k = CONV_KERNEL
    shapes = {f"{prefix}.proj_in.weight": (hidden, in_dim, k), f"{prefix}.proj_in.bias": (hidden,)}
    for i in range(layers):
        for name, kernel in (("conv", k), ("res_a", k), ("res_b", 1)):
            shapes[f"{prefix}.blocks.{i}.{name}.weight"] = (hidden, hidden, kernel)
            shapes[f"{prefix}.blocks.{i}.{name}.bias"] = (hidden,)
    shapes[f"{prefix}.proj_out.weight"] = (out_dim, hidden, 1)
    shapes[f"{prefix}.proj_out.bias"] = (out_dim,)
    return shapes


def mixer_shapes(prefix: str, config, d_inner: int) -> dict:
    d, di, n, r = config.d_model, d_inner, config.d_state, config.dt_rank_value
    return {
        f"{prefix}.in_proj.weight": (2 * di, d),
        f"{prefix}.conv1d.weight": (di, 1, config.d_conv),
        f"{prefix}.conv1d.bias": (di,),
        f"{prefix}.x_proj.weight": (r + 2 * n, di),
        f"{prefix}.dt_proj.weight": (di, r),
        f"{prefix}.dt_proj.bias": (di,),
        f"{prefix}.A_log": (di, n),
        f"{prefix}.D": (di,),
        f"{prefix}.out_proj.weight": (d, di),
    }


def residual_block_shapes(prefix: str, config, mixers: dict) -> dict:
    """A pre-norm block's norm, the given mixer shapes and its gated MLP."""
    d = config.d_model
    shapes = {f"{prefix}.norm.weight": (d,), **mixers}
    if config.mlp_hidden > 0:
        h = config.mlp_hidden
        shapes[f"{prefix}.norm2.weight"] = (d,)
        shapes[f"{prefix}.mlp.fc1.weight"] = (2 * h, d)
        shapes[f"{prefix}.mlp.fc2.weight"] = (d, h)
    return shapes


def mamba_block_shapes(prefix: str, config) -> dict:
    return residual_block_shapes(prefix, config, mixer_shapes(f"{prefix}.mixer", config, config.d_inner))


def stage1_shapes(config) -> dict:
    shapes = {}
    hidden, code_dim, r = config.vq_hidden, config.code_dim, config.frames_per_code
    for part in PARTS:
        dim, layers = PART_DIMS[part], config.vq_layers[part]
        shapes.update(conv_stack_shapes(f"vq.{part}.encoder", dim, hidden, hidden, layers))
        shapes[f"vq.{part}.down.weight"] = (code_dim, hidden, r)
        shapes[f"vq.{part}.down.bias"] = (code_dim,)
        shapes[f"vq.{part}.codebook.weight"] = (config.codebook_size, code_dim)
        shapes[f"vq.{part}.up.weight"] = (code_dim, hidden, r)
        shapes[f"vq.{part}.up.bias"] = (hidden,)
        if config.plan_decoders and part in PLAN_DECODER_PARTS:
            shapes.update(linear_shapes(f"vq.{part}.plan_in", hidden, 1))
        shapes.update(conv_stack_shapes(f"vq.{part}.decoder", hidden, hidden, dim, layers))
    shapes.update(conv_stack_shapes("gmp.net", GMP_INPUT, config.gmp_hidden, GMP_OUTPUT, config.gmp_layers))
    return shapes


def bi_mamba_block_shapes(prefix: str, config, factors=(1,)) -> dict:
    """A bidirectional block: ``BiMambaBlock`` for factors (1,), else ``GranularBiMambaBlock``
    (one mixer pair of ``d_inner / G`` channels per pooling factor)."""
    if tuple(factors) == (1,):
        di = config.d_inner
        return residual_block_shapes(prefix, config, {**mixer_shapes(f"{prefix}.mixer", config, di),
                                                      **mixer_shapes(f"{prefix}.mixer_back", config, di)})
    count = len(factors)
    di = config.d_inner // count
    mixers = {}
    for i in range(count):
        mixers.update(mixer_shapes(f"{prefix}.scales.{i}.mixer", config, di))
        mixers.update(mixer_shapes(f"{prefix}.scales.{i}.mixer_back", config, di))
    mixers[f"{prefix}.fuse.weight"] = (count, config.d_model)
    mixers[f"{prefix}.fuse.bias"] = (count,)
    return residual_block_shapes(prefix, config, mixers)


def speech_scans_shapes(prefix: str, config, in_dim: int) -> dict:
    """What the apex head hears, under ``prefix``: the causal speech encoder reading ``in_dim``
    feature columns, the window scan, the style embedding and the apex head (the generator's own,
    and the stroke planner's)."""
    d = config.d_model
    shapes = {f"{prefix}.audio_in.weight": (d, in_dim), f"{prefix}.audio_in.bias": (d,)}
    for i in range(config.speech_layers):
        shapes.update(mamba_block_shapes(f"{prefix}.speech.{i}", config))
    shapes[f"{prefix}.speech_norm.weight"] = (d,)
    for i in range(config.speech_window_layers):
        shapes.update(bi_mamba_block_shapes(f"{prefix}.speech_window.{i}", config, config.granularities["window"]))
    shapes[f"{prefix}.apex.weight"] = (1, 3 * d)
    shapes[f"{prefix}.apex.bias"] = (1,)
    shapes[f"{prefix}.style.weight"] = (config.num_styles, d)
    return shapes


def generator_shapes(config) -> dict:
    d, code_dim, k, r = config.d_model, config.code_dim, config.codebook_size, config.frames_per_code
    g = "generator"
    shapes = speech_scans_shapes(g, config, config.feature_dim)
    if config.stroke_planner:
        shapes.update(speech_scans_shapes(f"{g}.planner", config, config.input_width))
    shapes[f"{g}.code_in.weight"] = (d, r * (2 * d + 1))
    shapes[f"{g}.code_in.bias"] = (d,)
    shapes[f"{g}.mask_latent"] = (len(PARTS), code_dim)
    for part in PARTS:
        shapes[f"{g}.part_in.{part}.weight"] = (d, code_dim)
        shapes[f"{g}.part_in.{part}.bias"] = (d,)
    for i in range(config.global_layers):
        shapes.update(bi_mamba_block_shapes(f"{g}.global_blocks.{i}", config, config.granularities["global"]))
    shapes[f"{g}.global_norm.weight"] = (d,)
    for part in PARTS:
        for i in range(config.local_layers[part]):
            shapes.update(bi_mamba_block_shapes(f"{g}.local.{part}.{i}", config, config.granularities["local"]))
        shapes[f"{g}.out_norm.{part}.weight"] = (d,)
        shapes[f"{g}.logits.{part}.weight"] = (k, d)
        shapes[f"{g}.logits.{part}.bias"] = (k,)
    return shapes


def gated_mlp_shapes(prefix: str, config) -> dict:
    h = config.mlp_hidden
    return {f"{prefix}.fc1.weight": (2 * h, config.d_model), f"{prefix}.fc2.weight": (config.d_model, h)}


def linear_shapes(prefix: str, out_dim: int, in_dim: int) -> dict:
    return {f"{prefix}.weight": (out_dim, in_dim), f"{prefix}.bias": (out_dim,)}


def diffusion_generator_shapes(config) -> dict:
    """Stage 2 of the "dim-gestor" family (``torch_model/diffusion.py``)."""
    d, c, r = config.d_model, config.latent_dim, config.frames_per_code
    g = "generator"

    def mixer_pair(prefix: str) -> dict:
        shapes = {}
        for name in ("mixer", "mixer_back"):
            shapes.update(mamba2_mixer_shapes(f"{prefix}.{name}.", d, config.mamba2_d_state, config.d_conv,
                                              config.expand, config.headdim, 1))
        return shapes

    shapes = linear_shapes(f"{g}.audio_in", d, config.feature_dim)
    for i in range(config.speech_layers):
        p = f"{g}.speech.{i}"
        shapes.update({f"{p}.norm.weight": (d,), f"{p}.norm2.weight": (d,)})
        shapes.update(mixer_pair(p))
        shapes.update(gated_mlp_shapes(f"{p}.mlp", config))
    shapes[f"{g}.speech_norm.weight"] = (d,)
    shapes.update(linear_shapes(f"{g}.cond_in", d, r * (2 * d + (1 if config.stroke_planner else 0))))
    if config.stroke_planner:
        shapes.update(speech_scans_shapes(f"{g}.planner", config, config.input_width))
    shapes.update(linear_shapes(f"{g}.voice_style", d, d))
    shapes[f"{g}.style.weight"] = (config.num_styles, d)
    shapes.update(linear_shapes(f"{g}.time_in", d, TIME_FEATURES))
    shapes.update(linear_shapes(f"{g}.time_out", d, d))
    shapes.update(linear_shapes(f"{g}.x_in", d, 2 * c + len(PARTS)))
    for i in range(config.denoiser_layers):
        p = f"{g}.blocks.{i}"
        shapes.update(linear_shapes(f"{p}.ada", 6 * d, d))
        if config.denoiser_block == "mamba2":
            shapes.update(mixer_pair(p))
        else:
            shapes.update(linear_shapes(f"{p}.attn.qkv", 3 * d, d))
            shapes.update(linear_shapes(f"{p}.attn.out", d, d))
        shapes.update(gated_mlp_shapes(f"{p}.mlp", config))
    shapes.update(linear_shapes(f"{g}.final_ada", 2 * d, d))
    shapes.update(linear_shapes(f"{g}.x_out", c, d))
    shapes[f"{g}.latent_mean"] = (c,)
    shapes[f"{g}.latent_std"] = (c,)
    return shapes


def tensor_shapes(config, stage: str = "full") -> dict:
    """Every weight tensor a checkpoint of ``stage`` ("vq" or "full") holds, name -> shape."""
    shapes = stage1_shapes(config)
    if stage == "full":
        shapes.update(generator_shapes(config) if config.family == "vq-mamba" else diffusion_generator_shapes(config))
    elif stage != "vq":
        raise ValueError(f"unknown checkpoint stage '{stage}': expected 'vq' or 'full'")
    return shapes


def parameter_count(config, stage: str = "full") -> int:
    total = 0
    for shape in tensor_shapes(config, stage).values():
        n = 1
        for s in shape:
            n *= s
        total += n
    return total


def mamba2_mixer_shapes(prefix: str, d_model: int, d_state: int, d_conv: int, expand: int, headdim: int,
                        ngroups: int) -> dict:
    """A Mamba-2 mixer (``torch_model.mamba2.Mamba2``, mamba-ssm's ``Mamba2`` names), each name
    ``prefix + name`` (prefix "blocks.0.mixer." gives "blocks.0.mixer.in_proj.weight"): di = expand
    d, H = di / headdim heads, g = ngroups groups of B and C, conv over di + 2 g N channels."""
    di = expand * d_model
    nheads, conv_dim = di // headdim, di + 2 * ngroups * d_state
    return {
        f"{prefix}dt_bias": (nheads,),
        f"{prefix}A_log": (nheads,),
        f"{prefix}D": (nheads,),
        f"{prefix}in_proj.weight": (2 * di + 2 * ngroups * d_state + nheads, d_model),
        f"{prefix}conv1d.weight": (conv_dim, 1, d_conv),
        f"{prefix}conv1d.bias": (conv_dim,),
        f"{prefix}norm.weight": (di,),
        f"{prefix}out_proj.weight": (d_model, di),
    }
