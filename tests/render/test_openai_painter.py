"""OpenAIImagePainter over real HTTP against a minimal stand-in of the /v1/images/generations API
(no OpenAI-compatible image engine runs offline here; the stand-in returns a flat PNG of the asked size)."""

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image
from storytelling.render.core import RenderCore, RenderRequest
from storytelling.render.painters.openai import OpenAIImagePainter
from storytelling.runtime.errors import InvalidArgument, Unavailable
from storytelling.runtime.process import free_port

from tests.render.stories import LONG


class ImagesAPI(BaseHTTPRequestHandler):
    def do_GET(self):
        self._reply(200, {"data": [{"id": "stand-in"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/images/generations" or body["response_format"] != "b64_json":
            return self._reply(404, {"error": "not found"})
        if "forbidden" in body["prompt"]:
            return self._reply(400, {"error": {"message": "prompt rejected by safety system"}})
        width, height = map(int, body["size"].split("x"))
        png = io.BytesIO()
        Image.new("RGB", (width, height), (10, 120, 200)).save(png, format="PNG")
        self._reply(200, {"data": [{"b64_json": base64.b64encode(png.getvalue()).decode()}]})

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def api_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ImagesAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


async def test_paints_through_the_images_api(api_url):
    painter = OpenAIImagePainter(api_url, "stand-in")
    core = RenderCore({"openai": painter}, default="openai")
    try:
        assert (await painter.ready())[0]
        result = await core.render(RenderRequest(prompt=LONG, width=320, height=192))
        assert (result.width, result.height) == (320, 192)
        assert result.painter.kind == "openai" and not result.painter.is_fallback
        assert result.painter.endpoint == api_url
        with pytest.raises(InvalidArgument) as info:
            await core.render(RenderRequest(prompt="something forbidden", width=256, height=256))
        assert info.value.field == "prompt"
    finally:
        await painter.close()


async def test_unreachable_api_is_unavailable():
    painter = OpenAIImagePainter(f"http://127.0.0.1:{free_port()}/v1", "stand-in")
    try:
        assert not (await painter.ready())[0]
        with pytest.raises(Unavailable):
            await RenderCore({"openai": painter}, "openai").render(RenderRequest(prompt=LONG))
    finally:
        await painter.close()
