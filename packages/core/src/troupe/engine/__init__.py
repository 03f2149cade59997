"""The machinery a plugin never imports: watches, caches, the work queue, apply, status writes, the runtime.

Plugins see it only through the public names of :mod:`troupe` and the :class:`~troupe.OperatorHandle`.
"""
