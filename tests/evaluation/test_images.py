import pytest

from storytelling.evaluation.images import check_image
from tests.evaluation.conftest import encoded


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_supported_formats(fmt: str) -> None:
    image = check_image(encoded(fmt), fmt)
    part = image.part()
    assert image.format == fmt and part.data_url().startswith(f"data:image/{fmt.lower()};base64,")
    assert part.mime == f"image/{fmt.lower()}" and part.data == image.data


@pytest.mark.parametrize(
    "data, declared, message",
    [
        (b"", None, "empty"),
        (b"definitely not an image", None, "not a decodable image"),
        (encoded("PNG")[:40], None, "not a decodable image"),
        (encoded("GIF"), None, "unsupported image format GIF"),
        (encoded("JPEG"), "PNG", "declared PNG but the bytes are JPEG"),
    ],
)
def test_bad_images(data: bytes, declared: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_image(data, declared)
