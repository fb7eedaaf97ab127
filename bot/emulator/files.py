"""Files in the emulator: image sizes, stored files and photos, and media parameters."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from typing import Any

from buurtsignaal.bot.emulator.base import _EmulatorBase
from buurtsignaal.bot.emulator.model import (
    JsonDict,
    StoredFile,
    UploadedFile,
    _bad,
)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) of PNG, GIF or JPEG bytes, or None if unknown."""
    size: tuple[int, int] | None = None
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        size = struct.unpack(">II", data[16:24])
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        size = struct.unpack("<HH", data[6:10])
    elif data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker == 0xFF:
                pos += 1
                continue
            if marker == 0x01 or 0xD0 <= marker <= 0xD9:
                pos += 2
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                size = (width, height)
                break
            pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def _fit(size: tuple[int, int], limit: int) -> tuple[int, int]:
    """Scale ``size`` down (never up) so that its longest side is at most ``limit``."""
    width, height = size
    scale = min(1.0, limit / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Files(_EmulatorBase):
    """Files: stored uploads, photos in two sizes, and media parameters."""

    # ---------------------------------------------------------------- internals: files

    def _store_file(
        self,
        folder: str,
        content: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        suffix: str | None = None,
        size: tuple[int, int] | None = None,
        source_url: str | None = None,
    ) -> StoredFile:
        """Store bytes as a new file with fresh ids."""
        number = next(self._file_ids)
        if suffix is None:
            suffix = ""
            if file_name and "." in file_name:
                suffix = "." + file_name.rsplit(".", 1)[1][:10]
        stored = StoredFile(
            file_id=f"{self.id_prefix}EMU{folder[:3].upper()}{number:06d}-{self.bot_id}",
            file_unique_id=f"emu{number}",
            content=content,
            file_path=f"{folder}/file_{number}{suffix}",
            file_name=file_name,
            mime_type=mime_type,
            width=size[0] if size else None,
            height=size[1] if size else None,
            source_url=source_url,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _store_photo(self, content: bytes, source_url: str | None = None) -> list[StoredFile]:
        """Store a photo as two sizes (both download the original bytes); return them."""
        size = image_size(content) or (1280, 960)
        sizes = [_fit(size, 320), _fit(size, 1280)]
        stored = [
            self._store_file("photos", content, suffix=".jpg", size=s, source_url=source_url)
            for s in sizes
        ]
        for item in stored:
            self._photo_sets[item.file_id] = stored
        return stored

    @staticmethod
    def _photo_size(stored: StoredFile) -> JsonDict:
        """The PhotoSize dict of a stored photo size."""
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": stored.width or 0,
            "height": stored.height or 0,
            "file_size": len(stored.content),
        }

    @staticmethod
    def _document_dict(stored: StoredFile) -> JsonDict:
        """The Document dict of a stored file."""
        document: JsonDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        return document

    def _content_file(self, content: Mapping[str, Any]) -> StoredFile | None:
        """The stored file behind a message's media, if any."""
        media = content.get("photo")
        if isinstance(media, list) and media:
            return self.files.get(media[-1]["file_id"])
        for key in ("document", "sticker", "voice", "audio", "video", "animation"):
            if isinstance(content.get(key), dict):
                return self.files.get(content[key]["file_id"])
        return None

    def _input_file(self, params: JsonDict, key: str) -> UploadedFile | StoredFile | str:
        """Resolve a media parameter: a new upload, a known file_id or an HTTP URL."""
        value = params.get(key)
        if value is None or value == "":
            raise _bad(f"there is no {key} in the request")
        if isinstance(value, UploadedFile):
            if not value.content:
                raise _bad("file must be non-empty")
            return value
        if isinstance(value, str):
            if value in self.files:
                return self.files[value]
            if re.match(r"https?://\S+$", value):
                if value not in self.web:  # Telegram could not fetch it
                    raise _bad("failed to get HTTP URL content")
                return value
        raise _bad("wrong file identifier/HTTP URL specified")
