"""OpenAPI schema generation (drf-spectacular) tuned to our API style."""

import re
from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Names a serializer nested in an API view after that view.

    Every API view has its own `InputSerializer` and `OutputSerializer` (STYLE.md);
    named by class alone they would all collide as "Input" and "Output" components.
    """

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        cls = serializer if isinstance(serializer, type) else type(serializer)
        parts = cls.__qualname__.split(".")
        if len(parts) > 1:
            return "".join(part.removesuffix("Api") for part in parts)
        return super().get_serializer_name(serializer, direction)

    def get_operation_id(self) -> str:
        # One API view class per operation (STYLE.md): its name is a unique, stable id.
        name = type(self.view).__name__.removesuffix("Api")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        return f"{snake}_{self.method.lower()}"
