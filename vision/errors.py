"""Typed errors for images a caller sent; each carries the HTTP status the service answers with."""

from __future__ import annotations


class ImageRejected(Exception):
    """The image cannot be embedded; `status` and `code` say why in HTTP terms."""

    status: int = 400
    code: str = "bad_image"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImageTooLarge(ImageRejected):
    """More bytes than the limit (default 10 MB): send a smaller file."""

    status = 413
    code = "image_too_large"


class ImageTooManyPixels(ImageRejected):
    """More pixels than the limit (default 40 megapixels), checked before decoding."""

    status = 413
    code = "image_too_many_pixels"


class UnsupportedImage(ImageRejected):
    """Not an image, a format we do not decode, or a truncated/corrupt file."""

    status = 415
    code = "unsupported_image"


class ModelUnavailable(Exception):
    """A model's weights or checkpoint cannot be found or loaded."""
