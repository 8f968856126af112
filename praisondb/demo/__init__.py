"""``praisondb demo``: what the library does, shown end to end on embedded defaults.

``steps`` runs the demo, ``context`` is what its steps share, ``managed`` is the
managed-agent step, and ``fake_server`` the local stand-in for Anthropic's API that the
demo (and the tests) use when no ``ANTHROPIC_API_KEY`` is set.
"""
