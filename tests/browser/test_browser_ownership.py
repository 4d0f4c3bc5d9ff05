"""A teammate attacking others' work through the real page (Chromium, logged in): deleting someone else's
pictures, emptying the trash, renaming or deleting their preset, importing a styles.csv that redefines a shipped
style. Each attempt is an error toast, and nothing of the victim's changes on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client

from core.presets import Preset
from core.styles import Style, write_styles_csv
from tests.browser.pages import (
    chromium,
    close_toasts,
    new_page,
    open_accordion,
    pick,
    require_chromium,
    search_gallery,
    shot,
)
from tests.helpers import served_app

require_chromium()

PASSWORDS = {"alice": "wonderland", "bob": "builder", "boss": "bigboss"}
SHIPPED_STYLE = "Flat vector logo"


@pytest.fixture(scope="module")
def team(tiny_models_dir, tmp_path_factory):
    auth = tmp_path_factory.mktemp("auth") / "users.txt"
    auth.write_text("alice:wonderland\nbob:builder\nboss:bigboss:admin\n")
    with served_app(tiny_models_dir, tmp_path_factory.mktemp("outputs"), auth_file=[auth]) as app:
        yield app


def _generate(url: str, user: str, prompt: str, **fields) -> dict:
    client = Client(url, auth=(user, PASSWORDS[user]), verbose=False)
    try:
        return client.predict(
            prompt=prompt, steps=2, width=64, height=64, seed=7, api_name="/txt2img", **fields
        )
    finally:
        client.close()


def _login(browser, url: str, user: str):
    page = new_page(browser)
    page.goto(url)
    page.locator("input[type=text]").first.fill(user)
    page.locator("input[type=password]").first.fill(PASSWORDS[user])
    page.keyboard.press("Enter")
    page.wait_for_selector("#txt2img_generate")
    return page


def _toast(page, text: str) -> str:
    toast = page.locator(".toast-body", has_text=text).first
    toast.wait_for()
    said = toast.inner_text()
    close_toasts(page)
    return said


def _open_only(page, word: str) -> None:
    """Show the one gallery picture whose prompt has `word`, and pick it."""
    search_gallery(page, word)
    page.wait_for_function("document.querySelector('#gallery_page')?.innerText.includes('· 1 image')")
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function(f"document.querySelector('#gallery_details textarea')?.value.includes({word!r})")


def test_a_teammate_cannot_delete_others_pictures_or_empty_their_trash(team):
    app, url = team
    studio, outputs = app.studio, app.studio.gallery.outputs_dir
    kept_id = _generate(url, "alice", "alicekeeps a fox logo")["ids"][0]
    trashed_id = _generate(url, "alice", "alicetrashed a fox logo")["ids"][0]
    bobs_id = _generate(url, "bob", "bobsown a bear logo")["ids"][0]
    kept = studio.gallery.file_path(kept_id)
    kept_bytes = kept.read_bytes()
    (alice_key,) = studio.pictures.delete_images([trashed_id], user="alice")  # waits in her trash
    alice_trash = outputs / ".trash" / alice_key
    alice_trash_bytes = alice_trash.read_bytes()

    with chromium() as browser:
        bob = _login(browser, url, "bob")
        bob.click("#tab_gallery-button")
        bob.wait_for_selector("#gallery_grid img")
        assert not bob.locator("#gallery_trash_everyone").is_visible()  # the admins' box is not his

        # 1. pick her picture, Delete
        _open_only(bob, "alicekeeps")
        bob.click("#gallery_delete")
        said = _toast(bob, "Not allowed")
        assert "alice's" in said and "only a picture's author or an admin" in said
        shot(bob, "ownership-delete-refused")

        # 2. tick it under "Select several", Delete
        open_accordion(bob, title="Select several")
        bob.locator("#gallery_selection label", has_text=f"#{kept_id} ").first.click()
        bob.click("#gallery_delete_selected")
        assert "alice's" in _toast(bob, "Not allowed")
        assert kept.read_bytes() == kept_bytes and studio.gallery.get(kept_id).author == "alice"

        # 3. his own picture goes to his trash; Empty trash empties his trash only
        _open_only(bob, "bobsown")
        bob.click("#gallery_delete")
        _toast(bob, "Moved 1 image(s) to the trash")
        bob.click("#gallery_empty_trash")
        assert "from your trash" in _toast(bob, "for good")
        assert studio.pictures.trash_count(user="bob") == 0
        assert alice_trash.read_bytes() == alice_trash_bytes  # hers is untouched
        assert kept.read_bytes() == kept_bytes
        with pytest.raises(KeyError):
            studio.gallery.get(bobs_id)

        # 4. an admin sees the box, and may empty everyone's trash
        boss = _login(browser, url, "boss")
        boss.click("#tab_gallery-button")
        boss.wait_for_selector("#gallery_trash_everyone", state="visible")
        boss.locator("#gallery_trash_everyone input").check()
        boss.click("#gallery_empty_trash")
        assert "1 image(s) from everyone's trash" in _toast(boss, "for good")
        assert not alice_trash.exists() and kept.read_bytes() == kept_bytes


def test_a_teammate_cannot_change_others_presets_or_redefine_a_shipped_style(team, tmp_path: Path):
    app, url = team
    studio = app.studio
    preset_file = studio.presets.save_preset(
        Preset(name="Alice banner", steps=12, aspect="16:9"), user="alice"
    )
    preset_bytes = preset_file.read_bytes()
    hijack = tmp_path / "styles.csv"
    hijack.write_bytes(write_styles_csv([Style(name=SHIPPED_STYLE, prompt="{prompt}, visit evil.example")]))
    store = studio.presets_book.user_dir / "styles.csv"

    with chromium() as browser:
        bob = _login(browser, url, "bob")
        open_accordion(bob, "txt2img_presets_panel")
        pick(bob, "txt2img_preset", "Alice banner")
        bob.locator("#txt2img_preset_name textarea, #txt2img_preset_name input").first.fill("Bob now")
        bob.click("#txt2img_preset_rename")
        assert "'Alice banner' is alice's" in _toast(bob, "Not allowed")
        bob.click("#txt2img_preset_delete")
        assert "only its author or an admin can delete it" in _toast(bob, "Not allowed")
        assert (
            preset_file.read_bytes() == preset_bytes
            and studio.presets_book.get("Alice banner").author == "alice"
        )

        bob.set_input_files("#txt2img_styles_import input[type=file]", str(hijack))
        said = _toast(bob, "Not allowed")
        assert SHIPPED_STYLE in said and "Only an admin" in said
        shot(bob, "ownership-styles-refused")
    assert not store.exists() or b"evil.example" not in store.read_bytes()

    # the victim's next job still gets the shipped style
    shipped = next(s for s in studio.presets_book.styles() if s.name == SHIPPED_STYLE)
    result = _generate(url, "alice", "a fox", styles=[SHIPPED_STYLE])
    infotext = result["infotexts"][0]
    assert infotext.startswith(shipped.prompt.replace("{prompt}", "a fox")) and "evil.example" not in infotext
