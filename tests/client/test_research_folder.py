"""`storytelling evaluate` reads the research script's output folder exactly as the script lays it out."""

import json
from pathlib import Path

import pytest
from PIL import Image
from storytelling.cli.folder import Fields, read_folder

STORIES = ["A goat eats a homework book.", "A chef drops a cake.", "A referee slips on confetti."]


def research_output(root: Path, *, with_images: bool = True, cor_guided: bool = True) -> Path:
    """The layout of the research script: story_output_{llm}.jsonl, image_{llm}_{painter}/N.png and the
    painter's own img_output_{llm}_{painter}.jsonl, with the script's very fields."""
    out = root / "output"
    (out / "image_gpt-4o_dalle3").mkdir(parents=True)
    lines = []
    for i, story in enumerate(STORIES, 1):
        row = {}
        if cor_guided:
            row.update({f"example{n}_id": f"cog-{i}{n}" for n in (1, 2, 3)})
            row.update({f"example{n}": f"Exemplar {n} of story {i}." for n in (1, 2, 3)})
        row["model_output"] = story
        if with_images:
            row["img_file_name"] = f"{i}.png"
        lines.append(json.dumps(row))
        if i != 2:  # the painter failed on story 2: the script printed the error and went on
            Image.new("RGB", (8, 8)).save(out / "image_gpt-4o_dalle3" / f"{i}.png")
    (out / "story_output_gpt-4o.jsonl").write_text("\n".join(lines) + "\n")
    (out / "img_output_gpt-4o_dalle3.jsonl").write_text('{"file_name": "1.png", "original_prompt": "x"}\n')
    return out


def test_stories_images_and_exemplars_of_the_research_layout(tmp_path: Path) -> None:
    items = read_folder(research_output(tmp_path))
    assert [(i.id, i.story) for i in items] == [("1", STORIES[0]), ("2", STORIES[1]), ("3", STORIES[2])]
    assert items[0].image.name == "1.png" and items[0].image.parent.name == "image_gpt-4o_dalle3"
    assert items[1].image is None  # its image was never written
    assert items[2].exemplars == (
        "Exemplar 1 of story 3.",
        "Exemplar 2 of story 3.",
        "Exemplar 3 of story 3.",
    )


def test_without_img_file_name_the_line_index_names_the_image(tmp_path: Path) -> None:
    items = read_folder(research_output(tmp_path, with_images=False, cor_guided=False))
    assert [i.image.name if i.image else None for i in items] == ["1.png", None, "3.png"]
    assert all(i.exemplars == () for i in items)


def test_field_mapping_and_ambiguity(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "stories.jsonl").write_text(json.dumps({"key": "a", "body": "A story.", "ref": "An exemplar."}))
    items = read_folder(folder, fields=Fields(id=("key",), story=("body",), exemplars=("ref",)))
    assert items[0].id == "a" and items[0].story == "A story." and items[0].exemplars == ("An exemplar.",)
    out = research_output(tmp_path)
    (out / "image_gpt-4o_sdxl").mkdir()
    with pytest.raises(ValueError, match="several image folders .* choose one with --images"):
        read_folder(out)
    assert read_folder(out, images=out / "image_gpt-4o_sdxl")[0].image is None
    (out / "story_output_llama.jsonl").write_text('{"model_output": "x"}\n')
    with pytest.raises(ValueError, match="several story files"):
        read_folder(out)
