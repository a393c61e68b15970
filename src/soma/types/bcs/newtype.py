"""`FixedBytesType`: the base of every fixed-length byte newtype (digests, addresses,
object IDs, public keys, signatures).

Subclassing `bytes` makes these values hash, compare and slice at C speed and lets them
serve directly as storage keys; giving each its own class means a transaction digest
cannot be passed where an object digest is expected (the codec checks the class when
encoding a field declared with it).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from soma.types.bcs.codec import Codec
from soma.types.bcs.primitives import FixedBytes
from soma.types.error import InvalidValueError, SomaError


class FixedBytesType(bytes):
    """Exactly `LENGTH` bytes. A subclass sets `LENGTH` (directly or by inheriting it)
    and may set `LENGTH_ERROR`, the error raised for a wrong length."""

    LENGTH: ClassVar[int]
    LENGTH_ERROR: ClassVar[type[SomaError]] = InvalidValueError
    _codec: ClassVar[Codec[Any]]

    def __new__(cls, raw: bytes) -> Self:
        if len(raw) != cls.LENGTH:
            raise cls.LENGTH_ERROR(f"{cls.__name__} must be {cls.LENGTH} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "LENGTH"):
            # Generated decoders may build instances with bytes.__new__ directly (the
            # slice they take already has the right length) only while no class in the
            # hierarchy adds checks of its own to __new__.
            length_only = all(
                "__new__" not in k.__dict__
                for k in cls.__mro__
                if k not in (FixedBytesType, bytes, object)
            )
            cls._codec = FixedBytes(cls.LENGTH, cls, length_only=length_only)

    @classmethod
    def bcs_codec(cls) -> Codec[Self]:
        return cls._codec
