"""The ``gestura`` sub-commands, one module each, named after the command (``train-vq`` ->
``train_vq.py``). Each provides ``add_arguments(parser)`` and ``run(args) -> int`` and is a thin
entry into library code (``inference/``, ``rigs/``, ``training/``); the library never imports them.
A command module must be cheap to import (no torch, no bpy at module level): ``gestura --help``
imports all of them. Option groups two entry points share live in ``generation_options.py``
(``gestura generate`` and ``blender_batch.py``) and ``training_options.py`` (the training commands).
"""
