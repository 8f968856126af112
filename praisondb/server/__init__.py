"""``praisondb serve``: an ASGI application over one :class:`~praisondb.PraisonDB`.

Importing this package imports no web framework: :mod:`.wire` (the JSON spelling of
records and errors, shared with the client store in :mod:`praisondb.stores.http`) is
plain Python; :mod:`.app` needs the ``server`` extra (Starlette, uvicorn).
"""
