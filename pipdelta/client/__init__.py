"""The client: upgrade an environment with wheel patches, pip in charge of resolving and installing."""
