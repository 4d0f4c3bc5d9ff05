"""The Studio: the container that builds the services both front ends call and holds them.

Each service is a small class that receives its collaborators here (InvokeAI's `InvocationServices` is the
model); the UI and the API call the service they need:

- `catalog`: models, LoRAs, embeddings, VAEs, retouch tools, status; each user's preferred model
- `resolver`: a request resolved once, at submit (model, styles, LoRAs, hires upscaler, tools, seeds)
- `jobs`: the fair queue, the worker, submit, cancel, progress
- `groups`: X/Y/Z plots, variations, prompts files (consecutive jobs of one user)
- `pictures`: gallery changes with ownership (star, delete, restore, trash)
- `presets`: preset and style changes with ownership
- `roles`: who is an admin
- `gallery`, `presets_book`, `options`: the gallery, the presets and styles, the A1111 options (read directly)
"""

from __future__ import annotations

from core.backend import Backend
from core.presets import PresetBook
from core.users import UserBook
from gallery.store import Gallery
from studio.catalog import Catalog
from studio.groups import Groups
from studio.options import OPTIONS_FILE, OptionsStore
from studio.pictures import Pictures
from studio.presets import Presets
from studio.resolve import Resolver
from studio.roles import LOCAL_USER, Roles
from studio.worker import Jobs

__all__ = ["LOCAL_USER", "Studio"]


class Studio:
    """One backend (one device), the gallery and the presets, with the services over them."""

    def __init__(
        self,
        backend: Backend,
        gallery: Gallery,
        *,
        queue_size: int = 32,
        presets: PresetBook | None = None,
        users: UserBook | None = None,
        max_queued_per_user: int | None = 4,
        max_batch: int | None = 1,
    ) -> None:
        self.backend = backend
        self.gallery = gallery
        self.presets_book = presets or PresetBook(None, None)
        self.options = OptionsStore(gallery.outputs_dir / OPTIONS_FILE)  # A1111 options, per user
        self.roles = Roles(users or UserBook())
        self.catalog = Catalog(backend)
        self.resolver = Resolver(self.catalog, self.presets_book)
        self.jobs = Jobs(
            backend,
            gallery,
            self.resolver,
            self.roles,
            queue_size=queue_size,
            max_queued_per_user=max_queued_per_user,
            max_batch=max_batch,
        )
        self.groups = Groups(self.jobs, self.resolver, self.catalog, gallery, self.presets_book)
        self.pictures = Pictures(gallery, self.roles)
        self.presets = Presets(self.presets_book, self.roles)

    def start(self) -> None:
        """Start the worker."""
        self.jobs.start()

    def close(self) -> None:
        """Stop the worker: the running job is cancelled, waiting ones stay unrun; then the backend's own
        threads, when it has any."""
        self.jobs.close()
        close_backend = getattr(self.backend, "close", None)
        if close_backend is not None:
            close_backend()
