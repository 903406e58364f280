"""sdxl_client — a typed Python client for sdxld (sdxl.v1.ImageGeneration)."""
from sdxl_client.client import (Client, Event, Image, Progress, Queued, Result, SdxlError)

__all__ = ["Client", "Event", "Image", "Progress", "Queued", "Result", "SdxlError"]
