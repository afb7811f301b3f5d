"""A synthetic co-speech corpus: espeak-ng speech over generated English text, and a procedural
gesture synthesizer that turns each waveform into SMPL-X motion, written in the BEAT2 layout.

The bundled default model is trained on it (see ``weights/MODEL_CARD.md``). Nothing here is
inference code: it is not part of the Blender extension zip.
"""
