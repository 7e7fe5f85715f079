"""``pipdelta serve``: the delta index over HTTP, with the upgrade query and on-demand deltas."""
