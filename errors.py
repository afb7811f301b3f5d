"""The one base class of every error whose message is written for the user.

Everything the user may be told derives from :class:`GesturaError`: its message is one sentence
naming the problem and what to do. The command line prints it as ``gestura <cmd>: error: ...``,
the operators report it in Blender's status bar, ``blender_batch.py`` on the file's line; any
other exception is a bug and keeps its traceback. Subclasses keep their historical builtin base
(``ValueError``, ``RuntimeError``) as a second base, so existing ``except ValueError`` stays true.

No imports: every layer (rigs, inference, training, the Blender layer, commands) imports this.
"""


class GesturaError(Exception):
    """A failure the user can fix; its message is one sentence for them, shown without a traceback."""


class CommandError(GesturaError):
    """A command-line argument or input that cannot be used (raised by the commands and the library they call)."""
