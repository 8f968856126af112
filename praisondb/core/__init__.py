"""The session layer: repositories and ``Session`` on a narrow port (:mod:`.port`).

Nothing here imports the facade or a store: what the layer needs from a
:class:`~praisondb.PraisonDB` is spelled out in :class:`~.port.DataPort`, so another
face (async, a remote client) can serve it too.
"""
