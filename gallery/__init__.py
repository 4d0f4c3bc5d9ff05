"""Generated images on disk (the source of truth) and their SQLite index."""

from gallery.records import GalleryImage, ImageNotFound
from gallery.store import Gallery

__all__ = ["Gallery", "GalleryImage", "ImageNotFound"]
