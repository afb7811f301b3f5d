"""The NumPy model: ``torch_model`` written with numpy alone, file for file (layers, mamba,
mamba2, vqvae, generator, diffusion, model), so that the NumPy engine runs in any Blender with
nothing installed.

Arrays are time-major and float32 throughout (as torch on the CPU): a sequence is (T, channels),
with leading batch axes where several sequences run at once (the span generator runs all asked
styles as (styles, n, channels)). Streaming state follows ``torch_model``: modules take
``(x, state)`` and return ``(y, new_state)``, ``None`` = zero history; a causal convolution's
state is its last ``kernel - 1`` inputs (..., kernel - 1, in_channels).
"""
