"""One short flow per action; each takes a lifecycle ``Context`` and returns a ``FlowResult``."""
