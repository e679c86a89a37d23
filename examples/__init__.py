"""Example models for ``--model PACKAGE.MODULE:FACTORY`` (see docs/user-models.md)."""
