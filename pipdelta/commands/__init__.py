"""The command line, one module per area; each adds its subcommands with ``register``."""
