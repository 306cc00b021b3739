"""The whole schema in one metadata, for Alembic and the start-up schema check: the core
tables (storage/models.py) with the lead lists' and the sending tools' beside them."""

from storage import lead_models, sending_models
from storage.models import metadata

__all__ = ["lead_models", "metadata", "sending_models"]
