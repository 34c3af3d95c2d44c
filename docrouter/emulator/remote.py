"""URL parts: the emulator downloads them as OpenRouter does (a real HTTP client; on loopback in tests)."""

from __future__ import annotations

import dataclasses
import hashlib

import httpx

from docrouter.emulator import media
from docrouter.emulator.intake import ChatRequest, FileInput, ImageInput, Rejection, image_input

MAX_DOWNLOAD_BYTES = 30 * 1024 * 1024  # "Downloaded image content cannot exceed 30MB"
TIMEOUT_S = 30.0


async def downloaded(chat: ChatRequest, max_pixels: int) -> ChatRequest:
    """The request with every image and file given by URL replaced by what the URL serves now."""
    if not any(i.url for i in chat.images) and not any(f.url for f in chat.files):
        return chat
    async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=True, max_redirects=5) as http:
        images = [await _image(http, image, max_pixels) if image.url else image for image in chat.images]
        files = [await _file(http, file) if file.url else file for file in chat.files]
    return dataclasses.replace(chat, images=tuple(images), files=tuple(files))


async def _image(http: httpx.AsyncClient, image: ImageInput, max_pixels: int) -> ImageInput:
    assert image.url is not None
    data = await _download(http, image.url, "image_url")
    mime = media.sniff_mime(data)
    if mime not in media.IMAGE_MIME_TYPES:
        raise Rejection(
            400, f"image_url: the URL serves {media.describe_mime(mime)}, not an image", error_type="invalid_image"
        )
    return image_input(data, mime, image.detail, "image_url", max_pixels, url=image.url)


async def _file(http: httpx.AsyncClient, file: FileInput) -> FileInput:
    assert file.url is not None
    data = await _download(http, file.url, "file_data")
    if media.sniff_mime(data) != media.PDF_MIME:
        raise Rejection(400, "file_data: the URL does not serve a PDF")
    return FileInput(file.name, hashlib.sha256(data).hexdigest(), data=data, url=file.url)


async def _download(http: httpx.AsyncClient, url: str, what: str) -> bytes:
    """The body the URL serves (bounded); a Rejection when it cannot be had (the message names no URL)."""
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                raise Rejection(400, f"{what}: downloading the URL gave HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOWNLOAD_BYTES:
                    raise Rejection(413, "Downloaded image content cannot exceed 30MB", error_type="payload_too_large")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise Rejection(400, f"{what}: could not download the URL ({type(exc).__name__})") from None
