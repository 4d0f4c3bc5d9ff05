"""Who may change what, as the Studio enforces it for the page and the API alike: a picture, a preset or a user
style is its author's (or an admin's to change); trash is per author; styles.csv exports are safe to open in a
spreadsheet. Each refusal is NotAllowed with a message, and nothing of the victim's changes on disk."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from core.presets import Preset, PresetError, preset_json
from core.requests import Txt2ImgRequest
from core.styles import FORMULA_STARTS, Style, escape_cell, read_styles_csv, unescape_cell, write_styles_csv
from core.users import User, UserBook
from gallery import Gallery
from studio import JobState, NotAllowed
from tests.browser.sessions import FILTERS, PageSession
from tests.helpers import served_app

TEAM = UserBook([User("alice", "wonderland"), User("bob", "builder"), User("boss", "bigboss", admin=True)])
SHIPPED_STYLE = "Flat vector logo"  # in presets/styles.csv


def _picture(gallery: Gallery, author: str, seed: int):
    return gallery.save(
        Image.new("RGB", (16, 16), (seed * 30 % 256, 80, 120)),
        infotext=f"{author}'s picture {seed}\nSteps: 2, Seed: {seed}, Size: 16x16, Model: tiny-sd1",
        seed=seed,
        task="txt2img",
        author=author,
        model="tiny-sd1",
    )


def _disk(outputs: Path) -> dict[str, bytes]:
    """Every picture file under outputs/ (the trash included) and its bytes."""
    return {str(p.relative_to(outputs)): p.read_bytes() for p in sorted(outputs.rglob("*.png"))}


@pytest.fixture
def team_studio(make_studio):
    studio = make_studio()
    studio.roles.users = TEAM
    return studio


# --- pictures and trash ----------------------------------------------------------------------------------


def test_only_the_author_or_an_admin_may_delete_star_or_restore_a_picture(team_studio):
    studio = team_studio
    outputs = studio.gallery.outputs_dir
    alices = [_picture(studio.gallery, "alice", seed) for seed in (1, 2)]
    bobs = _picture(studio.gallery, "bob", 3)
    before = _disk(outputs)

    for ids in ([alices[0].id], [bobs.id, alices[1].id]):  # one of hers, or hers among his own
        with pytest.raises(NotAllowed, match="alice's; only a picture's author or an admin can delete"):
            studio.pictures.delete_images(ids, user="bob")
    with pytest.raises(NotAllowed, match="star or unstar"):
        studio.pictures.set_favourite([alices[0].id], True, user="bob")
    assert _disk(outputs) == before and studio.gallery.count() == 3
    assert not studio.gallery.get(alices[0].id).favourite

    assert studio.pictures.set_favourite([bobs.id], True, user="bob") == 1  # his own: fine
    keys = studio.pictures.delete_images([alices[0].id], user="alice")
    with pytest.raises(NotAllowed, match="restore"):  # her trash is hers: bob cannot undo her delete
        studio.pictures.restore_images(keys, user="bob")
    assert (outputs / ".trash" / keys[0]).is_file()
    assert [i.id for i in studio.pictures.restore_images(keys, user="alice")] != []

    # an admin may do anything to anyone's pictures
    keys = studio.pictures.delete_images([alices[1].id, bobs.id], user="boss")
    assert studio.pictures.trash_count(user="alice") == 1 and studio.pictures.trash_count(user="bob") == 1
    assert len(studio.pictures.restore_images(keys, user="boss")) == 2


def test_trash_is_per_user_and_only_an_admin_empties_everyones(team_studio):
    studio = team_studio
    outputs = studio.gallery.outputs_dir
    alices, bobs = _picture(studio.gallery, "alice", 1), _picture(studio.gallery, "bob", 2)
    (alice_key,) = studio.pictures.delete_images([alices.id], user="alice")
    (bob_key,) = studio.pictures.delete_images([bobs.id], user="bob")
    hers = (outputs / ".trash" / alice_key).read_bytes()

    assert (
        studio.pictures.trash_count(user="bob") == 1
        and studio.pictures.trash_count(user="bob", everyone=True) == 2
    )
    with pytest.raises(NotAllowed, match="only an admin can empty everyone's trash"):
        studio.pictures.empty_trash(user="bob", everyone=True)
    assert studio.pictures.empty_trash(user="bob") == 1  # his own only
    assert not (outputs / ".trash" / bob_key).exists()
    assert (outputs / ".trash" / alice_key).read_bytes() == hers
    assert studio.pictures.trash_count(user="alice") == 1
    assert studio.pictures.empty_trash(user="boss", everyone=True) == 1
    assert studio.pictures.trash_count(user="boss", everyone=True) == 0


def test_without_logins_the_local_user_is_the_admin(make_studio):
    studio = make_studio()
    made_elsewhere = _picture(studio.gallery, "", 1)  # no author recorded: the team's
    theirs = _picture(studio.gallery, "someone", 2)
    keys = studio.pictures.delete_images([made_elsewhere.id, theirs.id], user="local")
    assert studio.pictures.empty_trash(user="local", everyone=True) == 2 and keys


def test_pictures_without_an_author_are_for_admins_only(team_studio):
    studio = team_studio
    orphan = _picture(studio.gallery, "", 1)
    with pytest.raises(NotAllowed, match="the team's"):
        studio.pictures.delete_images([orphan.id], user="alice")
    assert studio.pictures.delete_images([orphan.id], user="boss")


# --- presets ---------------------------------------------------------------------------------------------


def test_a_preset_is_its_authors(team_studio):
    studio = team_studio
    path = studio.presets.save_preset(Preset(name="Alice banner", steps=12), user="alice")
    saved = path.read_bytes()
    assert studio.presets_book.get("Alice banner").author == "alice"

    for attempt in (
        lambda: studio.presets.rename_preset("Alice banner", "Bob now", user="bob"),
        lambda: studio.presets.delete_preset("Alice banner", user="bob"),
        lambda: studio.presets.save_preset(Preset(name="Alice banner", steps=40), user="bob", replace=True),
    ):
        with pytest.raises(NotAllowed, match="preset 'Alice banner' is alice's; only its author or an admin"):
            attempt()
    assert path.read_bytes() == saved and studio.presets_book.get("Alice banner").steps == 12

    # her own changes, and an admin's, go through; an admin's overwrite leaves her the author
    studio.presets.save_preset(Preset(name="Alice banner", steps=20), user="alice", replace=True)
    studio.presets.save_preset(Preset(name="Alice banner", steps=30), user="boss", replace=True)
    assert (
        studio.presets_book.get("Alice banner").author == "alice"
        and studio.presets_book.get("Alice banner").steps == 30
    )
    studio.presets.rename_preset("Alice banner", "Team banner", user="boss")
    studio.presets.delete_preset("Team banner", user="alice")
    with pytest.raises(PresetError, match="shipped"):  # shipped presets stay read-only, admins included
        studio.presets.delete_preset("Cinematic (21:9)", user="boss")


def test_a_preset_saved_without_an_author_is_the_teams(team_studio):
    studio = team_studio
    folder = studio.presets_book.user_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "old.json").write_bytes(preset_json(Preset(name="Old team preset", steps=9)))
    with pytest.raises(NotAllowed, match="the team's"):
        studio.presets.delete_preset("Old team preset", user="alice")
    studio.presets.delete_preset("Old team preset", user="boss")
    assert not (folder / "old.json").exists()


# --- styles ----------------------------------------------------------------------------------------------


def _csv(*styles: Style) -> bytes:
    return write_styles_csv(styles)


def test_a_non_admin_cannot_redefine_a_shipped_style_for_the_team(team_studio):
    studio = team_studio
    shipped = {s.name: s for s in studio.presets_book.styles()}[SHIPPED_STYLE]
    hijack = Style(name=SHIPPED_STYLE, prompt="{prompt}, buy cheap pills at evil.example")
    with pytest.raises(
        NotAllowed, match=f"{SHIPPED_STYLE!r} \\(shipped\\).*Only an admin.*Nothing was imported"
    ):
        studio.presets.import_styles(_csv(hijack, Style(name="Innocent new one", prompt="x")), user="bob")
    assert {s.name: s for s in studio.presets_book.styles()}[SHIPPED_STYLE] == shipped
    assert "Innocent new one" not in {s.name for s in studio.presets_book.styles()}  # all or nothing
    assert not (studio.presets_book.user_dir / "styles.csv").exists()

    # the victim's next job still uses the shipped style
    job = studio.jobs.submit(
        Txt2ImgRequest(prompt="a fox", styles=(SHIPPED_STYLE,), steps=2, width=64, height=64), "alice"
    )
    job.wait(120)
    assert job.state is JobState.DONE
    infotext = studio.gallery.get(job.images[0].id).infotext
    assert infotext.startswith(shipped.prompt.replace("{prompt}", "a fox")) and "evil.example" not in infotext

    # an admin may change it for the team
    assert studio.presets.import_styles(_csv(hijack), user="boss") == [hijack]
    assert {s.name: s for s in studio.presets_book.styles()}[SHIPPED_STYLE] == hijack


def test_a_user_style_is_its_owners(team_studio):
    studio = team_studio
    neon = Style(name="Neon", prompt="{prompt}, neon glow")
    assert studio.presets.import_styles(_csv(neon), user="bob") == [neon]
    assert studio.presets_book.style_owners() == {"Neon": "bob"}
    store = studio.presets_book.user_dir / "styles.csv"
    kept = store.read_bytes()

    with pytest.raises(NotAllowed, match="'Neon' \\(bob's\\)"):
        studio.presets.import_styles(_csv(Style(name="Neon", prompt="{prompt}, alice's neon")), user="alice")
    assert store.read_bytes() == kept
    brighter = Style(name="Neon", prompt="{prompt}, brighter neon")
    assert studio.presets.import_styles(_csv(brighter), user="bob") == [brighter]
    studio.presets.import_styles(_csv(Style(name="Neon", prompt="{prompt}, admin neon")), user="boss")
    assert studio.presets_book.style_owners() == {"Neon": "bob"}  # an admin's change leaves it bob's

    # re-importing an export (every style, unchanged) is no change, so it is allowed and changes nothing
    before = store.read_bytes()
    assert studio.presets.import_styles(studio.presets_book.export_styles(), user="alice") == []
    assert store.read_bytes() == before


# --- styles.csv and spreadsheets -------------------------------------------------------------------------


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_export_escapes_formula_cells_and_imports_them_back(team_studio, start):
    studio = team_studio
    payload = (
        f'{start}HYPERLINK("http://evil.example","x")' if start in "=+-@" else f"{start}=cmd|' /C calc'!A0"
    )
    name = f"{start}SUM(1)" if start in "=+-@" else f"control {ord(start)}"  # names never start with a space
    style = Style(name=name, prompt=payload, negative_prompt=f"{start}1+1")
    studio.presets.import_styles(_csv(style), user="boss")
    exported = studio.presets_book.export_styles()
    text = exported.decode("utf-8-sig")
    cells = [cell for row in csv.reader(text.splitlines(keepends=True)) for cell in row]
    assert f"'{payload}" in cells and f"'{start}1+1" in cells
    assert f"'{name}" in cells if start in "=+-@" else name in cells
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells)  # no cell a spreadsheet would run
    assert {s.name: s for s in read_styles_csv(exported)}[style.name] == style  # round trip

    # an admin importing the export into a fresh instance gets the same style
    assert studio.presets.import_styles(exported, user="boss") == []


def test_escaping_is_reversible_for_text_that_starts_with_quotes():
    for text in ("=1", "'=1", "''=1", "'plain", "plain", "", "-", "'", "@x", "\t=", "\r"):
        assert unescape_cell(escape_cell(text)) == text
        assert not escape_cell(text).startswith(FORMULA_STARTS)


def test_an_imported_escaped_cell_loses_its_quote(tmp_path: Path):
    data = b"name,prompt,negative_prompt\r\n'=Name,'+prompt,'@neg\r\n"
    (style,) = read_styles_csv(data)
    assert (style.name, style.prompt, style.negative_prompt) == ("=Name", "+prompt", "@neg")


# --- an attacker scripting the page's own endpoints --------------------------------------------------------


def test_scripted_calls_that_skip_the_pages_checks_are_refused_too(tiny_models_dir, tmp_path: Path):
    outputs = tmp_path / "outputs"
    presets = tmp_path / "outputs-user-presets"
    presets.mkdir()
    (presets / "alice.json").write_bytes(preset_json(Preset(name="Alice banner", steps=12, author="alice")))
    auth = tmp_path / "users.txt"
    auth.write_text("alice:wonderland\nbob:builder\nboss:bigboss:admin\n")
    with served_app(tiny_models_dir, outputs, auth_file=[auth]) as (app, url):
        studio = app.studio
        hers = _picture(studio.gallery, "alice", 1)
        trashed = _picture(studio.gallery, "alice", 2)
        (key,) = studio.pictures.delete_images([trashed.id], user="alice")
        before = _disk(outputs)
        preset_bytes = (presets / "alice.json").read_bytes()

        bob = PageSession(url, "bob", "builder")
        listed = bob.call(
            bob.first("gallery_search", "submit"), FILTERS
        )  # everyone's pictures, ticks offered
        assert listed["success"] and studio.gallery.count() == 1

        delete = bob.then(bob.first("gallery_delete_selected", "click"))  # the delete itself, no check first
        answer = bob.call(delete, [[hers.id], None, *FILTERS])
        assert not answer["success"] and "alice's" in answer["output"]["error"]

        empty = bob.first("gallery_empty_trash", "click")  # the admins' box, ticked by hand
        answer = bob.call(empty, [True])
        assert (
            not answer["success"] and "only an admin can empty everyone's trash" in answer["output"]["error"]
        )

        rename = bob.then(bob.first("txt2img_preset_rename", "click"))
        answer = bob.call(rename, ["Alice banner", "Bob now"])
        assert not answer["success"] and "only its author or an admin" in answer["output"]["error"]
        delete_preset = bob.then(bob.first("txt2img_preset_delete", "click"))
        assert not bob.call(delete_preset, ["Alice banner"])["success"]

        assert _disk(outputs) == before and (outputs / ".trash" / key).is_file()
        assert (presets / "alice.json").read_bytes() == preset_bytes
