"""``pipdelta demo``: a whole upgrade through an embedded mirror and delta index, all on 127.0.0.1."""
