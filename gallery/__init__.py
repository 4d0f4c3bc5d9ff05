"""Generated images on disk (the source of truth) and their SQLite index."""

from gallery.query import MAX_PAGE, GalleryPage, GalleryQuery
from gallery.records import GalleryImage, ImageNotFound
from gallery.store import Gallery, private_paths
from gallery.thumbs import THUMB_SIZES

__all__ = [
    "MAX_PAGE",
    "THUMB_SIZES",
    "Gallery",
    "GalleryImage",
    "GalleryPage",
    "GalleryQuery",
    "ImageNotFound",
    "private_paths",
]
