"""Speech-to-gesture inference. No bpy here, and no torch at import time.

Audio loading and features, the checkpoint, the model (torch and NumPy engines) and the
generation pipeline. Torch is imported only when a torch engine is used.
"""
