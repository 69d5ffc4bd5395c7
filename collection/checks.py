"""System checks of the collection app's limits."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def batch_limit_fits_body_limit(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The largest batch the API advertises must fit the request body limit (else it would be
    refused before validation, and the two limits would say different things)."""
    from .serializers import MAX_BATCH_SAMPLES, batch_body_bytes_bound

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    need = batch_body_bytes_bound(MAX_BATCH_SAMPLES)
    if limit is not None and limit < need:
        return [Error(
            f"DATA_UPLOAD_MAX_MEMORY_SIZE ({limit}) is smaller than a batch of MAX_BATCH_SAMPLES "
            f"({MAX_BATCH_SAMPLES}) samples ({need} bytes)",
            hint="Raise IFLLM_MAX_BODY_BYTES or lower collection.serializers.MAX_BATCH_SAMPLES.",
            id="collection.E001",
        )]
    return []
